//! The emulated directory: a partner (MSP) tenant, its GDAP customers with users, MFA methods
//! and licenses, generated deterministically from a seed; plus the per-tenant knobs tests turn.

use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use super::catalog::{self, SkuDef, roles};

/// What to generate.
#[derive(Clone, Debug)]
pub struct WorldSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of customer tenants.
    pub tenants: usize,
    /// Users per customer tenant.
    pub users_per_tenant: usize,
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self { seed: 42, tenants: 12, users_per_tenant: 25 }
    }
}

/// A registered authentication method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Every user has one; not MFA.
    Password,
    /// SMS / voice on a mobile phone.
    Phone,
    /// Microsoft Authenticator push.
    Authenticator,
    /// FIDO2 security key.
    Fido2,
    /// Windows Hello for Business.
    WindowsHello,
    /// Software OATH token.
    SoftwareOath,
    /// E-mail (SSPR only; not MFA).
    Email,
}

/// A directory user.
#[derive(Clone, Debug)]
pub struct User {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// UPN.
    pub upn: String,
    /// Primary SMTP address.
    pub mail: Option<String>,
    /// `otherMails`.
    pub other_mails: Vec<String>,
    /// `proxyAddresses` (`SMTP:` primary, `smtp:` aliases).
    pub proxy_addresses: Vec<String>,
    /// Sign-in allowed.
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: &'static str,
    /// Holds an admin role in the tenant.
    pub is_admin: bool,
    /// Registered methods (always including the password).
    pub methods: Vec<Method>,
    /// Assigned SKU ids.
    pub sku_ids: Vec<&'static str>,
    /// Partner users only: a Global Administrator of the partner tenant.
    pub global_admin: bool,
    /// Legacy per-user MFA: `disabled`, `enabled` or `enforced`.
    pub per_user_mfa: &'static str,
}

/// A verified domain.
#[derive(Clone, Debug)]
pub struct Domain {
    /// Domain name.
    pub name: String,
    /// The primary domain.
    pub is_default: bool,
    /// The `*.onmicrosoft.com` domain.
    pub is_initial: bool,
}

/// A subscribed SKU of a tenant.
#[derive(Clone, Debug)]
pub struct TenantSku {
    /// Which SKU.
    pub def: &'static SkuDef,
    /// Seats bought.
    pub enabled: i64,
    /// `Enabled`, `Warning`, `Suspended`…
    pub capability_status: &'static str,
}

/// A Microsoft tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Organization display name.
    pub display_name: String,
    /// Verified domains.
    pub domains: Vec<Domain>,
    /// Users.
    pub users: Vec<User>,
    /// Subscribed SKUs.
    pub skus: Vec<TenantSku>,
    /// Whether a tenant-wide admin consent for the app exists (the partner tenant) or the app
    /// was pushed into the tenant (customers).
    pub app_consented: bool,
    /// Security defaults, Conditional Access, groups and role members.
    pub policies: TenantPolicies,
}

/// What decides whether a tenant's users must use MFA.
#[derive(Clone, Debug, Default)]
pub struct TenantPolicies {
    /// `identitySecurityDefaultsEnforcementPolicy.isEnabled`.
    pub security_defaults: bool,
    /// Conditional Access policies, in Graph's `conditionalAccessPolicy` shape.
    pub conditional_access: Vec<serde_json::Value>,
    /// Security groups.
    pub groups: Vec<Group>,
}

/// A security group: direct user members and nested groups.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    /// Direct user members (object ids).
    pub users: Vec<String>,
    /// Nested groups (ids).
    pub groups: Vec<String>,
}

impl Tenant {
    /// Users in a group, through nested groups (Graph's `transitiveMembers`), and the nested
    /// groups themselves, in the order met.
    pub fn transitive_members(&self, group_id: &str) -> (Vec<String>, Vec<String>) {
        let (mut users, mut groups, mut stack) = (vec![], vec![], vec![group_id.to_owned()]);
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = stack.pop() {
            let Some(g) = self.policies.groups.iter().find(|g| g.id == id) else { continue };
            for u in &g.users {
                if !users.contains(u) {
                    users.push(u.clone());
                }
            }
            for n in &g.groups {
                if seen.insert(n.clone()) {
                    groups.push(n.clone());
                    stack.push(n.clone());
                }
            }
        }
        (users, groups)
    }

    /// Members of a directory role (template id): the tenant's administrators hold Global
    /// Administrator.
    pub fn role_members(&self, role_template_id: &str) -> Vec<String> {
        if role_template_id.eq_ignore_ascii_case(roles::GLOBAL_ADMINISTRATOR) {
            self.users.iter().filter(|u| u.is_admin).map(|u| u.id.clone()).collect()
        } else {
            vec![]
        }
    }
}

impl Tenant {
    /// Whether a SKU with Entra ID P1 is active.
    pub fn has_p1(&self) -> bool {
        self.skus.iter().any(|s| catalog::includes_p1(s.def) && matches!(s.capability_status, "Enabled" | "Warning"))
    }

    /// The default domain.
    pub fn default_domain(&self) -> &str {
        self.domains.iter().find(|d| d.is_default).map_or("", |d| d.name.as_str())
    }

    /// Users holding a SKU.
    pub fn consumed(&self, sku_id: &str) -> i64 {
        self.users.iter().filter(|u| u.sku_ids.contains(&sku_id)).count() as i64
    }
}

/// A GDAP relationship between the partner and a customer.
#[derive(Clone, Debug)]
pub struct Relationship {
    /// `{guid}-{guid}`.
    pub id: String,
    /// Unique display name.
    pub display_name: String,
    /// Customer tenant id.
    pub customer_tenant_id: String,
    /// Customer name.
    pub customer_name: String,
    /// `active`, `expired`, `terminated`…
    pub status: String,
    /// Role template ids.
    pub roles: Vec<String>,
    /// Security group the partner's users are in.
    pub group_id: String,
}

/// Knobs of one customer tenant (scenario file and control API).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantKnobs {
    /// Replace the GDAP roles of the tenant's relationships (template ids).
    pub roles: Option<Vec<String>>,
    /// Force Entra ID P1 on or off.
    pub p1: Option<bool>,
    /// Per-user authentication methods answer 403 `Authorization_RequestDenied`.
    pub methods_forbidden: bool,
    /// The app is not consented in the tenant (token: AADSTS65001).
    pub consent_missing: bool,
    /// The partner user has no GDAP access (token: AADSTS50020).
    pub no_gdap_access: bool,
    /// Request budget per window; over it, 429 with `Retry-After`.
    pub throttle: Option<Throttle>,
    /// The next N Graph requests for the tenant fail with `fail_status`.
    pub fail_next: u32,
    /// Status of injected failures (default 503).
    pub fail_status: Option<u16>,
    /// Extra latency per Graph request, in milliseconds.
    pub latency_ms: u64,
}

/// Throttling: at most `requests` per `window_ms`; over it, 429 with `Retry-After: retry_after_secs`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Throttle {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window_ms: u64,
    /// Seconds sent in `Retry-After` (may be fractional).
    pub retry_after_secs: f64,
}

const COMPANIES: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Northwind Traders",
    "Adatum",
    "Litware",
    "Tailspin Toys",
    "Woodgrove Bank",
    "Proseware",
    "Wingtip Toys",
    "Alpine Ski House",
    "Coho Winery",
    "Lamna Healthcare",
    "Margie's Travel",
    "Trey Research",
    "Blue Yonder Airlines",
    "Fourth Coffee",
    "Humongous Insurance",
    "Relecloud",
    "VanArsdel",
    "Wide World Importers",
    "Graphic Design Institute",
    "Southridge Video",
    "Consolidated Messenger",
    "Lucerne Publishing",
    "City Power & Light",
    "Best For You Organics",
    "Bellows College",
    "Munson's Pickles",
    "Nod Publishers",
    "Olympia Hotels",
];
const SUFFIXES: &[&str] = &["Ltd", "Inc.", "LLC", "GmbH", "Group", "Corporation", "", "", ""];
const REGIONS: &[&str] = &["North", "West", "Europe", "Pacific", "Labs", "Holdings", "Services", "Partners"];
const FIRST: &[&str] = &[
    "Alex",
    "Megan",
    "Nestor",
    "Lidia",
    "Grady",
    "Adele",
    "Isaiah",
    "Johanna",
    "Lynne",
    "Patti",
    "Pradeep",
    "Diego",
    "Miriam",
    "Lee",
    "Joni",
    "Irvin",
    "Henrietta",
    "Christie",
    "Allan",
    "Debra",
    "Emily",
    "Enrico",
    "Gerhart",
    "Ben",
    "Sanjay",
    "Yuki",
    "Fatima",
    "Olga",
    "Kwame",
    "Mateo",
    "Aisha",
    "Chen",
    "Priya",
    "Lars",
    "Sofia",
    "Noah",
];
const LAST: &[&str] = &[
    "Wilber",
    "Bowen",
    "Wilke",
    "Holloway",
    "Archie",
    "Vance",
    "Langer",
    "Lauer",
    "Robbins",
    "Fernandez",
    "Gupta",
    "Soto",
    "Graham",
    "Gu",
    "Sherman",
    "Sauer",
    "Mueller",
    "Cline",
    "Deyoung",
    "Berg",
    "Braun",
    "Zimmerman",
    "Moreau",
    "Okafor",
    "Tanaka",
    "Haddad",
    "Ivanova",
    "Mensah",
    "Rossi",
    "Khan",
    "Wang",
    "Patel",
    "Nilsson",
    "Costa",
    "Kim",
];

fn guid(rng: &mut StdRng) -> String {
    let v: u128 = rng.r#gen();
    let h = format!("{v:032x}");
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn slug(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// Picks a realistic mix of MFA methods.
fn methods(rng: &mut StdRng) -> Vec<Method> {
    let mut m = vec![Method::Password];
    let roll: u32 = rng.gen_range(0..100);
    match roll {
        0..20 => {}
        20..35 => m.push(Method::Phone),
        35..70 => m.extend([Method::Authenticator, Method::Phone]),
        70..80 => m.extend([Method::Fido2, Method::Authenticator]),
        80..90 => m.push(Method::WindowsHello),
        _ => m.push(Method::SoftwareOath),
    }
    if rng.gen_bool(0.2) {
        m.push(Method::Email);
    }
    m
}

/// The emulated world.
#[derive(Clone, Debug)]
pub struct World {
    /// Partner (MSP) tenant is `tenants[0]`; customers follow.
    pub tenants: Vec<Tenant>,
    /// GDAP relationships.
    pub relationships: Vec<Relationship>,
    /// Knobs per customer tenant id.
    pub knobs: HashMap<String, TenantKnobs>,
    index: HashMap<String, usize>,
}

impl World {
    /// Generates the world for a spec; the same spec gives the same world.
    pub fn generate(spec: &WorldSpec) -> Self {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let partner_id = guid(&mut rng);
        let partner = Tenant {
            id: partner_id,
            display_name: "Scopable Demo MSP".into(),
            domains: vec![
                Domain { name: "demomsp.com".into(), is_default: true, is_initial: false },
                Domain { name: "demomsp.onmicrosoft.com".into(), is_default: false, is_initial: true },
            ],
            users: vec![
                partner_user(&mut rng, "Avery Admin", "admin@demomsp.com", true),
                partner_user(&mut rng, "Toby Technician", "tech@demomsp.com", false),
            ],
            skus: vec![TenantSku { def: &catalog::SPB, enabled: 10, capability_status: "Enabled" }],
            app_consented: false,
            policies: TenantPolicies::default(),
        };
        let mut tenants = vec![partner];
        let mut relationships = vec![];
        let mut used_names = HashMap::<String, u32>::new();
        for i in 0..spec.tenants {
            let base = COMPANIES[i % COMPANIES.len()];
            let mut name = if i < COMPANIES.len() {
                base.to_owned()
            } else {
                format!("{base} {}", REGIONS[(i / COMPANIES.len() - 1) % REGIONS.len()])
            };
            let n = used_names.entry(name.clone()).or_default();
            *n += 1;
            if *n > 1 {
                name = format!("{name} {n}");
            }
            let suffix = SUFFIXES[rng.gen_range(0..SUFFIXES.len())];
            let display = if suffix.is_empty() { name.clone() } else { format!("{name} {suffix}") };
            let s = slug(&name);
            let domain = format!("{s}.com");
            let mut domains = vec![
                Domain { name: domain.clone(), is_default: true, is_initial: false },
                Domain { name: format!("{s}.onmicrosoft.com"), is_default: false, is_initial: true },
            ];
            if rng.gen_bool(0.3) {
                domains.push(Domain { name: format!("{s}.co.uk"), is_default: false, is_initial: false });
            }
            // One tenant in ten has no Entra ID P1 (Office-only plans): the report is refused.
            let no_p1 = i % 10 == 9;
            let skus = tenant_skus(&mut rng, no_p1, spec.users_per_tenant as i64);
            let users = (0..spec.users_per_tenant).map(|u| customer_user(&mut rng, u, &domain, &s, &skus)).collect();
            let t = Tenant {
                id: guid(&mut rng),
                display_name: display.clone(),
                domains,
                users,
                skus,
                app_consented: true,
                policies: TenantPolicies::default(),
            };
            // Most relationships hold what the guide asks; one in 25 only Directory Readers +
            // User Administrator (MFA cannot be read that way, whatever the guide says).
            let role_set: Vec<String> = if i % 25 == 12 {
                vec![roles::DIRECTORY_READERS.into(), roles::USER_ADMINISTRATOR.into()]
            } else {
                vec![roles::GLOBAL_READER.into(), roles::USER_ADMINISTRATOR.into(), roles::REPORTS_READER.into()]
            };
            relationships.push(Relationship {
                id: format!("{}-{}", guid(&mut rng), guid(&mut rng)),
                display_name: format!("GDAP {display}"),
                customer_tenant_id: t.id.clone(),
                customer_name: display.clone(),
                status: "active".into(),
                roles: role_set,
                group_id: guid(&mut rng),
            });
            if i % 7 == 3 {
                // An older, expired relationship next to the active one.
                relationships.push(Relationship {
                    id: format!("{}-{}", guid(&mut rng), guid(&mut rng)),
                    display_name: format!("GDAP {display} (2023)"),
                    customer_tenant_id: t.id.clone(),
                    customer_name: display,
                    status: "expired".into(),
                    roles: vec![roles::GLOBAL_ADMINISTRATOR.into()],
                    group_id: guid(&mut rng),
                });
            }
            tenants.push(t);
        }
        // A former customer whose only relationship was terminated: not to be synced.
        relationships.push(Relationship {
            id: format!("{}-{}", guid(&mut rng), guid(&mut rng)),
            display_name: "GDAP Former Customer".into(),
            customer_tenant_id: guid(&mut rng),
            customer_name: "Former Customer Ltd".into(),
            status: "terminated".into(),
            roles: vec![roles::GLOBAL_READER.into()],
            group_id: guid(&mut rng),
        });
        // A separate stream, so the rest of the world is what it was before policies existed.
        let mut policy_rng = StdRng::seed_from_u64(spec.seed ^ 0x4d46_4131);
        for (i, t) in tenants.iter_mut().skip(1).enumerate() {
            seed_policies(&mut policy_rng, i, t);
        }
        let mut w = Self { tenants, relationships, knobs: HashMap::new(), index: HashMap::new() };
        w.reindex();
        w
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, t) in self.tenants.iter().enumerate() {
            self.index.insert(t.id.clone(), i);
            for d in &t.domains {
                self.index.insert(d.name.clone(), i);
            }
        }
    }

    /// The partner tenant.
    pub fn partner(&self) -> &Tenant {
        &self.tenants[0]
    }

    /// Mutable partner tenant.
    pub fn partner_mut(&mut self) -> &mut Tenant {
        &mut self.tenants[0]
    }

    /// A tenant by id or verified domain.
    pub fn tenant_index(&self, id_or_domain: &str) -> Option<usize> {
        self.index.get(&id_or_domain.to_ascii_lowercase()).or_else(|| self.index.get(id_or_domain)).copied()
    }

    /// The customers (everything but the partner).
    pub fn customers(&self) -> &[Tenant] {
        &self.tenants[1..]
    }

    /// Knobs of a tenant (defaults when none were set).
    pub fn knobs(&self, tenant_id: &str) -> TenantKnobs {
        self.knobs.get(tenant_id).cloned().unwrap_or_default()
    }

    /// Effective GDAP roles the partner's users hold in a customer (active relationships only).
    pub fn roles_in(&self, tenant_id: &str) -> Vec<String> {
        if let Some(r) = self.knobs.get(tenant_id).and_then(|k| k.roles.clone()) {
            return r;
        }
        let mut out: Vec<String> = self
            .relationships
            .iter()
            .filter(|r| r.customer_tenant_id == tenant_id && r.status == "active")
            .flat_map(|r| r.roles.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether a customer's effective P1 is on (knob first).
    pub fn has_p1(&self, idx: usize) -> bool {
        let t = &self.tenants[idx];
        self.knobs.get(&t.id).and_then(|k| k.p1).unwrap_or_else(|| t.has_p1())
    }
}

/// The MFA picture of customer `i`, by `i % 5`: security defaults on; "all users" with a
/// break-glass group excluded and a report-only pilot; an administrators' role policy with an
/// `OR` policy for everyone; a location-conditioned policy with a policy for a group that has a
/// nested group; or nothing at all. Per-user MFA: every 7th user enforced, the next enabled.
fn seed_policies(rng: &mut StdRng, i: usize, t: &mut Tenant) {
    for (j, u) in t.users.iter_mut().enumerate() {
        u.per_user_mfa = match j % 7 {
            0 => "enforced",
            1 => "enabled",
            _ => "disabled",
        };
    }
    let policy = |rng: &mut StdRng, name: &str, state: &str, users: serde_json::Value, grant: serde_json::Value| {
        serde_json::json!({
            "id": guid(rng), "displayName": name, "state": state,
            "createdDateTime": "2024-03-01T09:00:00Z", "modifiedDateTime": null,
            "conditions": {
                "userRiskLevels": [], "signInRiskLevels": [], "clientAppTypes": ["all"],
                "platforms": null, "locations": null,
                "applications": {"includeApplications": ["All"], "excludeApplications": []},
                "users": {
                    "includeUsers": users["includeUsers"].clone(), "excludeUsers": [],
                    "includeGroups": users["includeGroups"].clone(), "excludeGroups": users["excludeGroups"].clone(),
                    "includeRoles": users["includeRoles"].clone(), "excludeRoles": []
                }
            },
            "grantControls": grant,
            "sessionControls": null
        })
    };
    let mfa = serde_json::json!({"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": []});
    let users = |include: &[&str], groups: &[&str], ex_groups: &[&str], roles: &[&str]| serde_json::json!({"includeUsers": include, "includeGroups": groups, "excludeGroups": ex_groups, "includeRoles": roles});
    match i % 5 {
        0 => t.policies.security_defaults = true,
        1 => {
            let admin = t.users.iter().find(|u| u.is_admin).map(|u| u.id.clone());
            let group = Group {
                id: guid(rng),
                display_name: "Break-glass accounts".into(),
                users: admin.into_iter().collect(),
                groups: vec![],
            };
            let all = policy(
                rng,
                "Require MFA for all users",
                "enabled",
                users(&["All"], &[], &[&group.id], &[]),
                mfa.clone(),
            );
            let strength = serde_json::json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA"}});
            let pilot = policy(
                rng,
                "Pilot: phishing-resistant MFA",
                "enabledForReportingButNotEnforced",
                users(&["All"], &[], &[], &[]),
                strength,
            );
            t.policies.groups.push(group);
            t.policies.conditional_access = vec![all, pilot];
        }
        2 => {
            let admins = policy(
                rng,
                "Require MFA for administrators",
                "enabled",
                users(&[], &[], &[], &[roles::GLOBAL_ADMINISTRATOR]),
                mfa.clone(),
            );
            let either = serde_json::json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"], "customAuthenticationFactors": [], "termsOfUse": []});
            let or = policy(rng, "MFA or a compliant device", "enabled", users(&["All"], &[], &[], &[]), either);
            t.policies.conditional_access = vec![admins, or];
        }
        3 => {
            let ids: Vec<String> = t.users.iter().map(|u| u.id.clone()).collect();
            let managers = Group {
                id: guid(rng),
                display_name: "Finance managers".into(),
                users: ids.iter().skip(1).take(1).cloned().collect(),
                groups: vec![],
            };
            let finance = Group {
                id: guid(rng),
                display_name: "Finance".into(),
                users: ids.iter().skip(2).take(2).cloned().collect(),
                groups: vec![managers.id.clone()],
            };
            let mut outside =
                policy(rng, "MFA outside trusted locations", "enabled", users(&["All"], &[], &[], &[]), mfa.clone());
            outside["conditions"]["locations"] =
                serde_json::json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]});
            let fin = policy(rng, "Finance requires MFA", "enabled", users(&[], &[&finance.id], &[], &[]), mfa.clone());
            t.policies.groups.extend([finance, managers]);
            t.policies.conditional_access = vec![outside, fin];
        }
        _ => {}
    }
}

fn partner_user(rng: &mut StdRng, name: &str, upn: &str, global_admin: bool) -> User {
    User {
        id: guid(rng),
        display_name: name.into(),
        upn: upn.into(),
        mail: Some(upn.into()),
        other_mails: vec![],
        proxy_addresses: vec![format!("SMTP:{upn}")],
        account_enabled: true,
        user_type: "Member",
        is_admin: global_admin,
        methods: vec![Method::Password, Method::Authenticator],
        sku_ids: vec![catalog::SPB.sku_id],
        global_admin,
        per_user_mfa: "disabled",
    }
}

fn tenant_skus(rng: &mut StdRng, no_p1: bool, users: i64) -> Vec<TenantSku> {
    let pool: &[&'static SkuDef] = if no_p1 {
        &[
            &catalog::STANDARDPACK,
            &catalog::ENTERPRISEPACK,
            &catalog::O365_BUSINESS_ESSENTIALS,
            &catalog::O365_BUSINESS_PREMIUM,
        ]
    } else {
        &[
            &catalog::SPB,
            &catalog::SPE_E3,
            &catalog::SPE_E5,
            &catalog::ENTERPRISEPACK,
            &catalog::O365_BUSINESS_ESSENTIALS,
        ]
    };
    let mut chosen: Vec<&'static SkuDef> = pool.choose_multiple(rng, 2).copied().collect();
    if !no_p1 && !chosen.iter().any(|s| catalog::includes_p1(s)) {
        chosen.push(&catalog::AAD_PREMIUM);
    }
    if rng.gen_bool(0.25) {
        chosen.push(&catalog::EXCHANGESTANDARD);
    }
    chosen
        .into_iter()
        .map(|def| TenantSku {
            def,
            enabled: users + rng.gen_range(0..=5),
            capability_status: if rng.gen_bool(0.05) { "Warning" } else { "Enabled" },
        })
        .collect()
}

fn customer_user(rng: &mut StdRng, n: usize, domain: &str, slug: &str, skus: &[TenantSku]) -> User {
    let first = FIRST[rng.gen_range(0..FIRST.len())];
    let last = LAST[rng.gen_range(0..LAST.len())];
    let local = if n < FIRST.len() * 2 {
        format!("{}.{}", first.to_ascii_lowercase(), last.to_ascii_lowercase())
    } else {
        format!("{}.{}{n}", first.to_ascii_lowercase(), last.to_ascii_lowercase())
    };
    // A few guests, invited from outside.
    if n % 20 == 19 {
        let ext = format!("{local}@gmail.com");
        return User {
            id: guid(rng),
            display_name: format!("{first} {last} (Guest)"),
            upn: format!("{}#EXT#@{slug}.onmicrosoft.com", ext.replace('@', "_")),
            mail: Some(ext.clone()),
            other_mails: vec![ext],
            proxy_addresses: vec![],
            account_enabled: true,
            user_type: "Guest",
            is_admin: false,
            methods: methods(rng),
            sku_ids: vec![],
            global_admin: false,
            per_user_mfa: "disabled",
        };
    }
    let upn = format!("{local}@{domain}");
    let alias = format!("{}{}@{domain}", &first[..1].to_ascii_lowercase(), last.to_ascii_lowercase());
    let mut proxy = vec![format!("SMTP:{upn}"), format!("smtp:{alias}")];
    proxy.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let is_admin = n < 2;
    let account_enabled = n % 17 != 16;
    let licensed = account_enabled && !rng.gen_bool(0.1);
    let mut sku_ids = vec![];
    if licensed && !skus.is_empty() {
        sku_ids.push(skus[0].def.sku_id);
        if skus.len() > 1 && rng.gen_bool(0.3) {
            sku_ids.push(skus[1].def.sku_id);
        }
    }
    User {
        id: guid(rng),
        display_name: format!("{first} {last}"),
        upn: upn.clone(),
        mail: Some(upn),
        other_mails: if rng.gen_bool(0.1) { vec![format!("{local}@outlook.com")] } else { vec![] },
        proxy_addresses: proxy,
        account_enabled,
        user_type: "Member",
        is_admin,
        methods: methods(rng),
        sku_ids,
        global_admin: false,
        per_user_mfa: "disabled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_consistent() {
        let spec = WorldSpec { seed: 7, tenants: 40, users_per_tenant: 30 };
        let a = World::generate(&spec);
        let b = World::generate(&spec);
        assert_eq!(a.tenants[5].id, b.tenants[5].id);
        assert_eq!(a.tenants[5].users[3].upn, b.tenants[5].users[3].upn);
        assert_eq!(a.customers().len(), 40);
        let names: std::collections::HashSet<_> = a.customers().iter().map(|t| &t.display_name).collect();
        assert_eq!(names.len(), 40, "tenant names are unique");
        for t in a.customers() {
            for s in &t.skus {
                assert!(t.consumed(s.def.sku_id) <= s.enabled, "assignments fit the seats bought");
            }
            assert!(t.users.iter().any(|u| u.is_admin));
        }
        let without_p1 = a.customers().iter().filter(|t| !t.has_p1()).count();
        assert_eq!(without_p1, 4, "one tenant in ten lacks P1");
        assert_eq!(a.tenant_index("contoso.com"), Some(1));
    }
}
