//! Every Graph read the service makes, typed: the paths, `$select`, `$filter` and `$top` live
//! here and nowhere else. Collections are followed through `@odata.nextLink` to the end.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;

use super::{
    graph::{BatchGet, GraphClient, GraphError},
    models::{
        AuthenticationMethod, ConditionalAccessPolicy, DelegatedAdminRelationship, DirectoryObject, Me, Organization,
        Page, SecurityDefaultsPolicy, StrongAuthenticationRequirements, SubscribedSku, User, UserRegistrationDetails,
    },
};

/// `$select` list that fills [`User`].
pub const USER_SELECT: &str =
    "id,displayName,userPrincipalName,mail,otherMails,proxyAddresses,accountEnabled,userType,assignedLicenses";

/// Page sizes: the largest each listing accepts.
const USERS_TOP: u32 = 999;
const REPORT_TOP: u32 = 999;
const RELATIONSHIPS_TOP: u32 = 300;

/// Each user's authentication methods, or that user's own error.
pub type MethodsByUser = HashMap<String, Result<Vec<AuthenticationMethod>, GraphError>>;

impl GraphClient {
    async fn all<T: DeserializeOwned>(&self, token: &str, first: &str) -> Result<Vec<T>, GraphError> {
        let pages: Vec<Vec<T>> = self.pages(token, first).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// The signed-in tenant's organization (`GET /organization`), with its verified domains;
    /// `None` when Microsoft lists none.
    pub async fn organization(&self, token: &str) -> Result<Option<Organization>, GraphError> {
        let page: Page<Organization> = self.get(token, "/organization?$select=id,displayName,verifiedDomains").await?;
        Ok(page.value.into_iter().next())
    }

    /// The signed-in user (`GET /me`).
    pub async fn me(&self, token: &str) -> Result<Me, GraphError> {
        self.get(token, "/me?$select=id,userPrincipalName").await
    }

    /// The partner's active GDAP relationships, with their customers and roles.
    pub async fn active_relationships(&self, token: &str) -> Result<Vec<DelegatedAdminRelationship>, GraphError> {
        let first = format!(
            "/tenantRelationships/delegatedAdminRelationships?$filter=status eq 'active'&$top={RELATIONSHIPS_TOP}"
        );
        self.all(token, &first).await
    }

    /// Every user of the tenant, with the fields of [`User`].
    pub async fn users(&self, token: &str) -> Result<Vec<User>, GraphError> {
        self.all(token, &format!("/users?$select={USER_SELECT}&$top={USERS_TOP}")).await
    }

    /// The tenant's subscriptions (`GET /subscribedSkus`; it takes no `$filter` or `$top`).
    pub async fn subscribed_skus(&self, token: &str) -> Result<Vec<SubscribedSku>, GraphError> {
        self.all(token, "/subscribedSkus").await
    }

    /// The authentication-methods registration report (needs Entra ID P1 and a reports role).
    pub async fn registration_details(&self, token: &str) -> Result<Vec<UserRegistrationDetails>, GraphError> {
        self.all(token, &format!("/reports/authenticationMethods/userRegistrationDetails?$top={REPORT_TOP}")).await
    }

    /// Authentication methods of these users, through `$batch` (20 per call). An item Graph
    /// refuses carries its own error; the whole call fails only when `$batch` itself does.
    pub async fn authentication_methods(&self, token: &str, user_ids: &[&str]) -> Result<MethodsByUser, GraphError> {
        let items: Vec<BatchGet> = user_ids
            .iter()
            .map(|id| BatchGet { id: (*id).to_owned(), url: format!("/users/{id}/authentication/methods") })
            .collect();
        let answers = self.batch_get(token, &items).await?;
        Ok(answers
            .into_iter()
            .map(|(id, answer)| {
                let methods = answer.and_then(|body| {
                    serde_json::from_value::<Page<AuthenticationMethod>>(body)
                        .map(|p| p.value)
                        .map_err(|e| GraphError::Decode(format!("authentication methods: {e}")))
                });
                (id, methods)
            })
            .collect())
    }

    /// Whether security defaults are on.
    pub async fn security_defaults(&self, token: &str) -> Result<bool, GraphError> {
        let p: SecurityDefaultsPolicy = self.get(token, "/policies/identitySecurityDefaultsEnforcementPolicy").await?;
        Ok(p.is_enabled)
    }

    /// The tenant's Conditional Access policies (that service allows one request per second
    /// per tenant and sends no `Retry-After`; the client's backoff covers it).
    pub async fn conditional_access_policies(&self, token: &str) -> Result<Vec<ConditionalAccessPolicy>, GraphError> {
        self.all(token, "/identity/conditionalAccess/policies").await
    }

    /// User members of a group, through nested groups.
    pub async fn group_user_members(&self, token: &str, group_id: &str) -> Result<Vec<String>, GraphError> {
        let members: Vec<DirectoryObject> =
            self.all(token, &format!("/groups/{group_id}/transitiveMembers?$select=id")).await?;
        Ok(users_only(members))
    }

    /// User members of a directory role, by its template id.
    pub async fn role_user_members(&self, token: &str, role_template_id: &str) -> Result<Vec<String>, GraphError> {
        let members: Vec<DirectoryObject> = self
            .all(token, &format!("/directoryRoles(roleTemplateId='{role_template_id}')/members?$select=id"))
            .await?;
        Ok(users_only(members))
    }

    /// Legacy per-user MFA states (`disabled`, `enabled`, `enforced`) of these users, through the
    /// beta `$batch` (the property exists only on beta).
    pub async fn per_user_mfa(
        &self,
        token: &str,
        user_ids: &[&str],
    ) -> Result<HashMap<String, Result<String, GraphError>>, GraphError> {
        let items: Vec<BatchGet> = user_ids
            .iter()
            .map(|id| BatchGet { id: (*id).to_owned(), url: format!("/users/{id}/authentication/requirements") })
            .collect();
        let answers = self.batch_get_beta(token, &items).await?;
        Ok(answers
            .into_iter()
            .map(|(id, answer)| {
                let state = answer.and_then(|body| {
                    serde_json::from_value::<StrongAuthenticationRequirements>(body)
                        .map(|r| r.per_user_mfa_state)
                        .map_err(|e| GraphError::Decode(format!("per-user MFA: {e}")))
                });
                (id, state)
            })
            .collect())
    }
}

fn users_only(members: Vec<DirectoryObject>) -> Vec<String> {
    members.into_iter().filter(|m| m.odata_type.is_empty() || m.odata_type.ends_with(".user")).map(|m| m.id).collect()
}
