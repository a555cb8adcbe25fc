//! The Microsoft identity platform client (auth-code flow with PKCE, refresh against any
//! tenant's authority), on `oauth2` 5 with Microsoft's error body, and the typed errors the
//! product maps to its messages. Errors are classified by `error` / `error_codes`, never by text.

use std::{fmt, time::Duration};

use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
    basic::{BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse},
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Secret;

/// Microsoft's token-endpoint error body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MsTokenError {
    /// OAuth error, e.g. `invalid_grant`.
    pub error: String,
    /// Starts with `AADSTSnnnn: `; never shown to users as is.
    pub error_description: Option<String>,
    /// AADSTS numbers.
    pub error_codes: Vec<u32>,
    /// E.g. `consent_required`, `bad_token`.
    pub suberror: Option<String>,
    /// When it happened.
    pub timestamp: Option<String>,
    /// For Microsoft support.
    pub trace_id: Option<String>,
    /// For Microsoft support.
    pub correlation_id: Option<String>,
}

impl fmt::Display for MsTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (AADSTS{})", self.error, self.error_codes.first().copied().unwrap_or_default())
    }
}

impl oauth2::ErrorResponse for MsTokenError {}

/// Why Microsoft refused, in the product's terms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The person cancelled or declined consent (AADSTS65004, `access_denied`).
    #[error("consent was denied")]
    ConsentDenied,
    /// A non-admin tried to grant admin-only permissions (AADSTS90094 / 90095).
    #[error("admin consent is required")]
    AdminConsentRequired,
    /// The refresh token expired through inactivity (AADSTS700082, 70008, 700084).
    #[error("the refresh token has expired (AADSTS{0})")]
    RefreshTokenExpired(u32),
    /// The grant was revoked (AADSTS50173, 70000, 70043).
    #[error("the authorization was revoked (AADSTS{0})")]
    RefreshTokenRevoked(u32),
    /// The app is not consented in a customer tenant (AADSTS65001 / 90099).
    #[error("the app is not consented in the tenant (AADSTS{0})")]
    ConsentMissing(u32),
    /// The partner user has no GDAP access to the tenant (AADSTS50020 and kin).
    #[error("no GDAP access to the tenant (AADSTS{0})")]
    NoGdapAccess(u32),
    /// MFA or conditional access needs the user interactively (AADSTS50076…, 53003).
    #[error("interaction is required (AADSTS{0})")]
    InteractionRequired(u32),
    /// The service's client id or secret is wrong or expired.
    #[error("the app's client credentials were rejected (AADSTS{0})")]
    InvalidClient(u32),
    /// The tenant does not exist (AADSTS90002).
    #[error("the tenant was not found (AADSTS{0})")]
    TenantNotFound(u32),
    /// Another refusal of a grant (bad code, PKCE mismatch, reused code…).
    #[error("{error} (AADSTS{code})")]
    Rejected {
        /// OAuth `error`.
        error: String,
        /// First AADSTS number (0 when none).
        code: u32,
    },
    /// Microsoft could not be reached or answered nonsense.
    #[error("Microsoft's identity platform could not be reached: {0}")]
    Transport(String),
}

impl IdentityError {
    /// The AADSTS number behind the error, when there is one.
    pub fn aadsts(&self) -> Option<u32> {
        match self {
            Self::RefreshTokenExpired(c)
            | Self::RefreshTokenRevoked(c)
            | Self::ConsentMissing(c)
            | Self::NoGdapAccess(c)
            | Self::InteractionRequired(c)
            | Self::InvalidClient(c)
            | Self::TenantNotFound(c)
            | Self::Rejected { code: c, .. } => Some(*c).filter(|c| *c != 0),
            _ => None,
        }
    }

    /// Whether the stored authorization is dead (reconnect needed).
    pub fn is_authorization_revoked(&self) -> bool {
        matches!(self, Self::RefreshTokenExpired(_) | Self::RefreshTokenRevoked(_))
    }
}

/// Classifies a token-endpoint error by `error`, `error_codes` and `suberror`.
pub fn classify(e: &MsTokenError) -> IdentityError {
    let code =
        e.error_codes.first().copied().unwrap_or_else(|| aadsts_in(e.error_description.as_deref().unwrap_or("")));
    match code {
        700082 | 70008 | 700084 => return IdentityError::RefreshTokenExpired(code),
        50173 | 70000 | 70043 => return IdentityError::RefreshTokenRevoked(code),
        65001 | 90099 => return IdentityError::ConsentMissing(code),
        50020 | 50177 | 50034 | 16000 | 51004 | 530034 => return IdentityError::NoGdapAccess(code),
        50076 | 50079 | 50072 | 50074 | 53003 => return IdentityError::InteractionRequired(code),
        7000215 | 7000222 | 70002 | 7000218 | 700016 => return IdentityError::InvalidClient(code),
        90002 | 5000224 => return IdentityError::TenantNotFound(code),
        65004 => return IdentityError::ConsentDenied,
        90094 | 90095 => return IdentityError::AdminConsentRequired,
        _ => {}
    }
    match (e.error.as_str(), e.suberror.as_deref()) {
        ("invalid_client", _) | ("unauthorized_client", _) => IdentityError::InvalidClient(code),
        ("interaction_required", _) | (_, Some("basic_action" | "additional_action")) => {
            IdentityError::InteractionRequired(code)
        }
        ("consent_required", _) | (_, Some("consent_required")) => IdentityError::ConsentMissing(code),
        (_, Some("bad_token" | "token_expired")) => IdentityError::RefreshTokenExpired(code),
        (error, _) => IdentityError::Rejected { error: error.to_owned(), code },
    }
}

/// The first `AADSTSnnnn` in a text (0 when none).
pub fn aadsts_in(text: &str) -> u32 {
    text.find("AADSTS")
        .map(|i| text[i + 6..].chars().take_while(char::is_ascii_digit).collect::<String>())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Classifies the error a browser brought back to the redirect URI.
pub fn classify_redirect(error: &str, description: Option<&str>, subcode: Option<&str>) -> IdentityError {
    let code = aadsts_in(description.unwrap_or(""));
    match (error, code, subcode) {
        (_, 90094 | 90095, _) => IdentityError::AdminConsentRequired,
        ("access_denied" | "consent_required", _, _) | (_, 65004, _) | (_, _, Some("cancel")) => {
            IdentityError::ConsentDenied
        }
        (error, code, _) => IdentityError::Rejected { error: error.to_owned(), code },
    }
}

/// Tokens from the token endpoint. Secrets stay wrapped.
#[derive(Debug)]
pub struct TokenSet {
    /// Bearer token for Graph in the tenant it was issued for.
    pub access_token: Secret,
    /// Present when `offline_access` was granted.
    pub refresh_token: Option<Secret>,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// Granted scopes (as Microsoft lists them).
    pub scopes: Vec<String>,
}

/// The start of a connect: where to send the browser and the PKCE verifier to keep.
pub struct AuthorizationStart {
    /// Microsoft's authorize URL.
    pub url: Url,
    /// PKCE verifier for the code exchange.
    pub pkce_verifier: Secret,
}

type MsClient = oauth2::Client<
    MsTokenError,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Scopes the service asks for at connect: OIDC, a refresh token, and the app's configured
/// Graph permissions (directory, users, licenses, reports, authentication methods, GDAP).
pub const CONNECT_SCOPES: &[&str] = &["openid", "profile", "offline_access", "https://graph.microsoft.com/.default"];

/// Scope of Graph tokens for a customer tenant.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The identity platform client of the shared multi-tenant app.
#[derive(Clone)]
pub struct IdentityClient {
    authority: Url,
    client_id: String,
    client_secret: Secret,
    redirect_uri: Url,
    http: reqwest::Client,
}

impl IdentityClient {
    /// A client for the app at an authority (`https://login.microsoftonline.com` or the emulator).
    pub fn new(authority: Url, client_id: &str, client_secret: Secret, redirect_uri: Url, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            // The token endpoint must never redirect (oauth2's advice against SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .expect("a TLS backend is compiled in");
        Self { authority, client_id: client_id.to_owned(), client_secret, redirect_uri, http }
    }

    fn endpoint(&self, tenant: &str, tail: &str) -> Url {
        let mut u = self.authority.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}/{tenant}/oauth2/v2.0/{tail}"));
        u
    }

    fn client(&self, tenant: &str) -> MsClient {
        oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(self.endpoint("organizations", "authorize")))
            .set_token_uri(TokenUrl::from_url(self.endpoint(tenant, "token")))
            .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()))
            .set_auth_type(AuthType::RequestBody)
    }

    /// The consent URL for a state, with a fresh PKCE (S256) challenge.
    pub fn authorization_url(&self, state: &str) -> AuthorizationStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _) = self
            .client("organizations")
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(CONNECT_SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .add_extra_param("prompt", "select_account")
            .url();
        AuthorizationStart { url, pkce_verifier: Secret::new(verifier.secret().clone()) }
    }

    /// Redeems an authorization code (with its PKCE verifier) in the partner's tenant.
    pub async fn exchange_code(&self, code: &str, pkce_verifier: &Secret) -> Result<TokenSet, IdentityError> {
        let res = self
            .client("organizations")
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose().to_owned()))
            .request_async(&self.http)
            .await;
        map(res)
    }

    /// Uses a refresh token against a tenant's authority (`organizations` for the partner, a
    /// customer's tenant id for GDAP access) for a Graph token.
    pub async fn refresh(&self, tenant: &str, refresh_token: &Secret) -> Result<TokenSet, IdentityError> {
        let rt = RefreshToken::new(refresh_token.expose().to_owned());
        let client = self.client(tenant);
        let res = client
            .exchange_refresh_token(&rt)
            .add_scope(Scope::new(GRAPH_DEFAULT_SCOPE.into()))
            .add_scope(Scope::new("offline_access".into()))
            .request_async(&self.http)
            .await;
        map(res)
    }
}

fn map<E: std::error::Error + 'static>(
    res: Result<BasicTokenResponse, RequestTokenError<E, MsTokenError>>,
) -> Result<TokenSet, IdentityError> {
    // The token endpoint answers 200 or 400 (an error body); anything else is transport.
    crate::metrics::microsoft_request(
        "token",
        match &res {
            Ok(_) => Some(200),
            Err(RequestTokenError::ServerResponse(_)) => Some(400),
            Err(_) => None,
        },
    );
    match res {
        Ok(t) => Ok(TokenSet {
            access_token: Secret::new(t.access_token().secret().clone()),
            refresh_token: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
            expires_in: t.expires_in().unwrap_or(Duration::from_secs(3599)),
            scopes: t.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default(),
        }),
        Err(RequestTokenError::ServerResponse(e)) => Err(classify(&e)),
        // Never include the body: it might echo a token.
        Err(RequestTokenError::Parse(e, _)) => Err(IdentityError::Transport(format!("unreadable token response: {e}"))),
        Err(RequestTokenError::Request(e)) => Err(IdentityError::Transport(e.to_string())),
        Err(RequestTokenError::Other(e)) => Err(IdentityError::Transport(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> IdentityError {
        classify(&serde_json::from_str::<MsTokenError>(json).unwrap())
    }

    #[test]
    fn documented_error_bodies() {
        assert_eq!(
            parse(
                r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: x","error_codes":[700082],"timestamp":"2024-01-01 00:00:00Z","trace_id":"t","correlation_id":"c","suberror":"bad_token"}"#
            ),
            IdentityError::RefreshTokenExpired(700082)
        );
        assert_eq!(
            parse(r#"{"error":"invalid_grant","error_codes":[50173]}"#),
            IdentityError::RefreshTokenRevoked(50173)
        );
        assert_eq!(
            parse(r#"{"error":"invalid_grant","error_codes":[65001],"suberror":"consent_required"}"#),
            IdentityError::ConsentMissing(65001)
        );
        assert_eq!(parse(r#"{"error":"invalid_grant","error_codes":[50020]}"#), IdentityError::NoGdapAccess(50020));
        assert_eq!(
            parse(r#"{"error":"invalid_grant","error_codes":[50076],"suberror":"basic_action"}"#),
            IdentityError::InteractionRequired(50076)
        );
        assert_eq!(
            parse(r#"{"error":"invalid_client","error_codes":[7000215]}"#),
            IdentityError::InvalidClient(7000215)
        );
        assert_eq!(parse(r#"{"error":"invalid_request","error_codes":[90002]}"#), IdentityError::TenantNotFound(90002));
        assert_eq!(
            parse(r#"{"error":"invalid_grant","error_codes":[54005]}"#),
            IdentityError::Rejected { error: "invalid_grant".into(), code: 54005 }
        );
        // v1-style body without error_codes: the number comes from the description.
        assert_eq!(
            parse(r#"{"error":"invalid_grant","error_description":"AADSTS70008: expired"}"#),
            IdentityError::RefreshTokenExpired(70008)
        );
        assert_eq!(parse(r#"{"error":"interaction_required"}"#), IdentityError::InteractionRequired(0));
    }

    #[test]
    fn redirect_errors() {
        assert_eq!(classify_redirect("access_denied", None, Some("cancel")), IdentityError::ConsentDenied);
        assert_eq!(
            classify_redirect("consent_required", Some("AADSTS65004: User declined to consent"), None),
            IdentityError::ConsentDenied
        );
        assert_eq!(
            classify_redirect("access_denied", Some("AADSTS90094: Admin consent is required"), None),
            IdentityError::AdminConsentRequired
        );
        assert_eq!(
            classify_redirect("access_denied", Some("AADSTS90095: request approval"), None),
            IdentityError::AdminConsentRequired
        );
        assert!(matches!(
            classify_redirect("server_error", Some("AADSTS50000: x"), None),
            IdentityError::Rejected { code: 50000, .. }
        ));
    }

    #[test]
    fn authorization_url_has_pkce_and_state() {
        let c = IdentityClient::new(
            Url::parse("http://login.test/").unwrap(),
            "cid",
            Secret::new("s"),
            Url::parse("http://svc.test/oauth/m365/callback").unwrap(),
            Duration::from_secs(5),
        );
        let start = c.authorization_url("st4te");
        let q: std::collections::HashMap<_, _> = start.url.query_pairs().into_owned().collect();
        assert_eq!(start.url.path(), "/organizations/oauth2/v2.0/authorize");
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["response_type"], "code");
        assert!(q["scope"].contains("offline_access"));
        assert!(start.pkce_verifier.expose().len() >= 43);
    }
}
