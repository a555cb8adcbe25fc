//! A stand-in for Microsoft's identity platform and Microsoft Graph, as documented in
//! `microsoft-apis.md`: the same paths, parameters, paging, error bodies and codes, at least as
//! strict as the real thing. Tests and `demo` talk to it over real HTTP.
//!
//! - [`identity`]: `/{tenant}/oauth2/v2.0/authorize` (consent page or scripted answer) and
//!   `/{tenant}/oauth2/v2.0/token` (code, refresh, GDAP checks on customer authorities);
//! - [`graph`]: `/v1.0/...` endpoints the service uses, `$batch`, throttling and faults;
//! - [`control`]: `/_emulator/...` knobs, request counts and the license-names CSV;
//! - [`world`]: the deterministic directory behind it.

pub mod catalog;
pub mod control;
pub mod graph;
pub mod identity;
pub mod world;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use world::{TenantKnobs, World, WorldSpec};

/// How `/authorize` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum AuthorizeMode {
    /// Show the consent page (a person picks a user and clicks Accept or Cancel).
    #[default]
    Page,
    /// Accept at once as this user: `admin` / `tech` of the partner tenant, a partner user's
    /// UPN, or the UPN of an administrator of any other tenant of the world. The last one
    /// consents from *its own* home tenant, as the Global Administrator of a second partner
    /// (another MSP) would: the code, tokens and `/organization` are that tenant's.
    AutoAccept {
        /// Who signs in.
        user: String,
    },
    /// Answer at once with an error: `cancel`, `decline` or `adminConsentRequired`.
    AutoError {
        /// Which error.
        error: String,
    },
}

/// Partner-level knobs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerKnobs {
    /// The token endpoint never returns a refresh token.
    pub omit_refresh_token: bool,
    /// Every refresh token answers AADSTS700082 (expired through inactivity).
    pub refresh_expired: bool,
    /// Every refresh token answers AADSTS50173 (revoked).
    pub refresh_revoked: bool,
    /// Scopes the consent leaves out even when asked (e.g. `offline_access`).
    pub withhold_scopes: Vec<String>,
}

/// A scenario file: the knobs to start with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// How authorize answers.
    pub authorize: Option<AuthorizeMode>,
    /// Partner knobs.
    pub partner: Option<PartnerKnobs>,
    /// Latency per request in milliseconds.
    pub latency_ms: Option<u64>,
    /// Knobs per tenant: keyed by tenant id, default domain, customer index (`"3"`, 0-based)
    /// or `"*"` for every customer.
    pub tenants: HashMap<String, TenantKnobs>,
}

/// The registered multi-tenant app.
#[derive(Clone, Debug)]
pub struct AppRegistration {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// A one-time authorization code.
#[derive(Clone, Debug)]
pub struct IssuedCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scopes: Vec<String>,
    pub user_id: String,
    /// The signed-in user's home tenant (index in the world).
    pub home: usize,
    pub expires: Instant,
    pub used: bool,
}

/// A refresh token's grant.
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    pub user_id: String,
    pub scopes: Vec<String>,
    /// The user's home tenant (index in the world): what `organizations` resolves to.
    pub home: usize,
}

/// An access token's grant.
#[derive(Clone, Debug)]
pub struct AccessGrant {
    pub tenant_idx: usize,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub expires: Instant,
}

/// Everything behind the emulator's lock.
pub struct Inner {
    pub world: World,
    pub app: AppRegistration,
    pub authorize: AuthorizeMode,
    pub partner: PartnerKnobs,
    pub latency: Duration,
    pub codes: HashMap<String, IssuedCode>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub access: HashMap<String, AccessGrant>,
    pub stats: HashMap<String, u64>,
    /// Throttle windows per tenant id: (window start, requests in it).
    pub windows: HashMap<String, (Instant, u32)>,
    /// Last Conditional Access request per tenant id (that service allows 1 request/second).
    pub ca_last: HashMap<String, Instant>,
}

/// Shared emulator state.
#[derive(Clone)]
pub struct EmulatorState(Arc<Mutex<Inner>>);

impl EmulatorState {
    /// Locks the state (never held across an await).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers another exact redirect URI.
    pub fn add_redirect_uri(&self, uri: &str) {
        let mut g = self.lock();
        if !g.app.redirect_uris.iter().any(|u| u == uri) {
            g.app.redirect_uris.push(uri.to_owned());
        }
    }

    /// Sets a tenant's knobs (tenant id or domain); false when there is no such tenant.
    pub fn set_tenant_knobs(&self, tenant: &str, knobs: TenantKnobs) -> bool {
        let mut g = self.lock();
        let Some(idx) = g.world.tenant_index(tenant) else { return false };
        let id = g.world.tenants[idx].id.clone();
        g.windows.remove(&id);
        g.world.knobs.insert(id, knobs);
        true
    }

    /// Sets the partner knobs.
    pub fn set_partner_knobs(&self, knobs: PartnerKnobs) {
        self.lock().partner = knobs;
    }

    /// Sets how authorize answers.
    pub fn set_authorize(&self, mode: AuthorizeMode) {
        self.lock().authorize = mode;
    }

    /// Request counts per endpoint.
    pub fn stats(&self) -> HashMap<String, u64> {
        self.lock().stats.clone()
    }

    /// Clears the request counts.
    pub fn reset_stats(&self) {
        self.lock().stats.clear();
    }

    /// Applies a scenario.
    pub fn apply(&self, scenario: &Scenario) -> Result<(), String> {
        let mut g = self.lock();
        if let Some(a) = &scenario.authorize {
            g.authorize = a.clone();
        }
        if let Some(p) = &scenario.partner {
            g.partner = p.clone();
        }
        if let Some(ms) = scenario.latency_ms {
            g.latency = Duration::from_millis(ms);
        }
        let customers: Vec<String> = g.world.customers().iter().map(|t| t.id.clone()).collect();
        // "*" first, so that entries naming a tenant override it.
        let mut entries: Vec<(&String, &TenantKnobs)> = scenario.tenants.iter().collect();
        entries.sort_by_key(|(k, _)| *k != "*");
        for (key, knobs) in entries {
            let ids: Vec<String> = if key == "*" {
                customers.clone()
            } else if let Ok(i) = key.parse::<usize>() {
                vec![customers.get(i).cloned().ok_or_else(|| format!("no customer tenant #{i}"))?]
            } else {
                let idx = g.world.tenant_index(key).ok_or_else(|| format!("no tenant {key:?}"))?;
                vec![g.world.tenants[idx].id.clone()]
            };
            for id in ids {
                g.world.knobs.insert(id, knobs.clone());
            }
        }
        Ok(())
    }
}

/// Settings of an emulator instance.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// World to generate.
    pub spec: WorldSpec,
    /// Latency per request.
    pub latency: Duration,
    /// The shared app's client id.
    pub client_id: String,
    /// The shared app's client secret.
    pub client_secret: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            spec: WorldSpec::default(),
            latency: Duration::ZERO,
            client_id: "6b1d0b7e-5c3a-4e8e-9a57-2f3c1d0e9a10".into(),
            client_secret: "emulator-client-secret".into(),
            redirect_uris: vec![],
        }
    }
}

/// A running emulator.
pub struct Emulator {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (tests turn knobs through it or through the control API).
    pub state: EmulatorState,
}

impl Emulator {
    /// Builds the state for a config.
    pub fn state_for(config: &EmulatorConfig) -> EmulatorState {
        EmulatorState(Arc::new(Mutex::new(Inner {
            world: World::generate(&config.spec),
            app: AppRegistration {
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                redirect_uris: config.redirect_uris.clone(),
            },
            authorize: AuthorizeMode::Page,
            partner: PartnerKnobs::default(),
            latency: config.latency,
            codes: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            stats: HashMap::new(),
            windows: HashMap::new(),
            ca_last: HashMap::new(),
        })))
    }

    /// All routes.
    pub fn router(state: EmulatorState) -> Router {
        Router::new().merge(identity::routes()).merge(graph::routes()).merge(control::routes()).with_state(state)
    }

    /// Binds and serves in the background.
    pub async fn spawn(bind: SocketAddr, config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let state = Self::state_for(&config);
        let router = Self::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, state })
    }

    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A random opaque token.
pub fn random_token(len: usize) -> String {
    use rand::{Rng, distributions::Alphanumeric};
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_apply_to_every_customer_an_index_or_a_domain() {
        let config = EmulatorConfig {
            spec: WorldSpec { seed: 1, tenants: 3, users_per_tenant: 1 },
            ..EmulatorConfig::default()
        };
        let state = Emulator::state_for(&config);
        let domain = state.lock().world.customers()[2].default_domain().to_owned();
        let scenario: Scenario = serde_json::from_value(serde_json::json!({
            "authorize": {"mode": "autoError", "error": "cancel"},
            "partner": {"refreshRevoked": true},
            "latencyMs": 15,
            "tenants": {"*": {"latencyMs": 1}, "0": {"p1": false}, domain: {"consentMissing": true}}
        }))
        .unwrap();
        state.apply(&scenario).unwrap();
        let g = state.lock();
        assert_eq!(g.authorize, AuthorizeMode::AutoError { error: "cancel".into() });
        assert!(g.partner.refresh_revoked);
        assert_eq!(g.latency, Duration::from_millis(15));
        let knobs: Vec<TenantKnobs> = g.world.customers().iter().map(|t| g.world.knobs(&t.id)).collect();
        assert!(knobs.iter().any(|k| k.p1 == Some(false)));
        assert!(knobs.iter().any(|k| k.consent_missing));
        assert!(knobs.iter().any(|k| k.latency_ms == 1));
        drop(g);
        let bad: Result<Scenario, _> = serde_json::from_str(r#"{"tenants": {"*": {"noSuchKnob": true}}}"#);
        assert!(bad.is_err(), "unknown knobs are refused, not ignored");
        let missing =
            Scenario { tenants: HashMap::from([("9".into(), TenantKnobs::default())]), ..Scenario::default() };
        assert!(state.apply(&missing).is_err());
    }
}
