//! MFA enforcement: is MFA *required* when a user signs in? Pure evaluation of what the read
//! step got (security defaults, Conditional Access policies with the group and role members they
//! name, legacy per-user MFA), unit-tested here. Every fact used becomes one sentence of the
//! explanation; a policy that could not be read makes the answer UNKNOWN with the reason and
//! what to do, never a false "not enforced".
//!
//! Rules (Microsoft's documentation of security defaults and Conditional Access):
//! - Security defaults on: administrators must use MFA at every sign-in (ENFORCED); everyone else
//!   registers and is prompted "when necessary" (CONDITIONAL).
//! - A Conditional Access policy counts when its state is `enabled` (report-only policies are
//!   named but enforce nothing) and it requires MFA: `grantControls.builtInControls` has `mfa` or
//!   an authentication strength is set. With operator `OR` and another control beside it, MFA is
//!   one option, not a requirement.
//! - Scope: included by `All`, the user's id, guests, a group (transitively) or a role; any
//!   exclusion wins. All cloud apps and no conditions (locations, platforms, client apps, risk)
//!   make it ENFORCED; otherwise CONDITIONAL.
//! - Per-user MFA `enabled` or `enforced` is ENFORCED; it is read only for users not already
//!   enforced otherwise.

use std::collections::{HashMap, HashSet};

use entity::states::{EnforcementSource, MfaEnforcementState};

use crate::microsoft::{models::ConditionalAccessPolicy, roles};

/// What was read of a tenant's Conditional Access.
#[derive(Clone, Debug)]
pub enum CaRead {
    /// The tenant's policies.
    Policies(Vec<ConditionalAccessPolicy>),
    /// Not asked: the tenant has no Entra ID P1, so no Conditional Access.
    NotLicensed,
    /// Refused; the reason says what is missing.
    Refused(String),
}

/// The tenant's MFA policies as read: `Err` carries why a part could not be read.
#[derive(Clone, Debug)]
pub struct PolicyRead {
    pub security_defaults: Result<bool, String>,
    pub conditional_access: CaRead,
    /// Transitive user members of the groups the MFA policies name.
    pub groups: HashMap<String, Result<HashSet<String>, String>>,
    /// Members of the directory roles (template ids) the MFA policies name.
    pub roles: HashMap<String, Result<HashSet<String>, String>>,
}

/// The user as the evaluation needs it.
#[derive(Clone, Copy, Debug)]
pub struct UserFacts<'a> {
    pub id: &'a str,
    /// `userType` is `Guest`.
    pub guest: bool,
    /// Holds an administrator role (security defaults treat them apart).
    pub admin: bool,
}

/// Whether MFA is required for one user, why, and from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcement {
    pub state: MfaEnforcementState,
    pub sources: Vec<EnforcementSource>,
    /// Names of the Conditional Access policies that require MFA for the user.
    pub policies: Vec<String>,
    pub unknown_reason: Option<String>,
    /// One sentence per fact used.
    pub explanation: Vec<String>,
}

impl Enforcement {
    /// Whether the legacy per-user state must still be read for this user.
    pub fn needs_per_user(&self) -> bool {
        self.state != MfaEnforcementState::Enforced
    }
}

/// What a policy amounts to, for `M365Tenant.mfaPolicy` and for the evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySummary {
    pub name: String,
    pub state: String,
    /// MFA is a requirement of the grant (not one option among others).
    pub requires_mfa: bool,
    /// MFA is one option of an `OR` grant.
    pub mfa_optional: bool,
    pub all_users: bool,
    pub all_apps: bool,
    /// Locations, platforms, client apps or risk levels narrow it.
    pub conditional: bool,
}

/// Summarises a Conditional Access policy.
pub fn summarize(p: &ConditionalAccessPolicy) -> PolicySummary {
    let (mfa, others) = match &p.grant_controls {
        Some(g) => {
            let mfa = g.built_in_controls.iter().any(|c| c == "mfa") || g.authentication_strength.is_some();
            let count = g.built_in_controls.len() + usize::from(g.authentication_strength.is_some());
            let or = g.operator.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("OR"));
            (mfa, or && count > 1)
        }
        None => (false, false),
    };
    let c = &p.conditions;
    let client_apps_narrow = !c.client_app_types.is_empty() && !c.client_app_types.iter().any(|t| t == "all");
    PolicySummary {
        name: p.display_name.clone(),
        state: p.state.clone(),
        requires_mfa: mfa && !others,
        mfa_optional: mfa && others,
        all_users: c.users.include_users.iter().any(|u| u == "All"),
        all_apps: c.applications.include_applications.iter().any(|a| a == "All"),
        conditional: c.locations.is_some()
            || c.platforms.is_some()
            || client_apps_narrow
            || !c.sign_in_risk_levels.is_empty()
            || !c.user_risk_levels.is_empty(),
    }
}

/// Groups and roles the MFA-related policies name (only these memberships are read).
pub fn named_groups_and_roles(policies: &[ConditionalAccessPolicy]) -> (Vec<String>, Vec<String>) {
    let mut groups = vec![];
    let mut roles = vec![];
    for p in policies {
        let s = summarize(p);
        if !(s.requires_mfa || s.mfa_optional) || p.state == "disabled" {
            continue;
        }
        let u = &p.conditions.users;
        groups.extend(u.include_groups.iter().chain(&u.exclude_groups).cloned());
        roles.extend(u.include_roles.iter().chain(&u.exclude_roles).cloned());
    }
    groups.sort();
    groups.dedup();
    roles.sort();
    roles.dedup();
    (groups, roles)
}

/// Whether the user is in a policy's scope.
enum Scope {
    In(String),
    Excluded(String),
    Out,
    Unknown(String),
}

fn member(
    ids: &[String],
    user: &str,
    read: &HashMap<String, Result<HashSet<String>, String>>,
    kind: &str,
    name: impl Fn(&str) -> String,
) -> Result<Option<String>, String> {
    for id in ids {
        match read.get(id) {
            Some(Ok(members)) if members.contains(user) => return Ok(Some(format!("{kind} {}", name(id)))),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.clone()),
            None => return Err(format!("the members of {kind} {} were not read", name(id))),
        }
    }
    Ok(None)
}

fn scope(p: &ConditionalAccessPolicy, user: &UserFacts, read: &PolicyRead) -> Scope {
    let u = &p.conditions.users;
    let role_name = |id: &str| roles::name(id);
    let group_name = |id: &str| id.to_owned();
    // Exclusions win.
    if u.exclude_users.iter().any(|x| x == user.id) {
        return Scope::Excluded("the user directly".into());
    }
    if user.guest
        && (u.exclude_users.iter().any(|x| x == "GuestsOrExternalUsers")
            || u.exclude_guests_or_external_users.is_some())
    {
        return Scope::Excluded("guests and external users".into());
    }
    match member(&u.exclude_groups, user.id, &read.groups, "group", group_name) {
        Ok(Some(why)) => return Scope::Excluded(why),
        Ok(None) => {}
        Err(e) => return Scope::Unknown(e),
    }
    match member(&u.exclude_roles, user.id, &read.roles, "role", role_name) {
        Ok(Some(why)) => return Scope::Excluded(why),
        Ok(None) => {}
        Err(e) => return Scope::Unknown(e),
    }
    if u.include_users.iter().any(|x| x == "All") {
        return Scope::In("All users".into());
    }
    if u.include_users.iter().any(|x| x == user.id) {
        return Scope::In("the user directly".into());
    }
    if user.guest
        && (u.include_users.iter().any(|x| x == "GuestsOrExternalUsers")
            || u.include_guests_or_external_users.is_some())
    {
        return Scope::In("guests and external users".into());
    }
    match member(&u.include_groups, user.id, &read.groups, "group", group_name) {
        Ok(Some(why)) => return Scope::In(why),
        Ok(None) => {}
        Err(e) => return Scope::Unknown(e),
    }
    match member(&u.include_roles, user.id, &read.roles, "role", role_name) {
        Ok(Some(why)) => Scope::In(why),
        Ok(None) => Scope::Out,
        Err(e) => Scope::Unknown(e),
    }
}

/// Evaluates security defaults and Conditional Access for one user (per-user MFA comes after,
/// through [`with_per_user`], for the users this leaves not enforced).
pub fn evaluate(user: &UserFacts, read: &PolicyRead) -> Enforcement {
    let mut sources = vec![];
    let mut policies = vec![];
    let mut conditional = false;
    let mut unknown: Vec<String> = vec![];
    let mut explanation = vec![];
    match &read.security_defaults {
        Ok(true) if user.admin => {
            sources.push(EnforcementSource::SecurityDefaults);
            explanation.push("Security defaults are on: administrators must use MFA at every sign-in.".into());
        }
        Ok(true) => {
            conditional = true;
            explanation.push(
                "Security defaults are on: the user must register for MFA and is prompted when Microsoft deems it necessary, not at every sign-in.".into(),
            );
        }
        Ok(false) => explanation.push("Security defaults are off.".into()),
        Err(e) => {
            unknown.push(e.clone());
            explanation.push(format!("Security defaults could not be read: {e}"));
        }
    }
    match &read.conditional_access {
        CaRead::NotLicensed => explanation
            .push("The tenant has no Microsoft Entra ID P1, so it has no Conditional Access policies.".into()),
        CaRead::Refused(e) => {
            unknown.push(e.clone());
            explanation.push(format!("Conditional Access policies could not be read: {e}"));
        }
        CaRead::Policies(list) => {
            let mut any = false;
            for p in list {
                let s = summarize(p);
                if !(s.requires_mfa || s.mfa_optional) || s.state == "disabled" {
                    continue;
                }
                let apps = if s.all_apps { "all cloud apps" } else { "some cloud apps" };
                let quoted = format!("Conditional Access policy \"{}\"", s.name);
                match scope(p, user, read) {
                    Scope::Out => continue,
                    Scope::Excluded(why) => {
                        any = true;
                        explanation
                            .push(format!("{quoted} ({}) does not apply: the user is excluded ({why}).", s.state));
                    }
                    Scope::Unknown(e) => {
                        any = true;
                        if s.state == "enabled" && s.requires_mfa {
                            unknown.push(e.clone());
                        }
                        explanation.push(format!("{quoted} ({}): whether it applies is unknown: {e}", s.state));
                    }
                    Scope::In(why) if s.state != "enabled" => {
                        any = true;
                        explanation.push(format!(
                            "{quoted} is report-only: it would require MFA for {apps} (the user is included: {why}) but enforces nothing."
                        ));
                    }
                    Scope::In(why) if s.mfa_optional => {
                        any = true;
                        explanation.push(format!(
                            "{quoted} (enabled) offers MFA as one option among other controls (operator OR), so it does not require MFA; the user is included ({why})."
                        ));
                    }
                    Scope::In(why) => {
                        any = true;
                        policies.push(s.name.clone());
                        if s.all_apps && !s.conditional {
                            if !sources.contains(&EnforcementSource::ConditionalAccess) {
                                sources.push(EnforcementSource::ConditionalAccess);
                            }
                            explanation.push(format!(
                                "{quoted} (enabled) requires MFA for {apps}; the user is included ({why}) and not excluded."
                            ));
                        } else {
                            conditional = true;
                            let narrowed = if s.conditional {
                                " under conditions (locations, platforms, client apps or risk)"
                            } else {
                                ""
                            };
                            explanation.push(format!(
                                "{quoted} (enabled) requires MFA for {apps}{narrowed} only; the user is included ({why})."
                            ));
                        }
                    }
                }
            }
            if !any {
                explanation.push("No enabled Conditional Access policy requires MFA for this user.".into());
            }
        }
    }
    let state = if !sources.is_empty() {
        MfaEnforcementState::Enforced
    } else if !unknown.is_empty() {
        MfaEnforcementState::Unknown
    } else if conditional {
        MfaEnforcementState::Conditional
    } else {
        MfaEnforcementState::NotEnforced
    };
    let unknown_reason = (state == MfaEnforcementState::Unknown).then(|| unknown.join(" "));
    Enforcement { state, sources, policies, unknown_reason, explanation }
}

/// Adds the legacy per-user state read for a user the tenant policies leave not enforced:
/// `Ok(state)` as Graph answered (`disabled`, `enabled`, `enforced`), `Err` why it could not be
/// read, `None` when it was not asked (already enforced).
pub fn with_per_user(mut e: Enforcement, per_user: Option<&Result<String, String>>) -> Enforcement {
    match per_user {
        None => {}
        Some(Ok(state)) if state == "enabled" || state == "enforced" => {
            e.sources.push(EnforcementSource::PerUser);
            e.state = MfaEnforcementState::Enforced;
            e.unknown_reason = None;
            e.explanation.push(format!("Per-user MFA is {state} for this user: every sign-in requires MFA."));
        }
        Some(Ok(state)) => e.explanation.push(format!("Per-user MFA is {state} for this user.")),
        Some(Err(why)) => {
            e.explanation.push(format!("Per-user MFA could not be read: {why}"));
            if e.state != MfaEnforcementState::Enforced {
                e.state = MfaEnforcementState::Unknown;
                e.unknown_reason = Some(match e.unknown_reason.take() {
                    Some(r) => format!("{r} {why}"),
                    None => why.clone(),
                });
            }
        }
    }
    e
}

/// The reason and remediation when Graph refuses a policy read, by what was read.
pub fn refusal(what: &str, status: Option<u16>, code: Option<&str>) -> String {
    let code = code.filter(|c| !c.is_empty()).unwrap_or("error");
    let status = status.map(|s| s.to_string()).unwrap_or_else(|| "no answer".into());
    let fix = match what {
        "per-user MFA" => {
            "give the GDAP relationship Global Reader (or Authentication Policy Administrator) and make sure the consent includes Policy.Read.All"
        }
        "group members" | "role members" => "give the GDAP relationship Global Reader (or Directory Readers)",
        _ => {
            "give the GDAP relationship Security Reader or Global Reader, and make sure the consent includes Policy.Read.All"
        }
    };
    format!("Microsoft refused to show the {what} ({status} {code}); to read it, {fix}.")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use MfaEnforcementState::*;

    fn policy(v: serde_json::Value) -> ConditionalAccessPolicy {
        serde_json::from_value(v).unwrap()
    }

    fn ca(name: &str, state: &str, users: serde_json::Value, grant: serde_json::Value) -> ConditionalAccessPolicy {
        policy(json!({
            "id": name, "displayName": name, "state": state,
            "conditions": {"users": users, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
            "grantControls": grant
        }))
    }

    fn mfa() -> serde_json::Value {
        json!({"operator": "OR", "builtInControls": ["mfa"]})
    }

    fn read(sd: Result<bool, String>, policies: Vec<ConditionalAccessPolicy>) -> PolicyRead {
        PolicyRead {
            security_defaults: sd,
            conditional_access: CaRead::Policies(policies),
            groups: HashMap::from([
                ("breakglass".to_string(), Ok(HashSet::from(["bg".to_string()]))),
                ("finance".to_string(), Ok(HashSet::from(["nested-member".to_string(), "u".to_string()]))),
            ]),
            roles: HashMap::from([(roles::GLOBAL_ADMINISTRATOR.to_string(), Ok(HashSet::from(["admin".to_string()])))]),
        }
    }

    const MEMBER: UserFacts = UserFacts { id: "u", guest: false, admin: false };
    const ADMIN: UserFacts = UserFacts { id: "admin", guest: false, admin: true };
    const GUEST: UserFacts = UserFacts { id: "g", guest: true, admin: false };
    const BREAK_GLASS: UserFacts = UserFacts { id: "bg", guest: false, admin: true };

    fn all_users_policy() -> ConditionalAccessPolicy {
        ca(
            "Require MFA for all users",
            "enabled",
            json!({"includeUsers": ["All"], "excludeGroups": ["breakglass"]}),
            mfa(),
        )
    }

    #[test]
    fn all_users_policy_enforces_and_explains_itself() {
        let e = evaluate(&MEMBER, &read(Ok(false), vec![all_users_policy()]));
        assert_eq!((e.state, e.sources.as_slice()), (Enforced, &[EnforcementSource::ConditionalAccess][..]));
        assert_eq!(e.policies, ["Require MFA for all users"]);
        assert!(e.explanation.contains(&"Conditional Access policy \"Require MFA for all users\" (enabled) requires MFA for all cloud apps; the user is included (All users) and not excluded.".to_string()), "{:?}", e.explanation);
        assert!(!e.needs_per_user());
    }

    #[test]
    fn an_exclusion_wins_over_an_inclusion() {
        let e = evaluate(&BREAK_GLASS, &read(Ok(false), vec![all_users_policy()]));
        assert_eq!(e.state, NotEnforced);
        assert!(e.explanation.iter().any(|s| s.contains("excluded (group breakglass)")), "{:?}", e.explanation);
        assert!(e.needs_per_user());
    }

    #[test]
    fn nested_groups_and_roles_bring_users_in() {
        let by_group = ca("Finance MFA", "enabled", json!({"includeGroups": ["finance"]}), mfa());
        let e =
            evaluate(&UserFacts { id: "nested-member", guest: false, admin: false }, &read(Ok(false), vec![by_group]));
        assert_eq!(e.state, Enforced);
        assert!(e.explanation[1].contains("included (group finance)"));
        let by_role = ca("Admins MFA", "enabled", json!({"includeRoles": [roles::GLOBAL_ADMINISTRATOR]}), mfa());
        let r = read(Ok(false), vec![by_role]);
        let e = evaluate(&ADMIN, &r);
        assert_eq!(e.state, Enforced);
        assert!(e.explanation[1].contains("included (role Global Administrator)"), "{:?}", e.explanation);
        assert_eq!(evaluate(&MEMBER, &r).state, NotEnforced, "a member without the role is out of scope");
    }

    #[test]
    fn report_only_and_or_policies_enforce_nothing() {
        let report_only = ca("Pilot", "enabledForReportingButNotEnforced", json!({"includeUsers": ["All"]}), mfa());
        let or = ca(
            "MFA or compliant",
            "enabled",
            json!({"includeUsers": ["All"]}),
            json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
        );
        let e = evaluate(&MEMBER, &read(Ok(false), vec![report_only, or]));
        assert_eq!(e.state, NotEnforced);
        assert!(e.policies.is_empty());
        assert!(e.explanation.iter().any(|s| s.contains("\"Pilot\" is report-only")));
        assert!(e.explanation.iter().any(|s| s.contains("one option among other controls")));
        // AND with another control still requires MFA.
        let and = ca(
            "MFA and compliant",
            "enabled",
            json!({"includeUsers": ["All"]}),
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}),
        );
        assert_eq!(evaluate(&MEMBER, &read(Ok(false), vec![and])).state, Enforced);
        // An authentication strength is MFA.
        let strength = ca(
            "Phishing-resistant",
            "enabled",
            json!({"includeUsers": ["All"]}),
            json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}),
        );
        assert_eq!(evaluate(&MEMBER, &read(Ok(false), vec![strength])).state, Enforced);
        let disabled = ca("Old", "disabled", json!({"includeUsers": ["All"]}), mfa());
        assert_eq!(evaluate(&MEMBER, &read(Ok(false), vec![disabled])).state, NotEnforced);
    }

    #[test]
    fn conditions_and_some_apps_make_it_conditional() {
        let mut located = ca("Outside the office", "enabled", json!({"includeUsers": ["All"]}), mfa());
        located.conditions.locations = Some(json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}));
        let e = evaluate(&MEMBER, &read(Ok(false), vec![located]));
        assert_eq!((e.state, e.policies.len()), (Conditional, 1));
        assert!(e.explanation[1].contains("under conditions"));
        let mut some_apps = ca("Exchange only", "enabled", json!({"includeUsers": ["All"]}), mfa());
        some_apps.conditions.applications.include_applications = vec!["00000002-0000-0ff1-ce00-000000000000".into()];
        assert_eq!(evaluate(&MEMBER, &read(Ok(false), vec![some_apps])).state, Conditional);
    }

    #[test]
    fn guests_are_in_by_kind() {
        let guests = ca("Guests MFA", "enabled", json!({"includeUsers": ["GuestsOrExternalUsers"]}), mfa());
        let r = read(Ok(false), vec![guests]);
        assert_eq!(evaluate(&GUEST, &r).state, Enforced);
        assert_eq!(evaluate(&MEMBER, &r).state, NotEnforced);
    }

    #[test]
    fn security_defaults_enforce_for_admins_and_prompt_members() {
        let r = read(Ok(true), vec![]);
        let admin = evaluate(&ADMIN, &r);
        assert_eq!((admin.state, admin.sources.as_slice()), (Enforced, &[EnforcementSource::SecurityDefaults][..]));
        let member = evaluate(&MEMBER, &r);
        assert_eq!((member.state, member.sources.len()), (Conditional, 0));
        assert!(member.explanation[0].contains("when Microsoft deems it necessary"));
    }

    #[test]
    fn per_user_mfa_enforces_and_is_read_only_when_needed() {
        let e = evaluate(&MEMBER, &read(Ok(false), vec![]));
        assert_eq!(e.state, NotEnforced);
        let enforced = with_per_user(e.clone(), Some(&Ok("enforced".into())));
        assert_eq!((enforced.state, enforced.sources.as_slice()), (Enforced, &[EnforcementSource::PerUser][..]));
        assert_eq!(with_per_user(e.clone(), Some(&Ok("enabled".into()))).state, Enforced);
        assert_eq!(with_per_user(e.clone(), Some(&Ok("disabled".into()))).state, NotEnforced);
        let refused = with_per_user(e, Some(&Err("refused".into())));
        assert_eq!((refused.state, refused.unknown_reason.as_deref()), (Unknown, Some("refused")));
        // Already enforced: a per-user refusal changes nothing.
        let ca_enforced = evaluate(&MEMBER, &read(Ok(false), vec![all_users_policy()]));
        assert_eq!(with_per_user(ca_enforced, Some(&Err("refused".into()))).state, Enforced);
    }

    #[test]
    fn unreadable_policies_are_unknown_never_not_enforced() {
        let mut r = read(Err(refusal("security defaults", Some(403), Some("Authorization_RequestDenied"))), vec![]);
        let e = evaluate(&MEMBER, &r);
        assert_eq!(e.state, Unknown);
        assert!(e.unknown_reason.as_deref().unwrap().contains("Security Reader or Global Reader"));
        r.security_defaults = Ok(false);
        r.conditional_access = CaRead::Refused(refusal("Conditional Access policies", Some(403), Some("AccessDenied")));
        assert_eq!(evaluate(&MEMBER, &r).state, Unknown);
        // Enforced by one source stays enforced whatever another could not tell.
        r.security_defaults = Ok(true);
        assert_eq!(evaluate(&ADMIN, &r).state, Enforced);
        // A group whose members could not be read leaves the policy's reach unknown.
        let mut r = read(Ok(false), vec![ca("Finance MFA", "enabled", json!({"includeGroups": ["finance"]}), mfa())]);
        r.groups.insert("finance".into(), Err("members refused".into()));
        assert_eq!(evaluate(&MEMBER, &r).state, Unknown);
        // No P1: no Conditional Access, said so, and not unknown.
        let mut r = read(Ok(false), vec![]);
        r.conditional_access = CaRead::NotLicensed;
        let e = evaluate(&MEMBER, &r);
        assert_eq!(e.state, NotEnforced);
        assert!(e.explanation[1].contains("no Microsoft Entra ID P1"));
    }

    #[test]
    fn only_the_groups_and_roles_of_mfa_policies_are_read() {
        let block = ca(
            "Block legacy",
            "enabled",
            json!({"includeGroups": ["legacy"]}),
            json!({"operator": "OR", "builtInControls": ["block"]}),
        );
        let (groups, roles_named) = named_groups_and_roles(&[all_users_policy(), block]);
        assert_eq!(groups, ["breakglass"]);
        assert!(roles_named.is_empty());
    }
}
