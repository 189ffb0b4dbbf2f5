//! The Audit page, for auditors and admins: the audit log searched by person, resource and
//! time, newest first, a page at a time by its sequence index; the chain verified on
//! demand (a walk of the whole log, so never on every page view); and the selection
//! exported as CSV or JSON Lines, in the same formats as `gatehouse audit export`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::Portal;
use super::session::Visitor;
use crate::chat::views::TimeView;
use crate::domain::ids::PersonId;
use crate::engine::{AuditQuery, EngineError};
use crate::store::export::{ExportFormat, export_audit};

/// Events one page shows, and the most a page reads to find them.
const PAGE_EVENTS: usize = 50;
const PAGE_BUDGET: usize = 5_000;
/// The most events one export holds, and reads to find them.
const EXPORT_EVENTS: usize = 100_000;
const EXPORT_BUDGET: usize = 1_000_000;

/// The search form, as sent (every field may be empty).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Search {
    #[serde(default)]
    person: String,
    #[serde(default)]
    resource: String,
    /// `2026-03-01` (from its start) or an RFC 3339 time.
    #[serde(default)]
    since: String,
    /// `2026-03-31` (to its end) or an RFC 3339 time.
    #[serde(default)]
    until: String,
    /// `asc` for oldest first; newest first otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    /// The page after one that ended at this sequence number: older events newest first,
    /// newer ones oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
}

/// A sequence number from a link; the sentence to show when it is not one.
fn seq(text: Option<&str>) -> Result<Option<u64>, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            format!("`{text}` is not a page of the audit log; start again from its first page.")
        }),
    }
}

/// A time typed in the form; the sentence to show when it is not one.
fn instant(text: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => {
            let time = match end_of_day {
                true => day.and_hms_opt(23, 59, 59),
                false => day.and_hms_opt(0, 0, 0),
            };
            Ok(time.map(|t| t.and_utc()))
        }
        Err(_) => Err(format!(
            "`{text}` is not a date; write it like 2026-03-01 or 2026-03-01T09:00:00Z"
        )),
    }
}

impl Search {
    /// Whether the search reads oldest first; a direction that is neither is refused.
    fn oldest_first(&self) -> Result<bool, String> {
        match self.dir.as_deref().map(str::trim) {
            None | Some("") | Some("desc") => Ok(false),
            Some("asc") => Ok(true),
            Some(other) => Err(format!(
                "`{other}` is not a direction; use `asc` or `desc`."
            )),
        }
    }

    /// The order and page asked for, checked: a problem here is the link's, not the form's.
    fn checked(&self) -> Result<(bool, Option<u64>, Option<u64>), String> {
        Ok((
            self.oldest_first()?,
            seq(self.before.as_deref())?,
            seq(self.after.as_deref())?,
        ))
    }

    fn query(&self, limit: usize, budget: usize) -> Result<AuditQuery, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let (oldest_first, before, after) = self.checked()?;
        Ok(AuditQuery {
            person: text(&self.person).map(|p| PersonId::new(p.as_str())),
            resource: text(&self.resource),
            since: instant(&self.since, false)?,
            until: instant(&self.until, true)?,
            before: before.filter(|_| !oldest_first),
            after: after.filter(|_| oldest_first),
            oldest_first,
            limit,
            budget,
            ..AuditQuery::default()
        })
    }

    /// This search's query string in its order, from the first page.
    fn first_page(&self) -> Search {
        Search {
            before: None,
            after: None,
            format: None,
            ..self.clone()
        }
    }

    /// This search's query string, changed by `change` from its first page.
    fn link(&self, change: impl FnOnce(&mut Search)) -> String {
        let mut search = self.first_page();
        change(&mut search);
        serde_urlencoded::to_string(&search).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Row {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    reason: String,
}

/// The refusal for someone who is neither an auditor nor an admin.
fn not_auditor(portal: &Portal, visitor: &Visitor) -> Option<Response> {
    if visitor.auditor {
        return None;
    }
    let e = EngineError::NotAllowed(
        "only auditors and Gatehouse admins read the whole audit log".to_owned(),
    );
    Some(portal.refused(
        visitor,
        &e,
        super::pages::Link::new("/web/access", "Back to My access"),
    ))
}

pub async fn audit(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    if let Some(refused) = not_auditor(&portal, &visitor) {
        return refused;
    }
    let oldest_first = match search.checked() {
        Ok((oldest_first, _, _)) => oldest_first,
        Err(sentence) => return portal.bad_table(&visitor, &sentence, "/web/audit"),
    };
    let (rows, problem, more, head) = match search.query(PAGE_EVENTS, PAGE_BUDGET) {
        Err(problem) => (Vec::new(), Some(problem), None, None),
        Ok(query) => match portal.facade.audit_search(query).await {
            Err(e) => return portal.apology(&e),
            Ok(page) => {
                let rows = page
                    .records
                    .iter()
                    .map(|r| Row {
                        seq: r.seq,
                        at: TimeView::new(r.event.at).text,
                        actor: r.event.actor.to_string(),
                        action: r.event.action.name(),
                        subject: [
                            r.event.request.map(|id| id.to_string()),
                            r.event.grant.map(|id| id.to_string()),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                        reason: r.event.reason.clone().unwrap_or_default(),
                    })
                    .collect::<Vec<_>>();
                (rows, None, page.more_before.or(page.more_after), page.head)
            }
        },
    };
    let context = minijinja::context! {
        search => minijinja::Value::from(minijinja::value::Serde(&search)),
        rows => minijinja::Value::from(minijinja::value::Serde(&rows)),
        problem => problem,
        more => more.map(|seq| search.link(|s| match oldest_first {
            true => s.after = Some(seq.to_string()),
            false => s.before = Some(seq.to_string()),
        })),
        first_page => (search.before.is_some() || search.after.is_some())
            .then(|| search.link(|_| {})),
        oldest_first => oldest_first,
        turned => search.link(|s| s.dir = (!oldest_first).then(|| "asc".to_owned())),
        csv => search.link(|s| s.format = Some("csv".to_owned())),
        jsonl => search.link(|s| s.format = Some("jsonl".to_owned())),
        head => head.map(|h| format!("{} events, head {}", h.seq, h.hash)),
    };
    portal.page(&visitor, "Audit log", "audit", "audit.html", context)
}

pub async fn export(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    if let Some(refused) = not_auditor(&portal, &visitor) {
        return refused;
    }
    let format: ExportFormat = match search.format.as_deref().unwrap_or("jsonl").parse() {
        Ok(format) => format,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let query = match search.query(EXPORT_EVENTS, EXPORT_BUDGET) {
        Ok(query) => query,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem).into_response(),
    };
    let page = match portal.facade.audit_search(query).await {
        Ok(page) => page,
        Err(e) => return portal.apology(&e),
    };
    tracing::info!(person = %visitor.person.id, events = page.records.len(), "audit exported from the portal");
    let mut body = Vec::new();
    // Oldest first, as `gatehouse audit export` writes them.
    let mut records = page.records;
    if !search.oldest_first().unwrap_or(false) {
        records.reverse();
    }
    if let Err(e) = export_audit(records.into_iter(), format, None, &mut body) {
        return portal.apology(&EngineError::Internal(e.to_string()));
    }
    let (kind, name) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "gatehouse-audit.csv"),
        ExportFormat::Jsonl => ("application/x-ndjson", "gatehouse-audit.jsonl"),
    };
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (CONTENT_TYPE, kind.to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

pub async fn verify(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    if let Some(refused) = not_auditor(&portal, &visitor) {
        return refused;
    }
    let (heading, message) = match portal.facade.verify_audit(Vec::new()).await {
        Ok(report) => (
            "The audit chain is intact",
            format!(
                "{} events verified, every hash and checkpoint in place.",
                report.events
            ),
        ),
        Err(EngineError::Store(e)) => ("The audit chain is NOT intact", e.to_string()),
        Err(e) => return portal.apology(&e),
    };
    portal.message_with_link(
        StatusCode::OK,
        heading,
        &message,
        Some(&visitor),
        super::pages::Link::new("/web/audit", "Back to the audit log"),
    )
}
