//! Clients for Microsoft: the identity platform ([`identity`], on `oauth2`) and Microsoft Graph
//! ([`graph`], on `reqwest`), with typed errors, paging, `$batch` and retries; [`directory`] holds every Graph read the
//! service makes (paths, `$select`, `$filter`, `$top`), typed. Every base URL
//! comes from configuration, so tests and `demo` point them at the emulator.

pub mod directory;
pub mod graph;
pub mod identity;
pub mod licensing;
pub mod models;
pub mod roles;

use std::time::Duration;

/// Parses a `Retry-After` value: seconds (possibly fractional, e.g. `2.128`) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("2.128"), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
    }
}
