//! Graph wire models: only the fields the service uses, tolerant of unknown fields and nulls.

use serde::{Deserialize, Deserializer};

/// Treats `null` like a missing field.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One page of a collection.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    /// Items on this page.
    #[serde(default = "Vec::new", deserialize_with = "nullable")]
    pub value: Vec<T>,
    /// Absolute URL of the next page.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// `organization`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    pub display_name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub verified_domains: Vec<VerifiedDomain>,
}

/// `verifiedDomain`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub is_default: bool,
    #[serde(deserialize_with = "nullable")]
    pub is_initial: bool,
}

/// `delegatedAdminRelationship`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DelegatedAdminRelationship {
    pub id: String,
    pub display_name: Option<String>,
    pub status: String,
    pub customer: Option<RelationshipCustomer>,
    pub access_details: Option<AccessDetails>,
}

/// `delegatedAdminRelationshipCustomerParticipant`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RelationshipCustomer {
    pub tenant_id: String,
    pub display_name: Option<String>,
}

/// `delegatedAdminAccessDetails`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AccessDetails {
    #[serde(deserialize_with = "nullable")]
    pub unified_roles: Vec<UnifiedRole>,
}

/// `unifiedRole`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UnifiedRole {
    pub role_definition_id: String,
}

/// `user`, with the fields the sync selects.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub other_mails: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub proxy_addresses: Vec<String>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub assigned_licenses: Vec<AssignedLicense>,
}

/// `assignedLicense`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AssignedLicense {
    pub sku_id: String,
}

/// `userRegistrationDetails`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UserRegistrationDetails {
    pub id: String,
    pub user_principal_name: Option<String>,
    pub is_admin: Option<bool>,
    pub is_mfa_registered: Option<bool>,
    pub is_mfa_capable: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub methods_registered: Vec<String>,
}

/// `authenticationMethod` (typed by `@odata.type`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthenticationMethod {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
}

/// `subscribedSku`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscribedSku {
    pub sku_id: String,
    pub sku_part_number: String,
    pub capability_status: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub consumed_units: i64,
    #[serde(deserialize_with = "nullable")]
    pub prepaid_units: PrepaidUnits,
    #[serde(deserialize_with = "nullable")]
    pub service_plans: Vec<ServicePlan>,
}

/// `licenseUnitsDetail`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PrepaidUnits {
    #[serde(deserialize_with = "nullable")]
    pub enabled: i64,
    #[serde(deserialize_with = "nullable")]
    pub suspended: i64,
    #[serde(deserialize_with = "nullable")]
    pub warning: i64,
    #[serde(deserialize_with = "nullable")]
    pub locked_out: i64,
}

/// `servicePlanInfo`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePlan {
    pub service_plan_id: String,
    pub service_plan_name: String,
}

/// `identitySecurityDefaultsEnforcementPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityDefaultsPolicy {
    pub id: String,
    pub display_name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub is_enabled: bool,
}

/// `conditionalAccessPolicy`, with the parts that decide whether it requires MFA and for whom.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    pub id: String,
    pub display_name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: String,
    #[serde(deserialize_with = "nullable")]
    pub conditions: CaConditions,
    /// Null for a policy that only has session controls.
    pub grant_controls: Option<CaGrantControls>,
}

/// `conditionalAccessConditionSet`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CaConditions {
    #[serde(deserialize_with = "nullable")]
    pub users: CaUsers,
    #[serde(deserialize_with = "nullable")]
    pub applications: CaApplications,
    /// Present (non-null) when the policy is scoped to locations.
    pub locations: Option<serde_json::Value>,
    /// Present when scoped to device platforms.
    pub platforms: Option<serde_json::Value>,
    /// `all`, or specific client app types (`browser`, `mobileAppsAndDesktopClients`, …).
    #[serde(deserialize_with = "nullable")]
    pub client_app_types: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub sign_in_risk_levels: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub user_risk_levels: Vec<String>,
}

/// `conditionalAccessUsers`: ids, or `All`, `None`, `GuestsOrExternalUsers`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CaUsers {
    #[serde(deserialize_with = "nullable")]
    pub include_users: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub exclude_users: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub include_groups: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub exclude_groups: Vec<String>,
    /// Role template ids.
    #[serde(deserialize_with = "nullable")]
    pub include_roles: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub exclude_roles: Vec<String>,
    /// Set when the policy includes guests or external users by kind.
    pub include_guests_or_external_users: Option<serde_json::Value>,
    pub exclude_guests_or_external_users: Option<serde_json::Value>,
}

/// `conditionalAccessApplications`: app ids, or `All`, `Office365`, `None`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CaApplications {
    #[serde(deserialize_with = "nullable")]
    pub include_applications: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub exclude_applications: Vec<String>,
}

/// `conditionalAccessGrantControls`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CaGrantControls {
    /// `AND` or `OR`.
    pub operator: Option<String>,
    /// `block`, `mfa`, `compliantDevice`, `domainJoinedDevice`, `approvedApplication`, …
    #[serde(deserialize_with = "nullable")]
    pub built_in_controls: Vec<String>,
    /// Set when the policy requires an authentication strength (which implies MFA).
    pub authentication_strength: Option<serde_json::Value>,
}

/// A `directoryObject` in a membership listing (`@odata.type` tells users from groups).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DirectoryObject {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
}

/// beta `strongAuthenticationRequirements`: legacy per-user MFA.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StrongAuthenticationRequirements {
    /// `disabled`, `enabled` or `enforced`.
    pub per_user_mfa_state: String,
}

/// `user` as `/me` answers it (the signed-in user).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Me {
    pub id: String,
    pub user_principal_name: Option<String>,
}

/// The answer of `POST /$batch`: one response per request, in any order.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchResponse {
    #[serde(deserialize_with = "nullable")]
    pub responses: Vec<BatchItemResponse>,
}

/// One response inside a `$batch` answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BatchItemResponse {
    /// The id of the request it answers.
    pub id: String,
    pub status: u16,
    /// Response headers (`Retry-After` on a throttled item); values are strings, though a
    /// number is tolerated.
    #[serde(deserialize_with = "nullable")]
    pub headers: std::collections::HashMap<String, serde_json::Value>,
    /// The item's JSON body (a collection page, or an error body).
    pub body: serde_json::Value,
}

impl BatchItemResponse {
    /// The item's `Retry-After` header, as text.
    pub fn retry_after(&self) -> Option<String> {
        let (_, v) = self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?;
        v.as_str().map(str::to_owned).or_else(|| v.as_f64().map(|f| f.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_of_nulls_and_unknown_fields() {
        let u: User = serde_json::from_str(
            r#"{"id":"1","userPrincipalName":"a@b.c","otherMails":null,"proxyAddresses":["SMTP:a@b.c"],"assignedLicenses":null,"newField":{"x":1}}"#,
        )
        .unwrap();
        assert!(u.other_mails.is_empty() && u.assigned_licenses.is_empty());
        assert_eq!(u.proxy_addresses, ["SMTP:a@b.c"]);
        let p: Page<User> = serde_json::from_str(r#"{"value":null}"#).unwrap();
        assert!(p.value.is_empty() && p.next_link.is_none());
        let s: SubscribedSku = serde_json::from_str(
            r#"{"skuId":"x","skuPartNumber":"SPB","consumedUnits":null,"prepaidUnits":{"enabled":5,"suspended":null}}"#,
        )
        .unwrap();
        assert_eq!((s.consumed_units, s.prepaid_units.enabled), (0, 5));
    }
}
