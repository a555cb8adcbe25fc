//! `demo`: the service and the emulator in one process, a seeded demo account whose clients and
//! contacts plausibly match the emulated tenants, and a printed token with the steps to connect.

use std::{net::SocketAddr, path::Path, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{
    app::{Application, BoxError, shutdown_signal},
    auth::{AuthKeys, MANAGE_TENANT_SETTINGS},
    clients::{self, ClientUpsert, ContactUpsert},
    config::{Config, Secret},
    db,
};
use m365_emulator::{Emulator, EmulatorConfig, world::WorldSpec};

/// `demo` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the service listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Where the emulator listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub emulator_bind: SocketAddr,
    /// Customer tenants the emulator invents.
    #[arg(long, default_value_t = 12)]
    pub tenants: usize,
    /// Users per tenant.
    #[arg(long, default_value_t = 25)]
    pub users_per_tenant: usize,
    /// Seed of the emulated world.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Database URL (default: the SQLite file in the working directory).
    #[arg(long, env = "DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Secrets the demo keeps between runs, so a restart can still read the stored authorization.
#[derive(Serialize, Deserialize)]
struct DemoSecrets {
    auth_jwt_secret: String,
    token_encryption_key: String,
}

const SECRETS_FILE: &str = "m365-integration-demo.secrets.json";

fn random_b64() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    STANDARD.encode(b)
}

fn demo_secrets() -> Result<DemoSecrets, BoxError> {
    let path = Path::new(SECRETS_FILE);
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(serde_json::from_str(&text).map_err(|e| format!("{SECRETS_FILE} is damaged ({e}); delete it"))?);
    }
    let s = DemoSecrets { auth_jwt_secret: random_b64(), token_encryption_key: random_b64() };
    std::fs::write(path, serde_json::to_string_pretty(&s)?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(s)
}

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> Result<(), BoxError> {
    let _traces = crate::cli::init_tracing(crate::config::LogFormat::Text);
    let secrets = demo_secrets()?;
    let mut config = Config::defaults();
    config.bind_addr = args.bind;
    config.database_url = args.database_url.clone();
    config.auth_jwt_secret = Some(Secret::new(std::env::var("AUTH_JWT_SECRET").unwrap_or(secrets.auth_jwt_secret)));
    // After consent the browser comes back to the console, which shows the guide's message.
    if config.frontend_url.is_none() {
        let mut console = config.public_url();
        console.set_path("/");
        console.set_query(None);
        config.frontend_url = Some(console);
    }
    config.token_encryption_key =
        Some(Secret::new(std::env::var("TOKEN_ENCRYPTION_KEY").unwrap_or(secrets.token_encryption_key)));
    let emu_config = EmulatorConfig {
        spec: WorldSpec { seed: args.seed, tenants: args.tenants, users_per_tenant: args.users_per_tenant },
        redirect_uris: vec![config.redirect_uri().to_string()],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::spawn(args.emulator_bind, emu_config.clone())
        .await
        .map_err(|e| format!("cannot start the emulator on {}: {e}", args.emulator_bind))?;
    let emu = url::Url::parse(&emulator.base_url())?;
    config.m365_authority_url = emu.clone();
    config.m365_graph_url = emu.clone();
    config.m365_license_names_url = Some(emu.join("/_emulator/licensing/product-names.csv")?);
    config.m365_client_id = emu_config.client_id.clone();
    config.m365_client_secret = Secret::new(emu_config.client_secret.clone());

    let app = Application::build(config.clone()).await?;
    let state = app.state();
    let account = seed(&state.db, &emulator).await?;
    let keys = AuthKeys::new(config.auth_jwt_secret.as_ref().expect("set above"));
    let day = Duration::from_secs(24 * 3600);
    let admin = keys.mint(account, "demo-admin", &[MANAGE_TENANT_SETTINGS.to_owned()], day);
    let reader = keys.mint(account, "grc-reader", &[], day);
    let url = format!("http://{}", app.local_addr());
    println!(
        r#"
m365-integration demo
=====================
Console:   {url}/#token={admin}
           (signs this browser tab in as the demo admin; the token stays in the fragment,
           which browsers never send, and the console moves it to sessionStorage)
Read-only: {url}/#token={reader}
GraphiQL:  {url}/graphql   (prefilled with the console's token when opened from it)
Emulator:  {emu}   (stands in for login.microsoftonline.com and graph.microsoft.com)
Account:   {account} "Demo MSP" (Microsoft 365 tab on, clients and contacts seeded)

Admin token (manage_tenant_settings, 24 h):
{admin}

Read-only token (GRC evidence tools, 24 h):
{reader}

Connect in the console: open the Console link, click Connect M365, pick "Avery Admin" on the
emulated consent page and Accept; the first sync's progress shows live. Or by hand:
 1. Open {url}/graphql, add the header  {{"Authorization": "Bearer <admin token>"}}
    and run:   mutation {{ connectM365 {{ authorizationUrl expiresAt }} }}
 2. Open the authorizationUrl in a browser. On the emulated consent page pick
    "Avery Admin" (a Global Administrator) and click Accept. (Pick the technician to see
    "Admin consent is required"; click Cancel to see "You denied the authorization request".)
 3. Back in GraphiQL, watch the first sync:
      {{ m365Integration {{ connection {{ status partnerTenantName }} sync {{ state currentRun {{ phase tenantsDone tenantsTotal }} }} }} }}
    then map tenants:  {{ m365Tenants(first: 20) {{ edges {{ node {{ displayName suggestions {{ client {{ name }} confidence reasons }} }} }} }} }}

Press Ctrl-C to stop.
"#
    );
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Creates (or finds) the demo account with clients and contacts shaped like the emulated
/// tenants: a third match by domain, a third by name only, a third not at all.
async fn seed(db: &sea_orm::DatabaseConnection, emulator: &Emulator) -> Result<i64, BoxError> {
    let account = match db::accounts::list(db).await?.into_iter().find(|a| a.name == "Demo MSP") {
        Some(a) => a.id,
        None => db::accounts::create(db, "Demo MSP", true).await?.id,
    };
    let (tenants, users): (Vec<(String, String)>, Vec<Vec<String>>) = {
        let g = emulator.state.lock();
        g.world
            .customers()
            .iter()
            .map(|t| {
                let upns = t.users.iter().filter(|u| u.user_type == "Member").take(3).map(|u| u.upn.clone()).collect();
                ((t.display_name.clone(), t.default_domain().to_owned()), upns)
            })
            .unzip()
    };
    let mut client_items = vec![];
    let mut contact_items = vec![];
    for (i, ((name, domain), upns)) in tenants.iter().zip(users).enumerate() {
        let external_id = format!("{}", 1000 + i);
        match i % 3 {
            0 => client_items.push(ClientUpsert {
                source: "connectwise".into(),
                external_id: external_id.clone(),
                name: name.clone(),
                domains: Some(vec![domain.clone()]),
            }),
            1 => {
                // Same company, written the way a PSA often has it: no domain, other suffix.
                let base = name.trim_end_matches(['.', ' ']).rsplit_once(' ').map_or(name.as_str(), |(b, _)| b);
                client_items.push(ClientUpsert {
                    source: "connectwise".into(),
                    external_id: external_id.clone(),
                    name: format!("{base}, Inc"),
                    domains: None,
                });
            }
            _ => continue,
        }
        for (j, upn) in upns.iter().enumerate() {
            let local = upn.split('@').next().unwrap_or("contact");
            contact_items.push(ContactUpsert {
                source: "connectwise".into(),
                external_id: format!("{external_id}-{j}"),
                client_external_id: external_id.clone(),
                name: local.replace('.', " "),
                emails: vec![upn.clone()],
            });
        }
    }
    for (id, name) in [("9001", "Blue Ridge Dental"), ("9002", "Harbor Freight Logistics")] {
        client_items.push(ClientUpsert {
            source: "connectwise".into(),
            external_id: id.into(),
            name: name.into(),
            domains: None,
        });
    }
    clients::upsert_clients(db, account, client_items).await.map_err(|e| e.to_string())?;
    clients::upsert_contacts(db, account, contact_items).await.map_err(|e| e.to_string())?;
    Ok(account)
}
