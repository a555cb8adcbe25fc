//! Suggested matches for a tenant among the MSP's clients: pure scoring, unit-tested here.
//!
//! Signals, strongest first: a verified domain of the tenant equal to a client domain (95); a
//! verified domain equal to the e-mail domain of the client's contacts (85); names equal once
//! normalised (case, punctuation, legal suffixes such as Inc/LLC/Ltd/GmbH) (80), the same words
//! in another order (75), or similar (up to 70). Both a domain and a name signal add 5. A client
//! already mapped to another tenant ranks 20 lower. Below 25 nothing is suggested.

use std::collections::{HashMap, HashSet};

use crate::db::mappings::CandidateRows;

/// Client id → the tenant rows it is mapped to.
pub type Mapped = HashMap<i64, HashSet<i64>>;

/// The account's clients as candidates (with their contacts' e-mail domains, each counted once
/// per contact), and which tenants each is mapped to.
pub fn candidates(rows: CandidateRows) -> (Vec<Candidate>, Mapped) {
    let mut domains: HashMap<i64, HashMap<String, usize>> = HashMap::new();
    for (client_id, emails) in rows.contact_emails {
        let mut seen = HashSet::new();
        for e in emails.0 {
            if let Some((_, d)) = e.rsplit_once('@')
                && seen.insert(d.to_owned())
            {
                *domains.entry(client_id).or_default().entry(d.to_owned()).or_default() += 1;
            }
        }
    }
    let mut mapped: Mapped = HashMap::new();
    for (client_id, tenant) in rows.mappings {
        mapped.entry(client_id).or_default().insert(tenant);
    }
    let clients = rows
        .clients
        .into_iter()
        .map(|c| Candidate::new(c.id, c.name, c.domains.0, domains.remove(&c.id).unwrap_or_default()))
        .collect();
    (clients, mapped)
}

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
    name_key: NameKey,
}

/// A name prepared for comparison once: its words, the same words sorted, and its trigrams as
/// a sorted set of packed integers (scoring compares thousands of these per tenant, so it must
/// neither allocate nor compare strings; a profile of 10,000 clients showed string compares,
/// B-tree walks and allocation taking most of the scoring time).
#[derive(Clone, Debug, Default)]
struct NameKey {
    tokens: Vec<String>,
    sorted: Vec<String>,
    grams: Vec<u64>,
}

impl NameKey {
    fn new(name: &str) -> Self {
        let tokens = name_tokens(name);
        let mut sorted = tokens.clone();
        sorted.sort();
        let grams = trigrams(&tokens.join(" "));
        Self { tokens, sorted, grams }
    }
}

impl Candidate {
    /// A candidate, with its name normalised for scoring.
    pub fn new(id: i64, name: String, domains: Vec<String>, contact_domains: HashMap<String, usize>) -> Self {
        let name_key = NameKey::new(&name);
        Self { id, name, domains, contact_domains, name_key }
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

/// The set of character trigrams of `"  {s} "`, each packed exactly into a `u64` (a `char` is
/// at most 21 bits), sorted and without repeats.
fn trigrams(s: &str) -> Vec<u64> {
    let padded: Vec<char> = format!("  {s} ").chars().collect();
    let mut grams: Vec<u64> =
        padded.windows(3).map(|w| (u64::from(w[0]) << 42) | (u64::from(w[1]) << 21) | u64::from(w[2])).collect();
    grams.sort_unstable();
    grams.dedup();
    grams
}

/// Similarity of two trigram sets in 0..=1 (Dice coefficient), by merging the sorted sets.
fn dice(ta: &[u64], tb: &[u64]) -> f64 {
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < ta.len() && j < tb.len() {
        match ta[i].cmp(&tb[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (ta.len() + tb.len()) as f64
}

fn name_signal(tenant: &NameKey, client: &NameKey) -> Option<(i32, String)> {
    if tenant.tokens.is_empty() || client.tokens.is_empty() {
        return None;
    }
    if tenant.tokens == client.tokens {
        return Some((80, "Names match (ignoring case, punctuation and legal suffixes)".into()));
    }
    if tenant.sorted == client.sorted {
        return Some((75, "Names have the same words in a different order".into()));
    }
    let sim = dice(&tenant.grams, &client.grams);
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
    let tenant_key = NameKey::new(tenant_name);
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
            let name = name_signal(&tenant_key, &c.name_key);
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
    use std::collections::BTreeSet;

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
    fn trigram_sets_are_exact() {
        // The packed sets behave as the sets of three-character strings they stand for.
        let strings = |s: &str| -> BTreeSet<String> {
            let padded: Vec<char> = format!("  {s} ").chars().collect();
            padded.windows(3).map(|w| w.iter().collect()).collect()
        };
        let names = ["northwind traders", "northwind trading", "ééé çà", "a", "zürich 日本 co", "zurich co"];
        for a in names {
            assert_eq!(trigrams(a).len(), strings(a).len(), "{a}");
            for b in names {
                let common = strings(a).intersection(&strings(b)).count();
                let expected = 2.0 * common as f64 / (strings(a).len() + strings(b).len()) as f64;
                assert_eq!(dice(&trigrams(a), &trigrams(b)), expected, "{a} / {b}");
            }
        }
        assert_eq!(dice(&trigrams("contoso"), &trigrams("contoso")), 1.0);
        assert_eq!(dice(&trigrams("abc"), &trigrams("xyz")), 0.0);
        assert_eq!(dice(&[], &trigrams("abc")), 0.0);
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
