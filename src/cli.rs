//! The command line: `serve`, `demo`, `emulator`, `account`, `token`, `schema`, `migrate`,
//! `evidence verify`.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    app::{Application, BoxError, shutdown_signal},
    auth::{AuthKeys, MANAGE_TENANT_SETTINGS},
    config::{Config, DEFAULT_DATABASE_URL, LogFormat, Secret, parse_duration},
    db, graphql,
};
use m365_emulator::{Emulator, EmulatorConfig, Scenario, world::WorldSpec};

/// Tenant-level Microsoft 365 integration for MSPs, served over GraphQL.
#[derive(Parser)]
#[command(name = "m365-integration", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(Box<Config>),
    /// Run the service with the built-in Microsoft emulator and a seeded demo account.
    Demo(crate::demo::DemoArgs),
    /// Run only the Microsoft emulator (identity platform + Graph).
    Emulator(EmulatorArgs),
    /// Manage MSP accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Mint an API token (needs AUTH_JWT_SECRET).
    Token(TokenArgs),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// GRC evidence: verify the snapshot chains.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Recompute every evidence chain from the stored history and snapshots; print the first
    /// broken link of each chain. Exit code 0 only when every chain holds.
    Verify {
        /// Only this account's chains.
        #[arg(long)]
        account: Option<i64>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args)]
struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: std::net::SocketAddr,
    /// Seed of the generated world.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Customer tenants.
    #[arg(long, default_value_t = 12)]
    tenants: usize,
    /// Users per customer tenant.
    #[arg(long, default_value_t = 25)]
    users_per_tenant: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// A JSON scenario file with knobs (see `m365_emulator::Scenario`).
    #[arg(long)]
    scenario: Option<std::path::PathBuf>,
    /// The shared app's client id.
    #[arg(long, env = "M365_CLIENT_ID", default_value = "6b1d0b7e-5c3a-4e8e-9a57-2f3c1d0e9a10")]
    client_id: String,
    /// The shared app's client secret.
    #[arg(long, env = "M365_CLIENT_SECRET", hide_env_values = true, default_value = "emulator-client-secret")]
    client_secret: Secret,
    /// Exact redirect URIs to accept (repeatable).
    #[arg(long = "redirect-uri", default_value = "http://127.0.0.1:8080/oauth/m365/callback")]
    redirect_uris: Vec<String>,
}

#[derive(clap::Args)]
struct DbArgs {
    /// Database URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account and print its id.
    Create {
        /// Account name.
        #[arg(long)]
        name: String,
        /// Switch the Microsoft 365 tab on.
        #[arg(long)]
        enable_m365: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Switch the Microsoft 365 tab on.
    EnableM365 {
        /// Account id.
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Switch the Microsoft 365 tab off.
    DisableM365 {
        /// Account id.
        id: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Account id (`account_id` claim).
    #[arg(long)]
    account: i64,
    /// User name (`sub` claim).
    #[arg(long)]
    user: String,
    /// Permission to grant; repeat for several (e.g. manage_tenant_settings).
    #[arg(long = "permission")]
    permissions: Vec<String>,
    /// Lifetime, e.g. 1h, 30m, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// Signing secret.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    auth_jwt_secret: Secret,
}

/// Sets up logging (`RUST_LOG`, default `info`) in the chosen format, and trace export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`crate::telemetry`]). Keep what it returns until the
/// process ends: dropping it sends the spans still buffered.
#[must_use = "dropping the handle stops trace export"]
pub fn init_tracing(format: LogFormat) -> Option<crate::telemetry::Traces> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let (otel, traces) = match crate::telemetry::traces_endpoint_from_env() {
        None => (None, None),
        Some(endpoint) => match crate::telemetry::layer(&endpoint) {
            Ok((layer, traces)) => (Some(layer), Some(traces)),
            Err(e) => {
                eprintln!("trace export is off: {e}");
                (None, None)
            }
        },
    };
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
    };
    let _ = tracing_subscriber::registry().with(otel).with(fmt).with(filter).try_init();
    traces
}

/// Runs the command line; the exit code says whether it worked.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), BoxError> {
    match command {
        Command::Serve(config) => {
            let _traces = init_tracing(config.log_format);
            let app = Application::build(*config).await?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Demo(args) => crate::demo::run(args).await?,
        Command::Emulator(a) => emulator(a).await?,
        Command::Schema => print!("{}", graphql::sdl()),
        Command::Migrate(a) => {
            let conn = db::connect(&a.database_url).await?;
            db::migrate(&conn).await?;
            println!("migrations applied");
        }
        Command::Token(t) => {
            let perms: Vec<String> = t.permissions.iter().map(|p| p.trim().to_owned()).collect();
            for p in &perms {
                if p != MANAGE_TENANT_SETTINGS {
                    eprintln!("note: {p:?} is not a permission this service checks");
                }
            }
            println!("{}", AuthKeys::new(&t.auth_jwt_secret).mint(t.account, &t.user, &perms, t.ttl));
        }
        Command::Account(cmd) => account(cmd).await?,
        Command::Evidence(EvidenceCommand::Verify { account, db: a }) => {
            let report = crate::evidence::verify::verify(&open(&a).await?, account).await?;
            for b in &report.breaks {
                println!("BROKEN {b}");
            }
            println!(
                "{} chain(s), {} snapshot(s): {} recomputed from per-user history, {} with purged rows (digest and link checked)",
                report.chains, report.snapshots, report.rows_recomputed, report.rows_purged
            );
            if !report.holds() {
                return Err(format!("{} chain(s) broken", report.breaks.len()).into());
            }
            println!("every chain holds");
        }
    }
    Ok(())
}

async fn emulator(a: EmulatorArgs) -> Result<(), BoxError> {
    let _traces = init_tracing(LogFormat::Text);
    let config = EmulatorConfig {
        spec: WorldSpec { seed: a.seed, tenants: a.tenants, users_per_tenant: a.users_per_tenant },
        latency: Duration::from_millis(a.latency_ms),
        client_id: a.client_id,
        client_secret: a.client_secret.expose().to_owned(),
        redirect_uris: a.redirect_uris,
    };
    let emu = Emulator::spawn(a.bind, config).await?;
    if let Some(path) = a.scenario {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let scenario: Scenario =
            serde_json::from_str(&text).map_err(|e| format!("{} is not a scenario: {e}", path.display()))?;
        emu.state.apply(&scenario)?;
    }
    println!("emulator listening on {} ({} tenants x {} users)", emu.base_url(), a.tenants, a.users_per_tenant);
    shutdown_signal().await;
    Ok(())
}

async fn open(a: &DbArgs) -> Result<sea_orm::DatabaseConnection, BoxError> {
    let conn = db::connect(&a.database_url).await?;
    db::migrate(&conn).await?;
    Ok(conn)
}

async fn account(cmd: AccountCommand) -> Result<(), BoxError> {
    match cmd {
        AccountCommand::Create { name, enable_m365, db: a } => {
            let name = name.trim();
            if name.is_empty() {
                return Err("--name must not be empty".into());
            }
            let acc = db::accounts::create(&open(&a).await?, name, enable_m365).await?;
            println!("{}", acc.id);
        }
        AccountCommand::EnableM365 { id, db: a } | AccountCommand::DisableM365 { id, db: a }
            if db::accounts::get(&open(&a).await?, id).await?.is_none() =>
        {
            return Err(format!("no account with id {id}").into());
        }
        AccountCommand::EnableM365 { id, db: a } => {
            db::accounts::set_m365_enabled(&open(&a).await?, id, true).await?;
            println!("account {id}: Microsoft 365 tab enabled");
        }
        AccountCommand::DisableM365 { id, db: a } => {
            db::accounts::set_m365_enabled(&open(&a).await?, id, false).await?;
            println!("account {id}: Microsoft 365 tab disabled");
        }
        AccountCommand::List { db: a } => {
            println!("{:>6}  {:<5}  name", "id", "m365");
            for acc in db::accounts::list(&open(&a).await?).await? {
                println!("{:>6}  {:<5}  {}", acc.id, if acc.m365_enabled { "on" } else { "off" }, acc.name);
            }
        }
    }
    Ok(())
}
