//! MFA status from what Microsoft answered: pure functions, unit-tested here.
//!
//! Preferred source: the authentication-methods registration report (one paged listing; needs
//! Entra ID P1 and a reports role). Fallback: per-user authentication methods through `$batch`
//! (no P1 needed; needs Global Reader or an authentication administrator role). Only when both
//! fail is the status UNAVAILABLE, with the reason and what to do. [`resolve`] turns what the
//! read step got into one [`MfaResolution`].

use std::collections::HashMap;

use entity::states::{MfaSource, MfaStatus};

use crate::microsoft::{
    graph::GraphError,
    models::{AuthenticationMethod, UserRegistrationDetails},
    roles,
};

/// One user's MFA answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mfa {
    pub status: MfaStatus,
    /// Registered methods, in the report's vocabulary (`microsoftAuthenticatorPush`, `fido2`…).
    pub methods: Vec<String>,
    /// None when unavailable.
    pub source: Option<MfaSource>,
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
        status: if enabled { MfaStatus::Enabled } else { MfaStatus::Disabled },
        methods: r.methods_registered.clone(),
        source: Some(MfaSource::RegistrationReport),
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
pub fn from_methods(found: &[AuthenticationMethod]) -> Mfa {
    let mut methods: Vec<String> = found.iter().filter_map(|m| method_name(&m.odata_type)).map(str::to_owned).collect();
    methods.sort();
    methods.dedup();
    let enabled = methods.iter().any(|m| !NOT_MFA.contains(&m.as_str()));
    Mfa {
        status: if enabled { MfaStatus::Enabled } else { MfaStatus::Disabled },
        methods,
        source: Some(MfaSource::AuthenticationMethods),
        unavailable_reason: None,
    }
}

/// An UNAVAILABLE answer with its reason.
pub fn unavailable(reason: String) -> Mfa {
    Mfa { status: MfaStatus::Unavailable, methods: vec![], source: None, unavailable_reason: Some(reason) }
}

/// What the read step got for the registration report.
#[derive(Debug)]
pub enum ReportRead {
    /// The report's rows.
    Rows(Vec<UserRegistrationDetails>),
    /// Not asked: no enabled subscription includes Entra ID P1, which the report needs.
    NotLicensed,
    /// Graph refused it.
    Refused(GraphError),
}

/// What the read step got for per-user authentication methods (read only when the report gave
/// no rows).
#[derive(Debug, Default)]
pub enum MethodsRead {
    /// Not read (the report answered).
    #[default]
    NotRead,
    /// Each answered user's methods or error. `refused_at_probe`: every item of the first
    /// `$batch` was refused (403), so the rest were not asked.
    Answers { per_user: crate::microsoft::directory::MethodsByUser, refused_at_probe: bool },
}

/// The MFA picture of one tenant.
#[derive(Debug, PartialEq, Eq)]
pub enum MfaResolution {
    /// From the registration report, which also says who is an administrator.
    Report { users: HashMap<String, Mfa>, is_admin: HashMap<String, bool> },
    /// From each user's authentication methods (some users may be unavailable on their own).
    Methods { users: HashMap<String, Mfa> },
    /// Neither source could be read: every user is unavailable with `reason`.
    Unavailable { reason: String, remediation: String },
}

impl MfaResolution {
    /// The tenant's MFA source; None when unavailable.
    pub fn source(&self) -> Option<MfaSource> {
        match self {
            Self::Report { .. } => Some(MfaSource::RegistrationReport),
            Self::Methods { .. } => Some(MfaSource::AuthenticationMethods),
            Self::Unavailable { .. } => None,
        }
    }

    /// One user's answer.
    pub fn user(&self, id: &str) -> Mfa {
        match self {
            Self::Report { users, .. } | Self::Methods { users } => {
                users.get(id).cloned().unwrap_or_else(|| unavailable("no MFA answer".into()))
            }
            Self::Unavailable { reason, .. } => unavailable(reason.clone()),
        }
    }

    /// Whether the report says the user holds an administrator role; None when not known.
    pub fn is_admin(&self, id: &str) -> Option<bool> {
        match self {
            Self::Report { is_admin, .. } => is_admin.get(id).copied(),
            _ => None,
        }
    }

    /// The tenant-level problem (reason, remediation) when MFA is unavailable.
    pub fn problem(&self) -> Option<(&str, &str)> {
        match self {
            Self::Unavailable { reason, remediation } => Some((reason, remediation)),
            _ => None,
        }
    }
}

/// Resolves one tenant's MFA from what was read: the report when it answered; else each user's
/// methods; else unavailable, with a reason naming both refusals and a remediation naming the
/// roles the tenant's relationship holds.
pub fn resolve(user_ids: &[&str], report: &ReportRead, methods: &MethodsRead, held_roles: &[String]) -> MfaResolution {
    let report_why = match report {
        ReportRead::Rows(rows) => {
            let mut users = HashMap::with_capacity(user_ids.len());
            let mut is_admin = HashMap::new();
            for r in rows {
                if let Some(a) = r.is_admin {
                    is_admin.insert(r.id.clone(), a);
                }
                users.insert(r.id.clone(), from_report(r));
            }
            // Users created after the report was compiled are missing from it.
            for id in user_ids {
                users.entry((*id).to_owned()).or_insert_with(|| {
                    unavailable("not in the registration report yet (it lags behind the directory)".into())
                });
            }
            return MfaResolution::Report { users, is_admin };
        }
        ReportRead::NotLicensed => REPORT_NEEDS_P1,
        ReportRead::Refused(e) => report_refusal(e),
    };
    let empty = HashMap::new();
    let (per_user, refused_at_probe) = match methods {
        MethodsRead::Answers { per_user, refused_at_probe } => (per_user, *refused_at_probe),
        MethodsRead::NotRead => (&empty, false),
    };
    let mut users = HashMap::with_capacity(user_ids.len());
    let mut refused: Option<&GraphError> = None;
    for id in user_ids {
        let m = match per_user.get(*id) {
            Some(Ok(found)) => from_methods(found),
            Some(Err(e)) => {
                if e.status() == Some(403) {
                    refused.get_or_insert(e);
                }
                unavailable(format!("authentication methods could not be read: {e}"))
            }
            None if refused_at_probe => unavailable("authentication methods were refused for this tenant".into()),
            None => unavailable("Microsoft did not answer for this user".into()),
        };
        users.insert((*id).to_owned(), m);
    }
    if user_ids.is_empty() || users.values().any(|m| m.status != MfaStatus::Unavailable) {
        return MfaResolution::Methods { users };
    }
    let methods_why = refused.map_or("no answer", |e| e.code().unwrap_or("error"));
    MfaResolution::Unavailable {
        reason: format!(
            "MFA is unavailable: {report_why}, and per-user authentication methods were refused ({methods_why})."
        ),
        remediation: remediation(held_roles, report_why, methods_why),
    }
}

const REPORT_NEEDS_P1: &str = "the tenant has no Microsoft Entra ID P1 license (the registration report needs it)";

/// Why the registration report was refused, for the reason text.
pub fn report_refusal(e: &GraphError) -> &'static str {
    match e.code() {
        Some("Authentication_RequestFromNonPremiumTenantOrB2CTenant") => REPORT_NEEDS_P1,
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

    fn row(id: &str, capable: bool, admin: Option<bool>) -> UserRegistrationDetails {
        UserRegistrationDetails { id: id.into(), is_mfa_capable: Some(capable), is_admin: admin, ..Default::default() }
    }

    fn methods(types: &[&str]) -> Vec<AuthenticationMethod> {
        types
            .iter()
            .map(|t| AuthenticationMethod { odata_type: format!("#microsoft.graph.{t}"), id: "m".into() })
            .collect()
    }

    fn graph_error(status: u16, code: &str) -> GraphError {
        GraphError::Api { status, code: code.into(), message: "refused".into(), request_id: None }
    }

    fn answers(items: Vec<(&str, Result<Vec<AuthenticationMethod>, GraphError>)>, probe: bool) -> MethodsRead {
        MethodsRead::Answers {
            per_user: items.into_iter().map(|(id, a)| (id.to_owned(), a)).collect(),
            refused_at_probe: probe,
        }
    }

    #[test]
    fn report_rows() {
        let status = |r| from_report(&r).status;
        assert_eq!(status(report(Some(true), Some(true), &["microsoftAuthenticatorPush"])), MfaStatus::Enabled);
        // Registered but not allowed by policy: not MFA capable.
        assert_eq!(status(report(Some(false), Some(true), &["mobilePhone"])), MfaStatus::Disabled);
        assert_eq!(status(report(None, None, &["fido2"])), MfaStatus::Enabled);
        assert_eq!(status(report(None, None, &["email"])), MfaStatus::Disabled);
        assert_eq!(from_report(&report(Some(false), Some(false), &[])).source, Some(MfaSource::RegistrationReport));
    }

    #[test]
    fn methods_lists() {
        let only_password = from_methods(&methods(&["passwordAuthenticationMethod"]));
        assert_eq!((only_password.status, only_password.methods.len()), (MfaStatus::Disabled, 0));
        let weak = from_methods(&methods(&["passwordAuthenticationMethod", "emailAuthenticationMethod"]));
        assert_eq!(weak.status, MfaStatus::Disabled);
        let sms = from_methods(&methods(&["passwordAuthenticationMethod", "phoneAuthenticationMethod"]));
        assert_eq!((sms.status, sms.methods.as_slice()), (MfaStatus::Enabled, &["mobilePhone".to_string()][..]));
        assert_eq!(from_methods(&methods(&["windowsHelloForBusinessAuthenticationMethod"])).status, MfaStatus::Enabled);
        assert_eq!(from_methods(&methods(&["someFutureAuthenticationMethod"])).methods, ["other"]);
    }

    #[test]
    fn remediation_names_guide_docs_and_held_roles() {
        let text = remediation(&[roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()], "r", "m");
        assert!(text.contains("User Administrator") && text.contains("Global Reader") && text.contains("P1"));
        assert!(text.contains("holds: Directory Readers, User Administrator"));
    }

    #[test]
    fn resolve_from_the_report_with_admins_and_lagging_users() {
        let rows = vec![row("a", true, Some(true)), row("b", false, Some(false))];
        let r = resolve(&["a", "b", "new"], &ReportRead::Rows(rows), &MethodsRead::NotRead, &[]);
        assert_eq!(r.source(), Some(MfaSource::RegistrationReport));
        assert_eq!((r.user("a").status, r.is_admin("a")), (MfaStatus::Enabled, Some(true)));
        assert_eq!((r.user("b").status, r.is_admin("b")), (MfaStatus::Disabled, Some(false)));
        let new = r.user("new");
        assert_eq!(new.status, MfaStatus::Unavailable);
        assert!(new.unavailable_reason.unwrap().contains("lags behind"));
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn resolve_from_methods_when_the_report_is_refused_or_unlicensed() {
        for report in [ReportRead::NotLicensed, ReportRead::Refused(graph_error(403, "Authorization_RequestDenied"))] {
            let read = answers(
                vec![
                    ("a", Ok(methods(&["fido2AuthenticationMethod"]))),
                    ("b", Ok(methods(&["passwordAuthenticationMethod"]))),
                    ("c", Err(graph_error(404, "Request_ResourceNotFound"))),
                ],
                false,
            );
            let r = resolve(&["a", "b", "c", "d"], &report, &read, &[]);
            assert_eq!(r.source(), Some(MfaSource::AuthenticationMethods));
            assert_eq!(r.user("a").status, MfaStatus::Enabled);
            assert_eq!(r.user("b").status, MfaStatus::Disabled);
            assert!(r.user("c").unavailable_reason.unwrap().contains("could not be read"));
            assert!(r.user("d").unavailable_reason.unwrap().contains("did not answer"));
            assert_eq!((r.is_admin("a"), r.problem()), (None, None));
        }
    }

    #[test]
    fn resolve_unavailable_names_both_refusals_and_the_held_roles() {
        let read = answers(vec![("a", Err(graph_error(403, "accessDenied")))], true);
        let r = resolve(&["a", "b"], &ReportRead::NotLicensed, &read, &[roles::USER_ADMINISTRATOR.into()]);
        let (reason, remediation) = r.problem().expect("unavailable");
        assert!(reason.contains("no Microsoft Entra ID P1") && reason.contains("(accessDenied)"), "{reason}");
        assert!(remediation.contains("holds: User Administrator"), "{remediation}");
        assert_eq!(r.source(), None);
        assert_eq!(r.user("b").unavailable_reason.as_deref(), Some(reason));
        let role = graph_error(403, "Authentication_RequestFromUnsupportedUserRole");
        let none = MethodsRead::Answers { per_user: HashMap::new(), refused_at_probe: false };
        let r = resolve(&["a"], &ReportRead::Refused(role), &none, &[]);
        let reason = r.problem().unwrap().0;
        assert!(reason.contains("holds no role that may read the registration report"), "{reason}");
        assert!(reason.contains("(no answer)"), "{reason}");
    }

    #[test]
    fn resolve_an_empty_tenant_is_not_a_problem() {
        let none = MethodsRead::Answers { per_user: HashMap::new(), refused_at_probe: false };
        let r = resolve(&[], &ReportRead::NotLicensed, &none, &[]);
        assert_eq!((r.source(), r.problem()), (Some(MfaSource::AuthenticationMethods), None));
    }
}
