//! MFA status from what Microsoft answered: pure functions, unit-tested here.
//!
//! Preferred source: the authentication-methods registration report (one paged listing; needs
//! Entra ID P1 and a reports role). Fallback: per-user authentication methods through `$batch`
//! (no P1 needed; needs Global Reader or an authentication administrator role). Only when both
//! fail is the status UNAVAILABLE, with the reason and what to do.

use crate::microsoft::{graph::GraphError, models::UserRegistrationDetails, roles};

/// One user's MFA answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mfa {
    /// `enabled`, `disabled` or `unavailable`.
    pub status: &'static str,
    /// Registered methods, in the report's vocabulary (`microsoftAuthenticatorPush`, `fido2`…).
    pub methods: Vec<String>,
    /// `registration_report` or `authentication_methods`; None when unavailable.
    pub source: Option<&'static str>,
    /// Why it could not be read.
    pub unavailable_reason: Option<String>,
}

/// Methods that do not count as a second factor.
const NOT_MFA: &[&str] = &["password", "email", "securityQuestion"];

/// From a registration-report row: enabled when the user is MFA capable (registered and allowed
/// by policy), else when registered with a strong method.
pub fn from_report(r: &UserRegistrationDetails) -> Mfa {
    let strong = r.methods_registered.iter().any(|m| !NOT_MFA.contains(&m.as_str()));
    let enabled =
        r.is_mfa_capable.unwrap_or(false) || (r.is_mfa_capable.is_none() && r.is_mfa_registered.unwrap_or(strong));
    Mfa {
        status: if enabled { "enabled" } else { "disabled" },
        methods: r.methods_registered.clone(),
        source: Some("registration_report"),
        unavailable_reason: None,
    }
}

/// The report's name for an authentication method's `@odata.type`.
pub fn method_name(odata_type: &str) -> Option<&'static str> {
    let t = odata_type.trim_start_matches("#microsoft.graph.");
    Some(match t {
        "passwordAuthenticationMethod" => return None,
        "phoneAuthenticationMethod" => "mobilePhone",
        "microsoftAuthenticatorAuthenticationMethod" => "microsoftAuthenticatorPush",
        "fido2AuthenticationMethod" => "fido2",
        "windowsHelloForBusinessAuthenticationMethod" => "windowsHelloForBusiness",
        "softwareOathAuthenticationMethod" => "softwareOneTimePasscode",
        "hardwareOathAuthenticationMethod" => "hardwareOneTimePasscode",
        "temporaryAccessPassAuthenticationMethod" => "temporaryAccessPass",
        "emailAuthenticationMethod" => "email",
        "platformCredentialAuthenticationMethod" => "macOsSecureEnclaveKey",
        "externalAuthenticationMethod" => "externalAuthenticationMethod",
        "qrCodePinAuthenticationMethod" => "qrCodePin",
        _ => "other",
    })
}

/// From a user's authentication methods: enabled when any method other than password and
/// e-mail is registered.
pub fn from_methods(odata_types: &[String]) -> Mfa {
    let mut methods: Vec<String> = odata_types.iter().filter_map(|t| method_name(t)).map(str::to_owned).collect();
    methods.sort();
    methods.dedup();
    let enabled = methods.iter().any(|m| !NOT_MFA.contains(&m.as_str()));
    Mfa {
        status: if enabled { "enabled" } else { "disabled" },
        methods,
        source: Some("authentication_methods"),
        unavailable_reason: None,
    }
}

/// An UNAVAILABLE answer with its reason.
pub fn unavailable(reason: String) -> Mfa {
    Mfa { status: "unavailable", methods: vec![], source: None, unavailable_reason: Some(reason) }
}

/// Why the registration report was refused, for the reason text.
pub fn report_refusal(e: &GraphError) -> &'static str {
    match e.code() {
        Some("Authentication_RequestFromNonPremiumTenantOrB2CTenant") => {
            "the tenant has no Microsoft Entra ID P1 license (the registration report needs it)"
        }
        Some("Authentication_RequestFromUnsupportedUserRole") => {
            "the GDAP relationship holds no role that may read the registration report"
        }
        Some("Authorization_RequestDenied") => {
            "the consent lacks the permission to read the registration report (AuditLog.Read.All)"
        }
        _ => "the registration report could not be read",
    }
}

/// The remediation shown when MFA is unavailable: what the guide says, what Microsoft documents,
/// and which roles the tenant's relationship actually holds.
pub fn remediation(held_role_ids: &[String], report: &str, methods: &str) -> String {
    let held: Vec<String> = held_role_ids.iter().map(|r| roles::name(r)).collect();
    let held = if held.is_empty() { "none".to_owned() } else { held.join(", ") };
    format!(
        "MFA could not be read: {report}; and per-user authentication methods were refused ({methods}). \
The setup guide asks for a GDAP relationship with User Administrator (and Reports Reader as a fallback); \
Microsoft documents Global Reader, Authentication Administrator or Privileged Authentication Administrator for reading \
other users' authentication methods, and Reports Reader, Security Reader or Global Reader for the registration report. \
This tenant's relationship holds: {held}. Add Global Reader to the relationship (or Authentication Administrator), \
make sure the consent includes authentication-method read access, and note that the registration report needs \
Microsoft Entra ID P1."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(capable: Option<bool>, registered: Option<bool>, methods: &[&str]) -> UserRegistrationDetails {
        UserRegistrationDetails {
            is_mfa_capable: capable,
            is_mfa_registered: registered,
            methods_registered: methods.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn report_rows() {
        assert_eq!(from_report(&report(Some(true), Some(true), &["microsoftAuthenticatorPush"])).status, "enabled");
        // Registered but not allowed by policy: not MFA capable.
        assert_eq!(from_report(&report(Some(false), Some(true), &["mobilePhone"])).status, "disabled");
        assert_eq!(from_report(&report(None, None, &["fido2"])).status, "enabled");
        assert_eq!(from_report(&report(None, None, &["email"])).status, "disabled");
        assert_eq!(from_report(&report(Some(false), Some(false), &[])).source, Some("registration_report"));
    }

    #[test]
    fn methods_lists() {
        let t = |v: &[&str]| v.iter().map(|s| format!("#microsoft.graph.{s}")).collect::<Vec<_>>();
        let only_password = from_methods(&t(&["passwordAuthenticationMethod"]));
        assert_eq!((only_password.status, only_password.methods.len()), ("disabled", 0));
        assert_eq!(from_methods(&t(&["passwordAuthenticationMethod", "emailAuthenticationMethod"])).status, "disabled");
        let sms = from_methods(&t(&["passwordAuthenticationMethod", "phoneAuthenticationMethod"]));
        assert_eq!((sms.status, sms.methods.as_slice()), ("enabled", &["mobilePhone".to_string()][..]));
        assert_eq!(from_methods(&t(&["windowsHelloForBusinessAuthenticationMethod"])).status, "enabled");
        assert_eq!(from_methods(&t(&["someFutureAuthenticationMethod"])).methods, ["other"]);
    }

    #[test]
    fn remediation_names_guide_docs_and_held_roles() {
        let text = remediation(&[roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()], "r", "m");
        assert!(text.contains("User Administrator") && text.contains("Global Reader") && text.contains("P1"));
        assert!(text.contains("holds: Directory Readers, User Administrator"));
    }
}
