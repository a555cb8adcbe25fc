//! The canonical serialisation behind every digest. Pure; the same bytes are what the CSV export
//! contains, so anyone holding an exported file can recompute both digests without us:
//!
//! - **Rows** (`rows_sha256`): the CSV header line, then one line per user sorted by object id
//!   (byte order), each ended by `\n`. Fields are separated by `,`; a field holding `,`, `"`,
//!   `\r` or `\n` is quoted with `"` and its quotes doubled (RFC 4180). Booleans are `true` /
//!   `false`, an unknown `is_admin` is empty, enums are the GraphQL names (`ENABLED`,
//!   `NOT_REGISTERED`…), and lists (methods, enforcement sources) are sorted and joined by `;`.
//! - **Header** (`digest`): the lines `key: value\n` of [`Header::text`] in their fixed order, which
//!   include `rows_sha256` and `previous_digest` (`none` for the first snapshot of a chain).
//!   Control characters in names become spaces, so a value is always one line.
//!
//! `digest = SHA-256(header text)`; each snapshot's `previous_digest` is the digest of the one
//! before it in the tenant's chain, so editing or deleting a row or a snapshot breaks the chain.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use entity::{
    mfa_evidence_snapshot,
    states::{EnforcementSource, MfaEnforcementState, MfaStatus, MfaVerdict},
    types::{EnforcementSources, EvidenceFigures, StringList},
};
use sha2::{Digest, Sha256};

/// The format named in every header; a change to the serialisation gets a new version.
pub const FORMAT: &str = "m365-integration/mfa-evidence/1";

/// The exported columns, in order.
pub const COLUMNS: [&str; 12] = [
    "object_id",
    "user_principal_name",
    "display_name",
    "user_type",
    "account_enabled",
    "is_admin",
    "is_licensed",
    "mfa_status",
    "mfa_methods",
    "mfa_enforcement",
    "mfa_enforcement_sources",
    "mfa_verdict",
];

/// Times in headers and history: microseconds, which both databases store exactly.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A time as it appears in a header.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The facts of one user that evidence covers (the digest's columns), read straight from
/// `mfa_history` (only these columns) or built from what the sync wrote.
#[derive(Clone, Debug, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct EvidenceRow {
    pub object_id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub user_type: Option<String>,
    pub account_enabled: bool,
    pub is_admin: Option<bool>,
    pub is_licensed: bool,
    pub mfa_status: MfaStatus,
    pub mfa_methods: StringList,
    pub mfa_enforcement: MfaEnforcementState,
    pub mfa_enforcement_sources: EnforcementSources,
    pub mfa_verdict: MfaVerdict,
}

/// A registration status's GraphQL name.
pub fn status_name(s: MfaStatus) -> &'static str {
    match s {
        MfaStatus::Enabled => "ENABLED",
        MfaStatus::Disabled => "DISABLED",
        MfaStatus::Unavailable => "UNAVAILABLE",
    }
}

/// An enforcement state's GraphQL name.
pub fn enforcement_name(s: MfaEnforcementState) -> &'static str {
    match s {
        MfaEnforcementState::Enforced => "ENFORCED",
        MfaEnforcementState::Conditional => "CONDITIONAL",
        MfaEnforcementState::NotEnforced => "NOT_ENFORCED",
        MfaEnforcementState::Unknown => "UNKNOWN",
    }
}

/// A verdict's GraphQL name.
pub fn verdict_name(v: MfaVerdict) -> &'static str {
    match v {
        MfaVerdict::Protected => "PROTECTED",
        MfaVerdict::NotEnforced => "NOT_ENFORCED",
        MfaVerdict::NotRegistered => "NOT_REGISTERED",
        MfaVerdict::Unprotected => "UNPROTECTED",
        MfaVerdict::Unknown => "UNKNOWN",
    }
}

/// An enforcement source's GraphQL name.
pub fn source_name(s: EnforcementSource) -> &'static str {
    match s {
        EnforcementSource::SecurityDefaults => "SECURITY_DEFAULTS",
        EnforcementSource::ConditionalAccess => "CONDITIONAL_ACCESS",
        EnforcementSource::PerUser => "PER_USER",
    }
}

/// `true` / `false`.
fn bool_text(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

impl EvidenceRow {
    /// Methods, sorted.
    pub fn methods(&self) -> Vec<&str> {
        let mut m: Vec<&str> = self.mfa_methods.0.iter().map(String::as_str).collect();
        m.sort_unstable();
        m
    }

    /// Enforcement sources' names, sorted.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut s: Vec<&str> = self.mfa_enforcement_sources.0.iter().map(|s| source_name(*s)).collect();
        s.sort_unstable();
        s
    }

    /// Appends the row's CSV line, `\n` included, without intermediate strings (an export writes
    /// 100,000 of them).
    pub fn write_csv(&self, out: &mut String) {
        push_field(out, &self.object_id);
        for f in [
            self.user_principal_name.as_str(),
            self.display_name.as_deref().unwrap_or(""),
            self.user_type.as_deref().unwrap_or(""),
        ] {
            out.push(',');
            push_field(out, f);
        }
        for f in [
            bool_text(self.account_enabled),
            self.is_admin.map(bool_text).unwrap_or(""),
            bool_text(self.is_licensed),
            status_name(self.mfa_status),
        ] {
            out.push(',');
            out.push_str(f);
        }
        out.push(',');
        push_list(out, &self.methods());
        out.push(',');
        out.push_str(enforcement_name(self.mfa_enforcement));
        out.push(',');
        push_list(out, &self.sources());
        out.push(',');
        out.push_str(verdict_name(self.mfa_verdict));
        out.push('\n');
    }

    /// The row's CSV line, `\n` included.
    pub fn csv_line(&self) -> String {
        let mut s = String::new();
        self.write_csv(&mut s);
        s
    }
}

/// A list field: items joined by `;`, quoted as one field when needed.
fn push_list(out: &mut String, items: &[&str]) {
    if items.iter().any(|i| needs_quotes(i)) {
        push_field(out, &items.join(";"));
    } else {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(item);
        }
    }
}

fn needs_quotes(f: &str) -> bool {
    f.contains([',', '"', '\r', '\n'])
}

/// One field, quoted when it holds `,`, `"`, CR or LF (RFC 4180, quotes doubled).
fn push_field(out: &mut String, f: &str) {
    if needs_quotes(f) {
        out.push('"');
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(f);
    }
}

/// The CSV header line.
pub fn csv_header() -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    s
}

/// Hashes rows (given in object-id order) and counts the figures as they stream by.
pub struct RowsDigest {
    sha: Sha256,
    /// Rows seen.
    pub count: i64,
    /// Figures of the rows seen.
    pub figures: EvidenceFigures,
}

impl Default for RowsDigest {
    fn default() -> Self {
        let mut sha = Sha256::new();
        sha.update(csv_header().as_bytes());
        Self { sha, count: 0, figures: EvidenceFigures::default() }
    }
}

impl RowsDigest {
    /// Adds a row and appends its CSV line to `out` (so an export writes exactly what was
    /// hashed).
    pub fn push(&mut self, row: &EvidenceRow, out: &mut String) {
        let start = out.len();
        row.write_csv(out);
        self.sha.update(&out.as_bytes()[start..]);
        self.count += 1;
        count(&mut self.figures, row);
    }

    /// The hex SHA-256 of everything pushed.
    pub fn finish(self) -> String {
        hex(&self.sha.finalize())
    }
}

/// Adds a row to figures, with `mfaCoverage`'s definitions: only sign-in enabled accounts count.
fn count(f: &mut EvidenceFigures, r: &EvidenceRow) {
    if !r.account_enabled {
        return;
    }
    let enabled = r.mfa_status == MfaStatus::Enabled;
    f.users += 1;
    match r.mfa_status {
        MfaStatus::Enabled => f.enabled += 1,
        MfaStatus::Disabled => f.disabled += 1,
        MfaStatus::Unavailable => f.unavailable += 1,
    }
    f.admins_without_mfa += i64::from(r.is_admin == Some(true) && !enabled);
    f.licensed_members_without_mfa += i64::from(r.is_licensed && r.user_type.as_deref() == Some("Member") && !enabled);
    match r.mfa_verdict {
        MfaVerdict::Protected => f.protected += 1,
        MfaVerdict::NotEnforced => f.not_enforced += 1,
        MfaVerdict::NotRegistered => f.not_registered += 1,
        MfaVerdict::Unprotected => f.unprotected += 1,
        MfaVerdict::Unknown => f.unknown += 1,
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a snapshot's digest covers.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub client_name: Option<&'a str>,
    pub run_id: i64,
    pub sequence: i64,
    pub taken_at: DateTime<Utc>,
    pub user_count: i64,
    pub figures: &'a EvidenceFigures,
    pub rows_sha256: &'a str,
    pub previous_digest: Option<&'a str>,
}

/// A value on one line: control characters become spaces.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl<'a> Header<'a> {
    /// The header of a stored snapshot.
    pub fn of(s: &'a mfa_evidence_snapshot::Model) -> Self {
        Self {
            tenant_id: s.microsoft_tenant_id.as_str(),
            tenant_name: &s.tenant_name,
            client_name: s.client_name.as_deref(),
            run_id: s.run_id,
            sequence: s.sequence,
            taken_at: s.taken_at,
            user_count: s.user_count,
            figures: &s.figures,
            rows_sha256: &s.rows_sha256,
            previous_digest: s.previous_digest.as_deref(),
        }
    }

    /// `(key, value)` in their fixed order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let f = self.figures;
        vec![
            ("format", FORMAT.to_owned()),
            ("tenant_id", one_line(self.tenant_id)),
            ("tenant_name", one_line(self.tenant_name)),
            ("client", self.client_name.map(one_line).unwrap_or_default()),
            ("run_id", self.run_id.to_string()),
            ("sequence", self.sequence.to_string()),
            ("taken_at", time_text(self.taken_at)),
            ("user_count", self.user_count.to_string()),
            (
                "figures",
                format!(
                    "users={} enabled={} disabled={} unavailable={} admins_without_mfa={} licensed_members_without_mfa={} protected={} not_enforced={} not_registered={} unprotected={} unknown={}",
                    f.users,
                    f.enabled,
                    f.disabled,
                    f.unavailable,
                    f.admins_without_mfa,
                    f.licensed_members_without_mfa,
                    f.protected,
                    f.not_enforced,
                    f.not_registered,
                    f.unprotected,
                    f.unknown
                ),
            ),
            ("rows_sha256", self.rows_sha256.to_owned()),
            ("previous_digest", self.previous_digest.unwrap_or("none").to_owned()),
        ]
    }

    /// The text the digest is taken over.
    pub fn text(&self) -> String {
        self.entries().into_iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    }

    /// The snapshot's digest (hex SHA-256 of [`Self::text`]).
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.text().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: MfaStatus, verdict: MfaVerdict) -> EvidenceRow {
        EvidenceRow {
            object_id: id.into(),
            user_principal_name: format!("{id}@contoso.com"),
            display_name: Some("Adele, \"Vance\"".into()),
            user_type: Some("Member".into()),
            account_enabled: true,
            is_admin: Some(true),
            is_licensed: true,
            mfa_status: status,
            mfa_methods: StringList(vec!["mobilePhone".into(), "microsoftAuthenticatorPush".into()]),
            mfa_enforcement: MfaEnforcementState::NotEnforced,
            mfa_enforcement_sources: EnforcementSources(vec![
                EnforcementSource::PerUser,
                EnforcementSource::ConditionalAccess,
            ]),
            mfa_verdict: verdict,
        }
    }

    #[test]
    fn a_row_is_one_quoted_csv_line_with_sorted_lists_and_graphql_names() {
        assert_eq!(
            row("a", MfaStatus::Enabled, MfaVerdict::NotEnforced).csv_line(),
            "a,a@contoso.com,\"Adele, \"\"Vance\"\"\",Member,true,true,true,ENABLED,microsoftAuthenticatorPush;mobilePhone,NOT_ENFORCED,CONDITIONAL_ACCESS;PER_USER,NOT_ENFORCED\n"
        );
        let mut r = row("b", MfaStatus::Disabled, MfaVerdict::Unprotected);
        r.is_admin = None;
        r.display_name = Some("two\nlines".into());
        assert!(r.csv_line().contains(",\"two\nlines\",Member,true,,true,DISABLED,"));
        r.mfa_methods = StringList(vec!["x,y".into(), "a".into()]);
        assert!(r.csv_line().contains(",DISABLED,\"a;x,y\",NOT_ENFORCED,"), "{}", r.csv_line());
    }

    #[test]
    fn enum_names_are_the_stored_text_in_graphql_case() {
        use sea_orm::{ActiveEnum, Iterable};
        let upper = |v: String| v.to_ascii_uppercase();
        assert!(MfaStatus::iter().all(|s| status_name(s) == upper(s.to_value())));
        assert!(MfaEnforcementState::iter().all(|s| enforcement_name(s) == upper(s.to_value())));
        assert!(MfaVerdict::iter().all(|v| verdict_name(v) == upper(v.to_value())));
        for s in EnforcementSource::iter() {
            assert_eq!(serde_json::to_value(s).unwrap(), source_name(s));
        }
    }

    #[test]
    fn rows_digest_is_sha256_of_the_csv_and_counts_like_coverage() {
        let rows = [
            row("a", MfaStatus::Enabled, MfaVerdict::Protected),
            row("b", MfaStatus::Disabled, MfaVerdict::Unprotected),
        ];
        let mut d = RowsDigest::default();
        let mut text = csv_header();
        let mut written = String::new();
        for r in &rows {
            text.push_str(&r.csv_line());
            d.push(r, &mut written);
        }
        let mut blocked = row("c", MfaStatus::Disabled, MfaVerdict::Unprotected);
        blocked.account_enabled = false;
        text.push_str(&blocked.csv_line());
        d.push(&blocked, &mut written);
        assert_eq!(format!("{}{written}", csv_header()), text, "push appends exactly the lines hashed");
        assert_eq!(d.count, 3);
        let f = d.figures;
        assert_eq!(
            (f.users, f.enabled, f.disabled, f.admins_without_mfa, f.licensed_members_without_mfa),
            (2, 1, 1, 1, 1)
        );
        assert_eq!((f.protected, f.unprotected), (1, 1));
        assert_eq!(d.finish(), hex(&Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn the_header_digest_covers_every_field_and_the_link() {
        let figures = EvidenceFigures { users: 3, ..Default::default() };
        let h = Header {
            tenant_id: "t",
            tenant_name: "Contoso\nLtd",
            client_name: None,
            run_id: 7,
            sequence: 2,
            taken_at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(),
            user_count: 4,
            figures: &figures,
            rows_sha256: "ab",
            previous_digest: None,
        };
        let text = h.text();
        assert!(text.starts_with(
            "format: m365-integration/mfa-evidence/1\ntenant_id: t\ntenant_name: Contoso Ltd\nclient: \n"
        ));
        assert!(text.contains("taken_at: 2023-11-14T22:13:20.123456Z\n"));
        assert!(text.ends_with("rows_sha256: ab\nprevious_digest: none\n"));
        let base = h.digest();
        let changed = [
            Header { previous_digest: Some("x"), ..h.clone() },
            Header { user_count: 5, ..h.clone() },
            Header { rows_sha256: "ac", ..h.clone() },
            Header { sequence: 3, ..h.clone() },
            Header { figures: &EvidenceFigures { users: 2, ..Default::default() }, ..h.clone() },
        ];
        for c in changed {
            assert_ne!(c.digest(), base);
        }
    }
}
