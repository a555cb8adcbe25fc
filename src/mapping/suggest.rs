//! Suggested matches for a tenant among the MSP's clients: pure scoring, unit-tested here.
//!
//! Signals, strongest first: a verified domain of the tenant equal to a client domain (95); a
//! verified domain equal to the e-mail domain of the client's contacts (85); names equal once
//! normalised (case, punctuation, legal suffixes such as Inc/LLC/Ltd/GmbH) (80), the same words
//! in another order (75), or similar (up to 70). Both a domain and a name signal add 5. A client
//! already mapped to another tenant ranks 20 lower. Below 25 nothing is suggested.

use std::collections::{BTreeSet, HashMap};

/// What scoring needs to know about a client (its name is tokenized once, here).
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Client id.
    pub id: i64,
    /// Client name.
    pub name: String,
    /// Client domains (lower case).
    pub domains: Vec<String>,
    /// E-mail domains of the client's contacts, with how many contacts use each.
    pub contact_domains: HashMap<String, usize>,
    tokens: Vec<String>,
    grams: BTreeSet<String>,
}

impl Candidate {
    /// A candidate, with its name normalised for scoring.
    pub fn new(id: i64, name: String, domains: Vec<String>, contact_domains: HashMap<String, usize>) -> Self {
        let tokens = name_tokens(&name);
        let grams = trigrams(&tokens.join(" "));
        Self { id, name, domains, contact_domains, tokens, grams }
    }
}

/// A scored suggestion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// Client id.
    pub client_id: i64,
    /// 0..=100.
    pub confidence: i32,
    /// Why, for a person.
    pub reasons: Vec<String>,
}

const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "ag",
    "sa",
    "sarl",
    "bv",
    "nv",
    "pty",
    "pte",
    "srl",
    "spa",
    "ab",
    "as",
    "oy",
    "kg",
    "lp",
    "llp",
    "pc",
];

/// Lower-case words of a name without punctuation and legal suffixes (`&` reads as `and`).
pub fn name_tokens(name: &str) -> Vec<String> {
    let cleaned: String = name
        .to_lowercase()
        .replace('&', " and ")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c
            } else if c == '\'' || c == '’' {
                '\0'
            } else {
                ' '
            }
        })
        .filter(|c| *c != '\0')
        .collect();
    let words: Vec<String> = cleaned.split_whitespace().map(str::to_owned).collect();
    let kept: Vec<String> = words.iter().filter(|w| !LEGAL_SUFFIXES.contains(&w.as_str())).cloned().collect();
    if kept.is_empty() { words } else { kept }
}

fn trigrams(s: &str) -> BTreeSet<String> {
    let padded: Vec<char> = format!("  {s} ").chars().collect();
    padded.windows(3).map(|w| w.iter().collect()).collect()
}

/// Similarity of two trigram sets in 0..=1 (Dice coefficient).
fn dice(ta: &BTreeSet<String>, tb: &BTreeSet<String>) -> f64 {
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    2.0 * ta.intersection(tb).count() as f64 / (ta.len() + tb.len()) as f64
}

fn name_signal(
    tenant: &[String],
    tenant_grams: &BTreeSet<String>,
    client: &[String],
    client_grams: &BTreeSet<String>,
) -> Option<(i32, String)> {
    if tenant.is_empty() || client.is_empty() {
        return None;
    }
    if tenant == client {
        return Some((80, "Names match (ignoring case, punctuation and legal suffixes)".into()));
    }
    let (mut a, mut b) = (tenant.to_vec(), client.to_vec());
    a.sort();
    b.sort();
    if a == b {
        return Some((75, "Names have the same words in a different order".into()));
    }
    let sim = dice(tenant_grams, client_grams);
    (sim >= 0.5)
        .then(|| ((sim * 70.0).round() as i32, format!("Names are similar ({}%)", (sim * 100.0).round() as i32)))
}

/// Scores every candidate for a tenant and returns the best `limit`, highest first (ties by
/// client name, then id, so the order is stable). `mapped_elsewhere(client)` says whether a
/// client is already mapped to another tenant.
pub fn suggest(
    tenant_name: &str,
    tenant_domains: &[String],
    candidates: &[Candidate],
    mapped_elsewhere: impl Fn(i64) -> bool,
    limit: usize,
) -> Vec<Suggestion> {
    let domains: Vec<String> =
        tenant_domains.iter().map(|d| d.to_lowercase()).filter(|d| !d.ends_with(".onmicrosoft.com")).collect();
    let tenant_tokens = name_tokens(tenant_name);
    let tenant_grams = trigrams(&tenant_tokens.join(" "));
    let mut scored: Vec<(Suggestion, &str)> = candidates
        .iter()
        .filter_map(|c| {
            let mut reasons = vec![];
            let mut domain_score = 0;
            if let Some(d) = domains.iter().find(|d| c.domains.contains(d)) {
                domain_score = 95;
                reasons.push(format!("Verified domain {d} is one of the client's domains"));
            } else if let Some((d, n)) = domains.iter().find_map(|d| c.contact_domains.get(d).map(|n| (d, *n))) {
                domain_score = 85;
                reasons.push(format!(
                    "Verified domain {d} is the e-mail domain of {n} of the client's contact{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            let name = name_signal(&tenant_tokens, &tenant_grams, &c.tokens, &c.grams);
            let name_score = name.as_ref().map_or(0, |n| n.0);
            if let Some((_, why)) = name {
                reasons.push(why);
            }
            let mut confidence = domain_score.max(name_score);
            if domain_score > 0 && name_score > 0 {
                confidence += 5;
            }
            if confidence > 0 && mapped_elsewhere(c.id) {
                confidence -= 20;
                reasons.push("Already mapped to another tenant".into());
            }
            let confidence = confidence.clamp(0, 100);
            (confidence >= 25).then_some((Suggestion { client_id: c.id, confidence, reasons }, c.name.as_str()))
        })
        .collect();
    scored.sort_by(|(a, an), (b, bn)| {
        b.confidence.cmp(&a.confidence).then_with(|| an.cmp(bn)).then(a.client_id.cmp(&b.client_id))
    });
    scored.into_iter().take(limit).map(|(s, _)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: i64, name: &str, domains: &[&str]) -> Candidate {
        Candidate::new(id, name.into(), domains.iter().map(|d| d.to_string()).collect(), HashMap::new())
    }

    fn free(_: i64) -> bool {
        false
    }

    fn doms(d: &[&str]) -> Vec<String> {
        d.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_domain_is_the_strongest_signal() {
        let clients = [client(1, "Totally Different Name", &["contoso.com"]), client(2, "Contoso", &[])];
        let s = suggest("Contoso Ltd", &doms(&["contoso.com", "contoso.onmicrosoft.com"]), &clients, free, 3);
        assert_eq!(s[0].client_id, 1);
        assert_eq!(s[0].confidence, 95);
        assert!(s[0].reasons[0].contains("contoso.com"));
        assert_eq!((s[1].client_id, s[1].confidence), (2, 80));
    }

    #[test]
    fn contact_email_domain_counts() {
        let mut c = client(1, "Acme", &[]);
        c.contact_domains.insert("fabrikam.com".into(), 3);
        let s = suggest("Fabrikam", &doms(&["fabrikam.com"]), &[c], free, 3);
        assert_eq!(s[0].confidence, 85);
        assert!(s[0].reasons[0].contains("3 of the client's contacts"));
    }

    #[test]
    fn both_signals_add_up_to_at_most_100() {
        let mut c = client(1, "Fabrikam, Inc.", &["fabrikam.com"]);
        c.contact_domains.insert("fabrikam.com".into(), 1);
        let s = suggest("Fabrikam LLC", &doms(&["fabrikam.com"]), &[c], free, 3);
        assert_eq!(s[0].confidence, 100);
        assert_eq!(s[0].reasons.len(), 2);
    }

    #[test]
    fn name_variants() {
        let n = |a: &str, b: &str| suggest(a, &[], &[client(1, b, &[])], free, 1).first().map(|s| s.confidence);
        assert_eq!(n("Northwind Traders Ltd", "northwind traders, inc."), Some(80));
        assert_eq!(n("City Power & Light", "City Power and Light LLC"), Some(80));
        assert_eq!(n("Margie's Travel", "Margies Travel GmbH"), Some(80));
        assert_eq!(n("Traders Northwind", "Northwind Traders"), Some(75));
        let similar = n("Northwind Traders", "Northwind Trading").unwrap();
        assert!((35..75).contains(&similar), "{similar}");
        assert_eq!(n("Contoso", "Fabrikam"), None);
        // A name made only of a suffix keeps its words rather than vanishing.
        assert_eq!(name_tokens("Inc."), vec!["inc"]);
    }

    #[test]
    fn mapped_elsewhere_ranks_lower_and_ties_are_stable() {
        let taken = client(1, "Contoso", &[]);
        let open = client(2, "Contoso", &[]);
        let s = suggest("Contoso", &[], &[taken, open], |id| id == 1, 3);
        assert_eq!(s[0].client_id, 2);
        assert_eq!(s[1].confidence, 60);
        assert!(s[1].reasons.iter().any(|r| r.contains("Already mapped")));
        let tie = suggest("Contoso", &[], &[client(9, "Contoso", &[]), client(3, "Contoso", &[])], free, 3);
        assert_eq!(tie.iter().map(|s| s.client_id).collect::<Vec<_>>(), [3, 9]);
    }

    #[test]
    fn no_clients_no_suggestions_and_limit() {
        assert!(suggest("Contoso", &doms(&["contoso.com"]), &[], free, 3).is_empty());
        let many: Vec<Candidate> = (0..10).map(|i| client(i, "Contoso", &[])).collect();
        assert_eq!(suggest("Contoso", &[], &many, free, 3).len(), 3);
        // onmicrosoft.com domains are not a signal (every tenant has one).
        let s =
            suggest("X", &doms(&["contoso.onmicrosoft.com"]), &[client(1, "Y", &["contoso.onmicrosoft.com"])], free, 3);
        assert!(s.is_empty());
    }
}
