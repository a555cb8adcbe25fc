//! Linking synced users to the MSP's contacts of the tenant's mapped client, by e-mail address.
//!
//! A user matches a contact when one of the user's addresses (mail, UPN, `smtp:` proxy
//! addresses, other mails; case-insensitive, trimmed) equals one of the contact's addresses.
//! Exactly one contact: linked, recording the address. Several: not linked, `ambiguous`.
//! None: unlinked. Unmapped tenants' users are never linked.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbErr};

use crate::db;

/// The outcome for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactLink {
    /// Linked to this contact, through this address.
    Linked {
        /// Contact id.
        contact_id: i64,
        /// The shared address.
        address: String,
    },
    /// Several contacts share the user's addresses.
    Ambiguous(Vec<i64>),
    /// No contact matches.
    None,
}

impl ContactLink {
    /// Stored columns: (`contact_id`, `contact_match`).
    pub fn columns(&self) -> (Option<i64>, Option<String>) {
        match self {
            Self::Linked { contact_id, address } => (Some(*contact_id), Some(format!("linked:{address}"))),
            Self::Ambiguous(_) => (None, Some("ambiguous".into())),
            Self::None => (None, None),
        }
    }
}

/// Normalises an address for comparison.
pub fn normalize(addr: &str) -> String {
    addr.trim().to_lowercase()
}

/// Every address of a user: mail, UPN, `smtp:` proxy addresses and other mails, normalised.
pub fn user_addresses<'a>(
    mail: Option<&'a str>,
    upn: &'a str,
    aliases: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.extend(mail.map(normalize));
    out.insert(normalize(upn));
    out.extend(aliases.into_iter().filter_map(|a| email_of(a)).map(normalize));
    out.retain(|a| a.contains('@'));
    out
}

/// The e-mail address in a stored alias or a Graph `proxyAddresses` entry: `smtp:`/`SMTP:`
/// entries give their address, bare addresses are themselves, other schemes (`x500:`, `sip:`…)
/// are not e-mail addresses.
fn email_of(entry: &str) -> Option<&str> {
    let entry = entry.trim();
    match entry.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("smtp") => Some(rest.trim()),
        Some(_) => None,
        None => Some(entry),
    }
}

/// A user's aliases as stored: the `smtp:` addresses among Graph's `proxyAddresses` and the
/// `otherMails`, normalised, sorted, without duplicates.
pub fn aliases(proxy_addresses: &[String], other_mails: &[String]) -> Vec<String> {
    let proxies = proxy_addresses
        .iter()
        .filter(|p| p.split_once(':').is_some_and(|(s, _)| s.eq_ignore_ascii_case("smtp")))
        .filter_map(|p| email_of(p));
    let mut out: Vec<String> = proxies.chain(other_mails.iter().map(|m| m.trim())).map(normalize).collect();
    out.sort();
    out.dedup();
    out
}

/// An index of a client's contacts by address.
#[derive(Default)]
pub struct ContactIndex {
    by_address: HashMap<String, BTreeSet<i64>>,
}

impl ContactIndex {
    /// Indexes `(contact id, addresses)`.
    pub fn new<'a>(contacts: impl IntoIterator<Item = (i64, &'a [String])>) -> Self {
        let mut by_address: HashMap<String, BTreeSet<i64>> = HashMap::new();
        for (id, emails) in contacts {
            for e in emails {
                by_address.entry(normalize(e)).or_default().insert(id);
            }
        }
        Self { by_address }
    }

    /// Matches a user's addresses.
    pub fn matches(&self, addresses: &BTreeSet<String>) -> ContactLink {
        let mut found: HashMap<i64, &str> = HashMap::new();
        for a in addresses {
            for id in self.by_address.get(a).into_iter().flatten() {
                found.entry(*id).or_insert(a.as_str());
            }
        }
        match found.len() {
            0 => ContactLink::None,
            1 => {
                let (id, addr) = found.into_iter().next().expect("one");
                ContactLink::Linked { contact_id: id, address: addr.to_owned() }
            }
            _ => {
                let mut ids: Vec<i64> = found.into_keys().collect();
                ids.sort();
                ContactLink::Ambiguous(ids)
            }
        }
    }
}

/// The contact index of a tenant's mapped client; `None` when the tenant is unmapped.
pub async fn index_for_tenant(db: &impl ConnectionTrait, tenant_row: i64) -> Result<Option<ContactIndex>, DbErr> {
    let Some(mapping) = db::tenants::mapping_of(db, tenant_row).await? else { return Ok(None) };
    let contacts = db::clients::contacts_of(db, &[mapping.client_id]).await?;
    Ok(Some(ContactIndex::new(contacts.iter().map(|c| (c.id, c.emails.as_slice())))))
}

/// Recomputes the links of a tenant's users (after a mapping change); writes only changed rows.
/// Returns how many users are linked.
pub async fn relink_tenant(db: &impl ConnectionTrait, tenant_row: i64) -> Result<u64, DbErr> {
    let index = index_for_tenant(db, tenant_row).await?;
    let users = db::users::links_of_tenant(db, tenant_row).await?;
    let mut changes = vec![];
    let mut linked = 0;
    for u in users {
        let link = match &index {
            Some(ix) => ix.matches(&user_addresses(u.mail.as_deref(), &u.user_principal_name, u.aliases.as_slice())),
            None => ContactLink::None,
        };
        let (contact, how) = link.columns();
        linked += u64::from(contact.is_some());
        if (contact, how.as_deref()) != (u.contact_id, u.contact_match.as_deref()) {
            changes.push((u.id, contact, how));
        }
    }
    db::users::set_links(db, &changes).await?;
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(contacts: &[(i64, &[&str])]) -> ContactIndex {
        let owned: Vec<(i64, Vec<String>)> =
            contacts.iter().map(|(id, e)| (*id, e.iter().map(|s| s.to_string()).collect())).collect();
        ContactIndex::new(owned.iter().map(|(id, e)| (*id, e.as_slice())))
    }

    #[test]
    fn addresses_cover_mail_upn_proxies_and_other_mails() {
        let aliases = vec![
            "SMTP:Alice@Contoso.com".to_string(),
            "smtp:asmith@contoso.com".into(),
            "x500:/o=Ex".into(),
            " Alice@Gmail.com ".into(),
        ];
        let a = user_addresses(Some("ALICE@contoso.com"), "alice@contoso.onmicrosoft.com", &aliases);
        assert_eq!(
            a.into_iter().collect::<Vec<_>>(),
            ["alice@contoso.com", "alice@contoso.onmicrosoft.com", "alice@gmail.com", "asmith@contoso.com"]
        );
    }

    #[test]
    fn stored_aliases_are_smtp_proxies_and_other_mails() {
        let proxies = ["SMTP:Alice@Contoso.com".to_string(), "smtp:asmith@contoso.com".into(), "x500:/o=Ex".into()];
        let others = [" Alice@Gmail.com ".to_string(), "alice@contoso.com".into()];
        assert_eq!(aliases(&proxies, &others), ["alice@contoso.com", "alice@gmail.com", "asmith@contoso.com"]);
        assert!(aliases(&[], &[]).is_empty());
    }

    #[test]
    fn one_match_links_several_are_ambiguous_none_is_none() {
        let index = idx(&[
            (1, &["alice@contoso.com"]),
            (2, &["bob@contoso.com", "shared@contoso.com"]),
            (3, &["shared@contoso.com"]),
        ]);
        let user = |addrs: &[&str]| addrs.iter().map(|a| a.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            index.matches(&user(&["alice@contoso.com"])),
            ContactLink::Linked { contact_id: 1, address: "alice@contoso.com".into() }
        );
        assert_eq!(index.matches(&user(&["shared@contoso.com"])), ContactLink::Ambiguous(vec![2, 3]));
        assert_eq!(index.matches(&user(&["alice@contoso.com", "bob@contoso.com"])), ContactLink::Ambiguous(vec![1, 2]));
        assert_eq!(index.matches(&user(&["nobody@contoso.com"])), ContactLink::None);
        // The same contact through two addresses is still one contact.
        let index = idx(&[(5, &["a@x.com", "b@x.com"])]);
        assert!(matches!(index.matches(&user(&["a@x.com", "b@x.com"])), ContactLink::Linked { contact_id: 5, .. }));
        assert_eq!(ContactLink::Ambiguous(vec![1, 2]).columns(), (None, Some("ambiguous".into())));
    }
}
