//! The emulator's own small catalog: the SKUs it emulates (ids and part numbers as Microsoft
//! publishes them) and the built-in role template ids GDAP relationships carry.

/// A SKU the emulator can assign.
#[derive(Debug)]
pub struct SkuDef {
    /// `skuId`.
    pub sku_id: &'static str,
    /// `skuPartNumber`.
    pub part_number: &'static str,
    /// Product display name, as in Microsoft's product-names CSV.
    pub display_name: &'static str,
    /// Service plans `(servicePlanId, servicePlanName)` relevant to this service.
    pub plans: &'static [(&'static str, &'static str)],
}

const AAD_PREMIUM_PLAN: (&str, &str) = ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AAD_PREMIUM");
const MFA_PREMIUM_PLAN: (&str, &str) = ("8a256a2b-b617-496d-b51b-e76466e88db0", "MFA_PREMIUM");
const EXCHANGE_S_STANDARD: (&str, &str) = ("9aaf7827-d63c-4b61-89c3-182f06f82e5c", "EXCHANGE_S_STANDARD");
const EXCHANGE_S_ENTERPRISE: (&str, &str) = ("efb87545-963c-4e0d-99df-69c6916d9eb0", "EXCHANGE_S_ENTERPRISE");

/// Office 365 E3.
pub const ENTERPRISEPACK: SkuDef = SkuDef {
    sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900",
    part_number: "ENTERPRISEPACK",
    display_name: "Office 365 E3",
    plans: &[EXCHANGE_S_ENTERPRISE],
};
/// Office 365 E1.
pub const STANDARDPACK: SkuDef = SkuDef {
    sku_id: "18181a46-0d4e-45cd-891e-60aabd171b4e",
    part_number: "STANDARDPACK",
    display_name: "Office 365 E1",
    plans: &[EXCHANGE_S_STANDARD],
};
/// Microsoft 365 E3.
pub const SPE_E3: SkuDef = SkuDef {
    sku_id: "05e9a617-0261-4cee-bb44-138d3ef5d965",
    part_number: "SPE_E3",
    display_name: "Microsoft 365 E3",
    plans: &[EXCHANGE_S_ENTERPRISE, AAD_PREMIUM_PLAN, MFA_PREMIUM_PLAN],
};
/// Microsoft 365 E5.
pub const SPE_E5: SkuDef = SkuDef {
    sku_id: "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
    part_number: "SPE_E5",
    display_name: "Microsoft 365 E5",
    plans: &[EXCHANGE_S_ENTERPRISE, AAD_PREMIUM_PLAN, MFA_PREMIUM_PLAN],
};
/// Microsoft 365 Business Premium.
pub const SPB: SkuDef = SkuDef {
    sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
    part_number: "SPB",
    display_name: "Microsoft 365 Business Premium",
    plans: &[EXCHANGE_S_STANDARD, AAD_PREMIUM_PLAN, MFA_PREMIUM_PLAN],
};
/// Microsoft 365 Business Standard.
pub const O365_BUSINESS_PREMIUM: SkuDef = SkuDef {
    sku_id: "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
    part_number: "O365_BUSINESS_PREMIUM",
    display_name: "Microsoft 365 Business Standard",
    plans: &[EXCHANGE_S_STANDARD],
};
/// Microsoft 365 Business Basic.
pub const O365_BUSINESS_ESSENTIALS: SkuDef = SkuDef {
    sku_id: "3b555118-da6a-4418-894f-7df1e2096870",
    part_number: "O365_BUSINESS_ESSENTIALS",
    display_name: "Microsoft 365 Business Basic",
    plans: &[EXCHANGE_S_STANDARD],
};
/// Microsoft Entra ID P1.
pub const AAD_PREMIUM: SkuDef = SkuDef {
    sku_id: "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
    part_number: "AAD_PREMIUM",
    display_name: "Microsoft Entra ID P1",
    plans: &[AAD_PREMIUM_PLAN, MFA_PREMIUM_PLAN],
};
/// Exchange Online (Plan 1).
pub const EXCHANGESTANDARD: SkuDef = SkuDef {
    sku_id: "4b9405b0-7788-4568-add1-99614e613b69",
    part_number: "EXCHANGESTANDARD",
    display_name: "Exchange Online (Plan 1)",
    plans: &[EXCHANGE_S_STANDARD],
};

/// Every SKU the emulator knows.
pub const ALL_SKUS: &[&SkuDef] = &[
    &ENTERPRISEPACK,
    &STANDARDPACK,
    &SPE_E3,
    &SPE_E5,
    &SPB,
    &O365_BUSINESS_PREMIUM,
    &O365_BUSINESS_ESSENTIALS,
    &AAD_PREMIUM,
    &EXCHANGESTANDARD,
];

/// Looks a SKU up by id.
pub fn sku(sku_id: &str) -> Option<&'static SkuDef> {
    ALL_SKUS.iter().copied().find(|s| s.sku_id == sku_id)
}

/// Whether a SKU includes Entra ID P1 (the registration report needs it).
pub fn includes_p1(s: &SkuDef) -> bool {
    s.plans.iter().any(|(_, name)| *name == "AAD_PREMIUM")
}

/// Built-in Entra role template ids and which of them Microsoft documents as allowing each read.
/// This is the emulator's own copy, taken from Microsoft's documentation, not the service's:
/// if the service misreads which role may read what, the emulator disagrees with it.
pub mod roles {
    // Template ids: "Microsoft Entra built-in roles"
    // (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).

    /// Global Administrator.
    pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
    /// Global Reader.
    pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
    /// User Administrator.
    pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    /// Reports Reader.
    pub const REPORTS_READER: &str = "4a5d8f65-41da-4de4-8968-e035b65339cf";
    /// Authentication Administrator.
    pub const AUTHENTICATION_ADMINISTRATOR: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
    /// Privileged Authentication Administrator.
    pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
    /// Security Reader.
    pub const SECURITY_READER: &str = "5d6b6bb7-de71-4623-b4af-96380a352509";
    /// Security Administrator.
    pub const SECURITY_ADMINISTRATOR: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    /// Directory Readers.
    pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
    /// License Administrator.
    pub const LICENSE_ADMINISTRATOR: &str = "4d6ac14f-3453-41d0-bef9-a3e0c569773a";
    /// Helpdesk Administrator.
    pub const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

    /// Roles that may read the directory in a customer tenant (`/users`, `/organization`,
    /// `/subscribedSkus`) through GDAP: every role whose permissions include
    /// `microsoft.directory/users/standard/read` ("Microsoft Entra built-in roles"; Directory
    /// Readers is the least privileged).
    pub const DIRECTORY_READ: &[&str] = &[
        GLOBAL_ADMINISTRATOR,
        GLOBAL_READER,
        DIRECTORY_READERS,
        USER_ADMINISTRATOR,
        HELPDESK_ADMINISTRATOR,
        LICENSE_ADMINISTRATOR,
    ];
    /// Roles that may list another user's authentication methods: "List methods", delegated
    /// scenarios — "Global Reader, Authentication Administrator, Privileged Authentication
    /// Administrator" (<https://learn.microsoft.com/graph/api/authentication-list-methods>), plus
    /// Global Administrator, which holds every permission.
    pub const METHODS_READ: &[&str] =
        &[GLOBAL_ADMINISTRATOR, GLOBAL_READER, AUTHENTICATION_ADMINISTRATOR, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR];
    /// Roles that may read the registration report: "List userRegistrationDetails", delegated
    /// scenarios — "Reports Reader, Security Reader, Security Administrator, Global Reader"
    /// (<https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails>),
    /// plus Global Administrator.
    pub const REPORTS_READ: &[&str] =
        &[GLOBAL_ADMINISTRATOR, GLOBAL_READER, REPORTS_READER, SECURITY_READER, SECURITY_ADMINISTRATOR];
    /// Roles that may read security defaults and Conditional Access policies: "Global Reader or
    /// Security Reader" (with `Policy.Read.All`), plus the administrators of either.
    pub const POLICY_READ: &[&str] = &[
        GLOBAL_ADMINISTRATOR,
        GLOBAL_READER,
        SECURITY_READER,
        SECURITY_ADMINISTRATOR,
        CONDITIONAL_ACCESS_ADMINISTRATOR,
    ];
    /// Conditional Access Administrator.
    pub const CONDITIONAL_ACCESS_ADMINISTRATOR: &str = "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9";
    /// Authentication Policy Administrator.
    pub const AUTHENTICATION_POLICY_ADMINISTRATOR: &str = "0526716b-113d-4c15-b2c8-68e3c22b9f80";
    /// Roles that may read another user's per-user MFA state (beta `authentication/requirements`):
    /// "Global Reader or Authentication Policy Administrator", plus Global Administrator.
    pub const PER_USER_MFA_READ: &[&str] = &[GLOBAL_ADMINISTRATOR, GLOBAL_READER, AUTHENTICATION_POLICY_ADMINISTRATOR];
}
