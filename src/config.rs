//! Typed configuration, read from environment variables or `serve` flags (each flag has the
//! environment variable named in `DESIGN.md`). Secrets are wrapped in [`Secret`] so that they
//! never print, not even through `Debug`.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use clap::Args;
use url::Url;

/// A secret value (client secret, JWT secret, encryption key). `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The SQLite file used when `DATABASE_URL` is not set (created in the working directory).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://m365-integration.db?mode=rwc";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `serve` needs. Each field is a flag and an environment variable.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,

    /// The service's public base URL; the OAuth redirect URI is `{PUBLIC_URL}/oauth/m365/callback`.
    /// Defaults to `http://{BIND_ADDR}`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// Where the browser is sent after connecting (`?m365=connected` or `?m365_error=CODE`).
    /// Without it the callback renders a small page with the outcome.
    #[arg(long, env = "FRONTEND_URL")]
    pub frontend_url: Option<Url>,

    /// Application (client) id of the shared multi-tenant app.
    #[arg(long, env = "M365_CLIENT_ID", default_value = "")]
    pub m365_client_id: String,

    /// Client secret of the shared app.
    #[arg(long, env = "M365_CLIENT_SECRET", hide_env_values = true, default_value = "")]
    pub m365_client_secret: Secret,

    /// Microsoft identity platform base URL.
    #[arg(long, env = "M365_AUTHORITY_URL", default_value = "https://login.microsoftonline.com")]
    pub m365_authority_url: Url,

    /// Microsoft Graph base URL.
    #[arg(long, env = "M365_GRAPH_URL", default_value = "https://graph.microsoft.com")]
    pub m365_graph_url: Url,

    /// URL of Microsoft's product-names CSV (license friendly names). Unset: SKU part numbers.
    #[arg(long, env = "M365_LICENSE_NAMES_URL")]
    pub m365_license_names_url: Option<Url>,

    /// Base64 of 32 random bytes; encrypts stored refresh tokens (AES-256-GCM).
    /// Make one with `openssl rand -base64 32`.
    #[arg(long, env = "TOKEN_ENCRYPTION_KEY", hide_env_values = true)]
    pub token_encryption_key: Option<Secret>,

    /// HS256 secret that API tokens are signed with.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<Secret>,

    /// Interval between scheduled syncs of each connected account (e.g. `6h`, `30m`); `0` disables.
    #[arg(long, env = "SYNC_INTERVAL", default_value = "6h", value_parser = parse_duration)]
    pub sync_interval: Duration,

    /// Customer tenants synced in parallel.
    #[arg(long, env = "SYNC_CONCURRENCY", default_value_t = 8)]
    pub sync_concurrency: usize,

    /// Seconds a sync's lease (its lock) lives without renewal; a dead worker's lock frees after it.
    #[arg(long, env = "SYNC_LEASE_SECS", default_value_t = 60)]
    pub sync_lease_secs: u64,

    /// Earlier encryption keys, comma-separated, still accepted for reading stored tokens.
    #[arg(long, env = "TOKEN_ENCRYPTION_PREVIOUS_KEYS", hide_env_values = true, value_delimiter = ',')]
    pub token_encryption_previous_keys: Vec<Secret>,

    /// Maximum request body size in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Maximum query depth.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,

    /// Maximum query complexity (each field costs 1; lists multiply by `first`, nested lists
    /// without `first` by 10). A page of 100 users with every nested field costs about 5,000.
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 20_000)]
    pub graphql_max_complexity: usize,

    /// Maximum number of aliased fields in one document.
    #[arg(long, env = "GRAPHQL_MAX_ALIASES", default_value_t = 30)]
    pub graphql_max_aliases: usize,

    /// Maximum number of root fields in one operation.
    #[arg(long, env = "GRAPHQL_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub graphql_max_root_fields: usize,

    /// Maximum number of directives in one document.
    #[arg(long, env = "GRAPHQL_MAX_DIRECTIVES", default_value_t = 20)]
    pub graphql_max_directives: usize,

    /// Maximum number of lexical tokens in one document (checked before parsing).
    #[arg(long, env = "GRAPHQL_MAX_TOKENS", default_value_t = 10_000)]
    pub graphql_max_tokens: usize,

    /// Maximum bracket nesting in one document: selection sets, arguments, list and object
    /// values together (checked before parsing, so deep values cannot exhaust the parser's stack).
    #[arg(long, env = "GRAPHQL_MAX_NESTING", default_value_t = 64)]
    pub graphql_max_nesting: usize,

    /// Maximum number of arguments on one field or directive.
    #[arg(long, env = "GRAPHQL_MAX_ARGUMENTS", default_value_t = 16)]
    pub graphql_max_arguments: usize,

    /// Most errors one response carries; the rest are summed up in one `TOO_MANY_ERRORS` error.
    #[arg(long, env = "GRAPHQL_MAX_ERRORS", default_value_t = 50)]
    pub graphql_max_errors: usize,

    /// Bearer token `GET /metrics` requires; unset, the metrics are open (bind them to an
    /// internal network).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Evidence exports streaming at once, per account and in the whole process; each holds a
    /// database connection while its client reads, so a slow reader cannot take the pool. One
    /// more gets 503 `TOO_MANY_EXPORTS`.
    #[arg(long, env = "EVIDENCE_EXPORTS_PER_ACCOUNT", default_value_t = 2)]
    pub evidence_exports_per_account: usize,

    /// See `EVIDENCE_EXPORTS_PER_ACCOUNT`: the cap over all accounts.
    #[arg(long, env = "EVIDENCE_MAX_EXPORTS", default_value_t = 8)]
    pub evidence_max_exports: usize,

    /// Days MFA evidence (per-user history and snapshots) is kept; older evidence is pruned after
    /// each sync, and `asOf` answers reach back this far.
    #[arg(long, env = "EVIDENCE_RETENTION_DAYS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub evidence_retention_days: u32,

    /// Seconds one GraphQL query or mutation may run before it is stopped with `REQUEST_TIMEOUT`.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Suggestion scorings that run at once (on blocking threads, off the async workers), across
    /// all requests; further ones wait their turn.
    #[arg(long, env = "SUGGESTION_WORKERS", default_value_t = 1)]
    pub suggestion_workers: usize,

    /// Allow schema introspection (GraphiQL needs it).
    #[arg(long, env = "GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_introspection: bool,

    /// Seconds a WebSocket client has to send `connection_init`.
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Most subscriptions one WebSocket may run at once; one more is answered with an `error`
    /// message (`TOO_MANY_SUBSCRIPTIONS`) and the socket stays open.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS_PER_SOCKET", default_value_t = 32)]
    pub ws_max_subscriptions_per_socket: usize,

    /// Most WebSockets open at once for one token subject (account + `sub`); one more is closed
    /// with 4429 at `connection_init`.
    #[arg(long, env = "WS_MAX_SOCKETS_PER_TOKEN", default_value_t = 16)]
    pub ws_max_sockets_per_token: usize,

    /// Seconds a client has to send a request's headers, counted from when the server starts
    /// waiting for them: a slow (slowloris) or idle keep-alive connection is closed after it.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,

    /// Seconds a request body may take to arrive; a stalled upload gets `408`.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub http_body_timeout_secs: u64,

    /// Most connections open at once; one more is answered `503` with `Retry-After` and closed.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub http_max_connections: usize,

    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// The defaults, as if no flag and no variable were given (tests start from this).
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        <Wrapper as clap::Parser>::parse_from(["m365-integration"]).config
    }

    /// `PUBLIC_URL`, or `http://BIND_ADDR`.
    pub fn public_url(&self) -> Url {
        self.public_url
            .clone()
            .unwrap_or_else(|| Url::parse(&format!("http://{}", self.bind_addr)).expect("a socket address makes a URL"))
    }

    /// The sync lease length.
    pub fn sync_lease(&self) -> Duration {
        Duration::from_secs(self.sync_lease_secs.max(1))
    }

    /// The OAuth redirect URI registered on the shared app.
    pub fn redirect_uri(&self) -> Url {
        let mut url = self.public_url();
        url.set_path("/oauth/m365/callback");
        url.set_query(None);
        url
    }
}

/// Parses `90s`, `30m`, `6h`, `1d`, or `0` (disabled).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        let mut c = Config::defaults();
        c.auth_jwt_secret = Some(s);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn redirect_uri_follows_public_url() {
        let mut c = Config::defaults();
        assert_eq!(c.redirect_uri().as_str(), "http://127.0.0.1:8080/oauth/m365/callback");
        c.public_url = Some(Url::parse("https://m365.example.com/base?x=1").unwrap());
        assert_eq!(c.redirect_uri().as_str(), "https://m365.example.com/oauth/m365/callback");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        assert!(parse_duration("soon").is_err());
    }
}
