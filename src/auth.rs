//! API tokens: HS256 JWTs signed with `AUTH_JWT_SECRET`, carrying `sub`, `account_id`,
//! `permissions` and `exp`. Used by the HTTP layer, the WebSocket handshake and `token`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{config::Secret, error::AppError};

/// The permission every mutation needs.
pub const MANAGE_TENANT_SETTINGS: &str = "manage_tenant_settings";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(deserialize_with = "number_or_string")]
    account_id: i64,
    #[serde(default)]
    permissions: Vec<String>,
    exp: i64,
}

/// Accepts `"account_id": 7` as well as `"account_id": "7"` (platforms differ).
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        N(i64),
        S(String),
    }
    match Id::deserialize(d)? {
        Id::N(n) => Ok(n),
        Id::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// Who is calling: the token's subject, account and permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user (`sub`), recorded as `connected_by`, `created_by`.
    pub user: String,
    /// The MSP account every query is scoped to.
    pub account_id: i64,
    /// Granted permissions.
    pub permissions: Vec<String>,
    /// When the token expires (seconds since the epoch); a WebSocket closes then.
    pub expires_at: i64,
}

impl Caller {
    /// Whether the caller holds `manage_tenant_settings`.
    pub fn can_manage(&self) -> bool {
        self.permissions.iter().any(|p| p == MANAGE_TENANT_SETTINGS)
    }
}

/// Signs and verifies API tokens.
#[derive(Clone)]
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AuthKeys {
    /// Keys from the shared secret.
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Mints a token valid for `ttl`.
    pub fn mint(&self, account_id: i64, user: &str, permissions: &[String], ttl: Duration) -> String {
        let exp = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
        self.mint_with_exp(account_id, user, permissions, exp)
    }

    /// Mints a token with an explicit expiry (seconds since the epoch); tests use past ones.
    pub fn mint_with_exp(&self, account_id: i64, user: &str, permissions: &[String], exp: i64) -> String {
        let claims = Claims { sub: user.to_owned(), account_id, permissions: permissions.to_vec(), exp };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// Verifies a token; the error says why in words a caller can act on.
    pub fn verify(&self, token: &str) -> Result<Caller, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            AppError::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf is in the future)",
                    ErrorKind::InvalidSignature => "the token signature is invalid",
                    ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                        "the token lacks the claims sub, account_id, permissions and exp"
                    }
                    _ => "the token is malformed",
                }
                .to_owned(),
            )
        })?;
        let c = data.claims;
        if c.sub.trim().is_empty() {
            return Err(AppError::Unauthenticated("the token's sub (the user) is empty".into()));
        }
        Ok(Caller { user: c.sub, account_id: c.account_id, permissions: c.permissions, expires_at: c.exp })
    }
}

/// What the transport found about the caller before any resolver ran.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No credentials were sent.
    Anonymous,
    /// Credentials were sent and rejected (the reason).
    Rejected(String),
    /// A verified caller.
    Caller(Caller),
}

impl Auth {
    /// From an `Authorization` header value (`Bearer <token>`), if any.
    pub fn from_header(keys: &AuthKeys, header: Option<&str>) -> Self {
        match header {
            None => Self::Anonymous,
            // Auth schemes are case-insensitive (RFC 9110 §11.1).
            Some(value) => match value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")) {
                Some((_, token)) => match keys.verify(token.trim()) {
                    Ok(caller) => Self::Caller(caller),
                    Err(AppError::Unauthenticated(why)) => Self::Rejected(why),
                    Err(other) => Self::Rejected(other.to_string()),
                },
                None => Self::Rejected("use the Authorization: Bearer <token> scheme".into()),
            },
        }
    }

    /// The caller, or `UNAUTHENTICATED`.
    pub fn caller(&self) -> Result<&Caller, AppError> {
        match self {
            Self::Caller(c) => Ok(c),
            Self::Anonymous => Err(AppError::Unauthenticated("send Authorization: Bearer <token>".into())),
            Self::Rejected(why) => Err(AppError::Unauthenticated(why.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> AuthKeys {
        AuthKeys::new(&Secret::new(s))
    }

    #[test]
    fn round_trip() {
        let k = keys("s3cret");
        let t = k.mint(7, "alice", &[MANAGE_TENANT_SETTINGS.into()], Duration::from_secs(60));
        let c = k.verify(&t).unwrap();
        assert_eq!((c.account_id, c.user.as_str(), c.can_manage()), (7, "alice", true));
    }

    #[test]
    fn rejects_other_secret_and_expiry() {
        let t = keys("a").mint(1, "u", &[], Duration::from_secs(60));
        assert!(matches!(keys("b").verify(&t), Err(AppError::Unauthenticated(m)) if m.contains("signature")));
        let old = keys("a").mint_with_exp(1, "u", &[], chrono::Utc::now().timestamp() - 3600);
        assert!(matches!(keys("a").verify(&old), Err(AppError::Unauthenticated(m)) if m.contains("expired")));
    }

    #[test]
    fn account_id_may_be_a_string() {
        let k = keys("a");
        let claims =
            serde_json::json!({"sub":"u","account_id":"42","permissions":[],"exp": chrono::Utc::now().timestamp()+60});
        let t = jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"a")).unwrap();
        assert_eq!(k.verify(&t).unwrap().account_id, 42);
    }

    #[test]
    fn future_nbf_and_empty_sub_are_refused() {
        let k = keys("a");
        let now = chrono::Utc::now().timestamp();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"a")).unwrap()
        };
        let nbf = sign(serde_json::json!({"sub":"u","account_id":1,"exp": now + 600,"nbf": now + 300}));
        assert!(matches!(k.verify(&nbf), Err(AppError::Unauthenticated(m)) if m.contains("nbf")));
        let past_nbf = sign(serde_json::json!({"sub":"u","account_id":1,"exp": now + 600,"nbf": now - 10}));
        assert!(k.verify(&past_nbf).is_ok());
        let empty = sign(serde_json::json!({"sub":" ","account_id":1,"exp": now + 600}));
        assert!(matches!(k.verify(&empty), Err(AppError::Unauthenticated(m)) if m.contains("sub")));
    }

    #[test]
    fn header_parsing() {
        let k = keys("a");
        let t = k.mint(3, "u", &[], Duration::from_secs(60));
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert!(matches!(Auth::from_header(&k, Some(&format!("{scheme} {t}"))), Auth::Caller(_)), "{scheme}");
        }
        assert!(matches!(Auth::from_header(&k, None), Auth::Anonymous));
        assert!(matches!(Auth::from_header(&k, Some("Basic abc")), Auth::Rejected(_)));
        assert!(matches!(Auth::from_header(&k, Some("Bearer nope")), Auth::Rejected(_)));
    }
}
