//! `GET /evidence/mfa?snapshot=ID&format=csv|json`: the per-user rows of an evidence snapshot,
//! streamed (bounded memory whatever the tenant's size) with the snapshot's header, so anyone
//! holding the file can recompute both digests (see [`crate::evidence::canonical`] and the
//! README). Needs a Bearer token of the snapshot's account; another account's snapshot is 404,
//! exactly like one that does not exist.

use axum::{
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::TryStreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::HttpState;
use crate::{
    auth::Auth,
    db,
    error::AppError,
    evidence::canonical::{
        COLUMNS, EvidenceRow, Header, RowsDigest, csv_header, enforcement_name, status_name, verdict_name,
    },
};
use entity::mfa_evidence_snapshot;

/// Bytes gathered before a chunk goes out.
const CHUNK_BYTES: usize = 64 * 1024;

/// The export's formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"errors": [{"message": message.into(), "extensions": {"code": code}}]});
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

fn app_error(e: AppError) -> Response {
    let status = match &e {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) | AppError::FeatureDisabled => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
        AppError::EvidenceRowsPurged { .. } => StatusCode::GONE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match &e {
        AppError::Internal(detail) => {
            let id = uuid::Uuid::new_v4();
            tracing::error!(error_id = %id, error = %detail.chain(), "evidence export failed");
            format!("Internal server error (error id {id})")
        }
        other => other.to_string(),
    };
    let mut r = error(status, e.code(), message);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// How long one export may stream before it is cut (a reader that stalls holds a database
/// connection).
const EXPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The handler.
pub async fn export(State(s): State<HttpState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let (snapshot, format) = match prepare(&s, &headers, query.as_deref()).await {
        Ok(p) => p,
        Err(e) => return app_error(e),
    };
    // Each stream holds a pooled connection while its client reads: bounded per account and in
    // all, so one account's (or a slow reader's) exports cannot starve the others.
    let c = &s.app.config;
    let slots =
        s.exports.claim_key((snapshot.account_id, String::new()), c.evidence_exports_per_account.max(1)).and_then(
            |account| s.exports.claim_key((-1, String::new()), c.evidence_max_exports.max(1)).map(|all| (account, all)),
        );
    let Some(slots) = slots else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::error::codes::TOO_MANY_EXPORTS,
            "Too many evidence exports are streaming; try again when one has finished.",
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    stream(s, snapshot, format, slots)
}

async fn prepare(
    s: &HttpState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(mfa_evidence_snapshot::Model, Format), AppError> {
    let auth = Auth::from_header(&s.app.auth, headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let caller = auth.caller()?;
    let account = db::accounts::get(&s.app.db, caller.account_id)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the token's account does not exist".into()))?;
    if !account.m365_enabled {
        return Err(AppError::FeatureDisabled);
    }
    let (mut snapshot, mut format) = (None, Format::Csv);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "snapshot" => {
                snapshot =
                    Some(v.parse::<i64>().map_err(|_| AppError::bad_input("snapshot", "snapshot is not a valid id"))?)
            }
            "format" => {
                format = match v.as_ref() {
                    "csv" => Format::Csv,
                    "json" => Format::Json,
                    _ => return Err(AppError::bad_input("format", "format must be csv or json")),
                }
            }
            _ => {}
        }
    }
    let id =
        snapshot.ok_or_else(|| AppError::bad_input("snapshot", "snapshot (an MfaEvidenceSnapshot id) is required"))?;
    let snap = db::evidence::snapshot(&s.app.db, account.id, id).await?.ok_or(AppError::NotFound("snapshot"))?;
    if snap.rows_purged_at.is_some() {
        return Err(AppError::EvidenceRowsPurged {
            snapshot: snap.id,
            reason: snap.rows_purge_reason.clone().unwrap_or_default(),
        });
    }
    Ok((snap, format))
}

fn stream(
    s: HttpState,
    snap: mfa_evidence_snapshot::Model,
    format: Format,
    slots: (super::ws::SocketSlot, super::ws::SocketSlot),
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            match format {
                Format::Csv => "text/csv; charset=utf-8",
                Format::Json => "application/json; charset=utf-8",
            },
        )
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"mfa-evidence-{}.{}\"",
                snap.id,
                if format == Format::Csv { "csv" } else { "json" }
            ),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-evidence-digest", snap.digest.as_str())
        .header("x-evidence-rows-sha256", snap.rows_sha256.as_str())
        .header("x-evidence-previous-digest", snap.previous_digest.as_deref().unwrap_or("none"))
        // The slots live as long as the body: until the client has it all, or goes away.
        .body(Body::from_stream(futures_util::stream::unfold((rx, slots), |(mut rx, slots)| async move {
            rx.recv().await.map(|item| (item, (rx, slots)))
        })))
        .unwrap_or_else(|_| {
            error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "building the response failed")
        });
    response.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    tokio::spawn(async move {
        let written = tokio::time::timeout(EXPORT_DEADLINE, write_rows(&s, &snap, format, &tx))
            .await
            .unwrap_or(Err(WriteError::Deadline));
        if let Err(e) = written {
            tracing::error!(snapshot = snap.id, error = %e, "evidence export stopped");
            let _ = tx.send(Err(std::io::Error::other("the export stopped; see the service log"))).await;
        }
    });
    response
}

/// Why the writer stopped early.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("the client went away")]
    Gone,
    #[error("the export ran past its deadline")]
    Deadline,
}

async fn write_rows(
    s: &HttpState,
    snap: &mfa_evidence_snapshot::Model,
    format: Format,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), WriteError> {
    let header = Header::of(snap);
    let mut buf = String::with_capacity(CHUNK_BYTES + 4096);
    match format {
        Format::Csv => {
            for (k, v) in header.entries() {
                buf.push_str(&format!("# {k}: {v}\n"));
            }
            buf.push_str(&format!("# digest: {}\n", snap.digest));
            buf.push_str(&csv_header());
        }
        Format::Json => {
            let mut meta = Map::new();
            meta.insert("snapshot".into(), json!(snap.id));
            for (k, v) in header.entries() {
                meta.insert(k.into(), Value::String(v));
            }
            meta.insert("digest".into(), Value::String(snap.digest.clone()));
            buf.push_str(&format!("{{\"evidence\":{},\"columns\":{},\"users\":[", Value::Object(meta), json!(COLUMNS)));
        }
    }
    let db = &s.app.db;
    let mut rows = db::evidence::rows_at::<EvidenceRow>(db.get_database_backend(), snap.tenant_id, snap.taken_at)
        .stream(db)
        .await?;
    let mut first = true;
    // Hashing as we go costs little and lets the log say when stored rows no longer match.
    let mut digest = RowsDigest::default();
    let mut line = String::new();
    while let Some(row) = rows.try_next().await? {
        match format {
            Format::Csv => digest.push(&row, &mut buf),
            Format::Json => {
                line.clear();
                digest.push(&row, &mut line);
                if !first {
                    buf.push(',');
                }
                buf.push_str(&json_row(&row));
            }
        }
        first = false;
        if buf.len() >= CHUNK_BYTES {
            send(tx, &mut buf).await?;
        }
    }
    if format == Format::Json {
        buf.push_str("]}\n");
    }
    send(tx, &mut buf).await?;
    if digest.finish() != snap.rows_sha256 {
        tracing::warn!(
            snapshot = snap.id,
            "exported rows do not hash to the snapshot's rows_sha256: run `evidence verify`"
        );
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, buf: &mut String) -> Result<(), WriteError> {
    let chunk = Bytes::from(std::mem::take(buf).into_bytes());
    tx.send(Ok(chunk)).await.map_err(|_| WriteError::Gone)
}

/// A row as a JSON object: the CSV columns as keys, lists as arrays, an unknown admin flag as
/// null. Serialised straight from this struct (no intermediate `Value` map per row).
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    object_id: &'a str,
    user_principal_name: &'a str,
    display_name: Option<&'a str>,
    user_type: Option<&'a str>,
    account_enabled: bool,
    is_admin: Option<bool>,
    is_licensed: bool,
    mfa_status: &'static str,
    mfa_methods: Vec<&'a str>,
    mfa_enforcement: &'static str,
    mfa_enforcement_sources: Vec<&'static str>,
    mfa_verdict: &'static str,
}

fn json_row(r: &EvidenceRow) -> String {
    let row = JsonRow {
        object_id: &r.object_id,
        user_principal_name: &r.user_principal_name,
        display_name: r.display_name.as_deref(),
        user_type: r.user_type.as_deref(),
        account_enabled: r.account_enabled,
        is_admin: r.is_admin,
        is_licensed: r.is_licensed,
        mfa_status: status_name(r.mfa_status),
        mfa_methods: r.methods(),
        mfa_enforcement: enforcement_name(r.mfa_enforcement),
        mfa_enforcement_sources: r.sources(),
        mfa_verdict: verdict_name(r.mfa_verdict),
    };
    serde_json::to_string(&row).unwrap_or_default()
}
