//! The one error type of the service and its GraphQL codes (`extensions.code`, see `DESIGN.md`).
//!
//! Resolvers return `Result<T, AppError>`; the crate enables async-graphql's
//! `custom-error-conversion`, so nothing reaches a client without going through
//! [`AppError::extend`]. Internal errors are logged with an id and returned with that id only.

use std::{error::Error as StdError, sync::Arc};

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// The cause of an internal error, kept whole (its source chain is logged), shareable because
/// loader errors are shared between fields.
#[derive(Clone, Debug)]
pub struct InternalError {
    /// What was being done, e.g. "refreshing the partner token".
    context: Option<&'static str>,
    source: Arc<dyn StdError + Send + Sync>,
}

impl InternalError {
    /// The cause and every source below it, joined with ": ".
    pub fn chain(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.context {
            out.push_str(c);
            out.push_str(": ");
        }
        out.push_str(&self.source.to_string());
        let mut next = self.source.source();
        while let Some(e) = next {
            out.push_str(": ");
            out.push_str(&e.to_string());
            next = e.source();
        }
        out
    }
}

impl std::fmt::Display for InternalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.context {
            Some(c) => write!(f, "{c}: {}", self.source),
            None => write!(f, "{}", self.source),
        }
    }
}

impl StdError for InternalError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Everything that can go wrong at the API boundary.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppError {
    /// No token, or a token that is malformed, badly signed, expired or of an unknown account.
    #[error("Authentication required: {0}")]
    Unauthenticated(String),
    /// The caller lacks a permission.
    #[error("{0}")]
    Forbidden(String),
    /// The account does not have the Microsoft 365 tab.
    #[error("The Microsoft 365 integration is not enabled for this account. Contact Scopable to request access.")]
    FeatureDisabled,
    /// Microsoft 365 is not connected for this account.
    #[error("Microsoft 365 is not connected. Click Connect M365 first.")]
    NotConnected,
    /// A manual sync was triggered too recently.
    #[error("Please wait {retry_after_seconds} seconds before triggering another sync.")]
    SyncCooldown {
        /// Seconds until a manual sync may be triggered again.
        retry_after_seconds: i64,
    },
    /// A sync holds the lock.
    #[error("A sync is already running. Wait for the current run to finish, then trigger again.")]
    SyncAlreadyRunning,
    /// Nothing of that kind with that id in the caller's account.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Invalid input; `field` names the offending argument or item.
    #[error("{message}")]
    BadUserInput {
        /// What is wrong, for a person.
        message: String,
        /// Path of the offending input, e.g. `clients[3].domains[0]`.
        field: Option<String>,
    },
    /// The request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The stored Microsoft authorization expired or was revoked.
    #[error("Your Microsoft authorization has expired or been revoked.")]
    AuthorizationRevoked,
    /// The per-user rows behind an evidence snapshot were purged (disconnect, or the tenant left
    /// GDAP); its figures and digests remain.
    #[error(
        "The per-user rows of evidence snapshot {snapshot} were purged ({reason}); only its figures and digests remain."
    )]
    EvidenceRowsPurged {
        /// The snapshot's id.
        snapshot: i64,
        /// Why they were purged.
        reason: String,
    },
    /// Anything unexpected; the cause and its sources are logged, never returned.
    #[error("internal error: {0}")]
    Internal(#[source] InternalError),
}

impl AppError {
    /// Bad input about one field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput { message: message.into(), field: Some(field.into()) }
    }

    /// An internal error caused by `err` (kept as its source).
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(InternalError { context: None, source: Arc::from(err.into()) })
    }

    /// An internal error caused by `err` while doing `context`.
    pub fn internal_while(context: &'static str, err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(InternalError { context: Some(context), source: Arc::from(err.into()) })
    }

    /// The value of `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::FeatureDisabled => "FEATURE_DISABLED",
            Self::NotConnected => "NOT_CONNECTED",
            Self::SyncCooldown { .. } => "SYNC_COOLDOWN",
            Self::SyncAlreadyRunning => "SYNC_ALREADY_RUNNING",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::AuthorizationRevoked => "M365_AUTHORIZATION_REVOKED",
            Self::EvidenceRowsPurged { .. } => "EVIDENCE_ROWS_PURGED",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        Self::internal_while("database", err)
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            Self::Internal(detail) => {
                let id = uuid::Uuid::new_v4();
                tracing::error!(error_id = %id, error = %detail.chain(), "internal error");
                return async_graphql::Error::new(format!("Internal server error (error id {id})")).extend_with(
                    |_, e| {
                        e.set("code", "INTERNAL_SERVER_ERROR");
                        e.set("errorId", id.to_string());
                    },
                );
            }
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, e| {
            e.set("code", self.code());
            match self {
                Self::SyncCooldown { retry_after_seconds } => e.set("retryAfterSeconds", *retry_after_seconds),
                Self::BadUserInput { field: Some(field), .. } => e.set("field", field.as_str()),
                _ => {}
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.extend()
    }
}

/// Codes of errors that are answered before or around resolvers (transport, limits), so no
/// [`AppError`] carries them. Every `extensions.code` the service sends is here or in
/// [`AppError::code`].
pub mod codes {
    /// A document over a query limit (`extensions.limit`, `extensions.max`).
    pub const QUERY_LIMIT_EXCEEDED: &str = "QUERY_LIMIT_EXCEEDED";
    /// The summary error standing for the errors left out of a response.
    pub const TOO_MANY_ERRORS: &str = "TOO_MANY_ERRORS";
    /// A query or mutation stopped at `REQUEST_TIMEOUT_SECS` (HTTP 503).
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// A body over `BODY_LIMIT_BYTES` (HTTP 413).
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// A body that did not arrive within `HTTP_BODY_TIMEOUT_SECS` (HTTP 408).
    pub const BODY_TIMEOUT: &str = "BODY_TIMEOUT";
    /// A connection over `HTTP_MAX_CONNECTIONS` (HTTP 503; written as bytes by the server).
    pub const TOO_MANY_CONNECTIONS: &str = "TOO_MANY_CONNECTIONS";
    /// An evidence export over `EVIDENCE_EXPORTS_PER_ACCOUNT` or `EVIDENCE_MAX_EXPORTS` (HTTP 503).
    pub const TOO_MANY_EXPORTS: &str = "TOO_MANY_EXPORTS";
    /// A subscription over `WS_MAX_SUBSCRIPTIONS_PER_SOCKET`.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// A parse or validation error of a document.
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// A WebSocket `connection_init` without a valid token.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
}

/// Result type of resolvers and domain services.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Value;

    fn ext(err: AppError) -> (String, async_graphql::ErrorExtensionValues) {
        let e: async_graphql::Error = err.into();
        (e.message, e.extensions.expect("every error carries extensions"))
    }

    fn code_of(err: AppError) -> Value {
        ext(err).1.get("code").cloned().unwrap()
    }

    #[test]
    fn every_variant_maps_to_its_design_code() {
        let cases = [
            (AppError::Unauthenticated("x".into()), "UNAUTHENTICATED"),
            (AppError::Forbidden("x".into()), "FORBIDDEN"),
            (AppError::FeatureDisabled, "FEATURE_DISABLED"),
            (AppError::NotConnected, "NOT_CONNECTED"),
            (AppError::SyncCooldown { retry_after_seconds: 3 }, "SYNC_COOLDOWN"),
            (AppError::SyncAlreadyRunning, "SYNC_ALREADY_RUNNING"),
            (AppError::NotFound("client"), "NOT_FOUND"),
            (AppError::bad_input("f", "m"), "BAD_USER_INPUT"),
            (AppError::Conflict("x".into()), "CONFLICT"),
            (AppError::AuthorizationRevoked, "M365_AUTHORIZATION_REVOKED"),
            (AppError::EvidenceRowsPurged { snapshot: 1, reason: "r".into() }, "EVIDENCE_ROWS_PURGED"),
            (AppError::internal("x"), "INTERNAL_SERVER_ERROR"),
        ];
        for (err, code) in cases {
            assert_eq!(code_of(err), Value::from(code));
        }
    }

    #[test]
    fn cooldown_carries_seconds_left() {
        let (msg, e) = ext(AppError::SyncCooldown { retry_after_seconds: 17 });
        assert_eq!(e.get("retryAfterSeconds"), Some(&Value::from(17)));
        assert!(msg.contains("17 seconds"));
    }

    #[test]
    fn bad_input_names_the_field() {
        let (msg, e) = ext(AppError::bad_input("clients[2].domains[0]", "not a domain"));
        assert_eq!(msg, "not a domain");
        assert_eq!(e.get("field"), Some(&Value::from("clients[2].domains[0]")));
    }

    #[test]
    fn internal_errors_hide_details_and_carry_an_id() {
        let (msg, e) = ext(AppError::from(DbErr::Custom("password=hunter2 at db.internal".into())));
        assert!(!msg.contains("hunter2") && !msg.contains("db.internal"));
        let id = e.get("errorId").expect("error id").to_string();
        assert!(msg.contains(id.trim_matches('"')));
    }

    #[test]
    fn internal_errors_keep_their_source_chain() {
        let err = AppError::internal_while("database", DbErr::Custom("disk full".into()));
        let AppError::Internal(inner) = &err else { panic!("internal") };
        assert_eq!(inner.chain(), "database: Custom Error: disk full");
        let source = StdError::source(&err).expect("the cause is the source");
        assert!(source.to_string().contains("disk full"));
        assert!(source.source().is_some(), "and the database error below it");
    }

    #[test]
    fn revoked_authorization_uses_the_guide_text() {
        let (msg, _) = ext(AppError::AuthorizationRevoked);
        assert_eq!(msg, "Your Microsoft authorization has expired or been revoked.");
    }
}
