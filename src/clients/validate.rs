//! Input rules for the MSP's clients and contacts. Pure functions, unit-tested here.

/// Most items one upsert call accepts.
pub const MAX_BATCH: usize = 1000;
/// Longest name.
pub const MAX_NAME: usize = 200;
/// Longest `source`.
pub const MAX_SOURCE: usize = 64;
/// Longest `externalId`.
pub const MAX_EXTERNAL_ID: usize = 128;
/// Most domains per client.
pub const MAX_DOMAINS: usize = 50;
/// Most e-mail addresses per contact.
pub const MAX_EMAILS: usize = 20;

/// A trimmed, non-empty string of at most `max` characters, without control characters.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(v.to_owned())
}

/// A DNS domain name, lower-cased: labels of letters, digits and hyphens, at least two labels.
pub fn domain(value: &str) -> Result<String, String> {
    let d = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = || Err(format!("{value:?} is not a valid domain name"));
    if d.is_empty() || d.len() > 253 || !d.contains('.') {
        return bad();
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return bad();
        }
    }
    let tld = d.rsplit('.').next().unwrap_or_default();
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return bad();
    }
    Ok(d)
}

/// An e-mail address, lower-cased and trimmed: `local@domain` with a valid domain.
pub fn email(value: &str) -> Result<String, String> {
    let e = value.trim().to_ascii_lowercase();
    let bad = || Err(format!("{value:?} is not a valid e-mail address"));
    let Some((local, dom)) = e.rsplit_once('@') else { return bad() };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    if !local_ok || domain(dom).is_err() || e.len() > 254 {
        return bad();
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(domain(" Contoso.COM. ").unwrap(), "contoso.com");
        assert_eq!(domain("xn--bcher-kva.example").unwrap(), "xn--bcher-kva.example");
        for bad in ["", "localhost", "-a.com", "a-.com", "a..com", "a_b.com", "1.2.3.4", "a b.com"] {
            assert!(domain(bad).is_err(), "{bad}");
        }
        assert!(domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Alice.Smith@Contoso.com ").unwrap(), "alice.smith@contoso.com");
        assert_eq!(email("a+tag@sub.contoso.co.uk").unwrap(), "a+tag@sub.contoso.co.uk");
        for bad in ["", "alice", "@contoso.com", "alice@", "alice@contoso", "a..b@c.com", ".a@c.com", "a b@c.com"] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(text("  Contoso ", 10).unwrap(), "Contoso");
        assert!(text("   ", 10).is_err());
        assert!(text("abcdefghijk", 10).is_err());
        assert!(text("a\u{0}b", 10).is_err());
    }
}
