//! How requests and grants read on a terminal: one line each in lists, a few lines for `show`.

use chrono::{DateTime, Utc};

use crate::domain::grant::{Grant, GrantState, ReviewOutcome};
use crate::domain::request::{AccessRequest, RequestKind, RequestState};

/// Rows as columns separated by two spaces, every column but the last padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `AR-3  pending  alice  prod-db/admin  2h  Manager approval — 0 of 1 approval`
pub fn request_row(r: &AccessRequest) -> Vec<String> {
    let kind = match r.kind {
        RequestKind::Access => String::new(),
        RequestKind::Emergency => " (emergency)".to_owned(),
        RequestKind::Extension { grant } => format!(" (extends {grant})"),
    };
    vec![
        r.id.to_string(),
        r.state.name().to_owned(),
        r.requester.to_string(),
        format!("{}/{}{kind}", r.resource, r.role),
        r.duration.map_or("standing".to_owned(), |d| d.to_string()),
        request_status(r),
    ]
}

/// Where a request stands, in a few words.
pub fn request_status(r: &AccessRequest) -> String {
    match &r.state {
        RequestState::Pending => match r.plan.stages.get(r.current_stage) {
            Some(stage) => {
                let plural = if stage.quorum == 1 { "" } else { "s" };
                format!(
                    "{} — {} of {} approval{plural}",
                    stage.name,
                    stage.approvals.len(),
                    stage.quorum
                )
            }
            None => "waiting".to_owned(),
        },
        RequestState::Approved { grant, .. } => format!("granted as {grant}"),
        RequestState::Rejected { by, reason, .. } => format!("rejected by {by}: {reason}"),
        RequestState::Cancelled { by, .. } => format!("cancelled by {by}"),
        RequestState::Expired { at } => format!("expired unanswered at {}", time(*at)),
    }
}

/// `G-7  active  alice  prod-db/admin  until 2026-05-01 14:00 UTC`
pub fn grant_row(g: &Grant) -> Vec<String> {
    let until = g
        .expires_at
        .map_or("standing".to_owned(), |e| format!("until {}", time(e)));
    let mut last = until;
    if g.emergency {
        last.push_str("  emergency");
    }
    if let GrantState::Revoked { reason, .. } | GrantState::Revoking { reason, .. } = &g.state {
        last = format!("{reason}");
    }
    if let GrantState::Failed { error, .. } = &g.state {
        last = format!("provisioning failed: {error}");
    }
    vec![
        g.id.to_string(),
        g.state.name().to_owned(),
        g.person.to_string(),
        format!("{}/{}", g.resource, g.role),
        last,
    ]
}

/// What happens next, after a command that made or moved a request (and maybe its grant), as
/// a sentence; `None` when nothing more is coming.
pub fn next_step(r: &AccessRequest, grant: Option<&Grant>) -> Option<String> {
    if let Some(g) = grant {
        return grant_next_step(g);
    }
    if !matches!(r.state, RequestState::Pending) {
        return None;
    }
    let stage = r.plan.stages.get(r.current_stage)?;
    let waiting: Vec<&str> = stage
        .approvers
        .iter()
        .filter(|p| !stage.has_approved(p))
        .map(|p| p.as_str())
        .collect();
    let needed = stage.quorum.saturating_sub(stage.approvals.len());
    let from = match (needed, waiting.as_slice()) {
        (_, []) => "; nobody can approve it now".to_owned(),
        (1, [one]) => format!(" from {one}"),
        (1, many) => format!(" from one of {}", many.join(", ")),
        (n, many) => format!(": {n} more approvals from {}", many.join(", ")),
    };
    Some(format!("{} waits for {}{from}.", r.id, stage.name))
}

fn grant_next_step(g: &Grant) -> Option<String> {
    let access = format!("{} has {}/{}", g.person, g.resource, g.role);
    match &g.state {
        GrantState::Provisioning => Some(format!(
            "{} is being provisioned: the connector of {} is giving {} the access; `gatehouse \
             grants show {}` shows when it is active.",
            g.id, g.resource, g.person, g.id
        )),
        GrantState::Active { .. } => {
            let until = g.expires_at.map_or("with no end date".to_owned(), |e| {
                format!("until {}, when it is taken back", time(e))
            });
            let review = if g.emergency {
                " As emergency access, it is reviewed afterwards."
            } else {
                ""
            };
            Some(format!("{} is active: {access} {until}.{review}", g.id))
        }
        _ => None,
    }
}

/// `requests show`: the line, then what a reviewer wants to know.
pub fn request_details(r: &AccessRequest) -> String {
    let mut out = table(&[request_row(r)]);
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<10} {value}\n"));
    line("reason", r.justification.clone());
    for (key, value) in &r.fields {
        line("field", format!("{key} = {value}"));
    }
    line(
        "submitted",
        format!(
            "{}{}",
            time(r.submitted_at),
            r.submitted_by
                .as_ref()
                .map_or(String::new(), |t| format!(" via admin token {t}"))
        ),
    );
    if r.is_pending() {
        line("expires", time(r.expires_at));
    }
    let route = if r.plan.auto_approved {
        " (approved at once)"
    } else {
        ""
    };
    line("workflow", format!("{}{route}", r.plan.workflow));
    for (i, stage) in r.plan.stages.iter().enumerate() {
        let marker = if r.is_pending() && i == r.current_stage {
            "  ← now"
        } else {
            ""
        };
        let approved: Vec<String> = stage.approvals.iter().map(|a| a.by.to_string()).collect();
        let approvers: Vec<&str> = stage.approvers.iter().map(|p| p.as_str()).collect();
        let done = if approved.is_empty() {
            String::new()
        } else {
            format!("; approved by {}", approved.join(", "))
        };
        line(
            &format!("stage {}", i + 1),
            format!(
                "{} — {} of {} from {}{done}{marker}",
                stage.name,
                stage.approvals.len(),
                stage.quorum,
                approvers.join(", ")
            ),
        );
    }
    for change in &r.changes {
        let mut what = Vec::new();
        if let Some((from, to)) = change.duration {
            what.push(format!(
                "duration {} → {to}",
                from.map_or("standing".to_owned(), |d| d.to_string())
            ));
        }
        if let Some((from, to)) = &change.role {
            what.push(format!("role {from} → {to}"));
        }
        line("changed", format!("by {}: {}", change.by, what.join(", ")));
    }
    out
}

/// `grants show`.
pub fn grant_details(g: &Grant) -> String {
    let mut out = table(&[grant_row(g)]);
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<10} {value}\n"));
    line("request", g.request.to_string());
    line("granted", time(g.granted_at));
    line(
        "expires",
        g.expires_at
            .map_or("never (standing access)".to_owned(), time),
    );
    if let Some(review) = &g.review {
        let outcome = match &review.outcome {
            None => "pending".to_owned(),
            Some(ReviewOutcome::Confirmed { by, at }) => {
                format!("confirmed by {by} at {}", time(*at))
            }
            Some(ReviewOutcome::Flagged { by, at, note }) => {
                format!("flagged by {by} at {}: {note}", time(*at))
            }
        };
        line(
            "review",
            format!(
                "by {} before {}: {outcome}",
                review
                    .reviewers
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                time(review.due)
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::ids::{GrantId, RequestId};

    fn grant(state: GrantState, emergency: bool) -> Grant {
        let at = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap();
        Grant {
            id: GrantId(2),
            person: "alice".into(),
            resource: "prod-db".into(),
            role: "read".into(),
            request: RequestId(2),
            granted_at: at,
            expires_at: Some(at + chrono::Duration::hours(2)),
            emergency,
            review: None,
            warned_at: None,
            state,
        }
    }

    #[test]
    fn a_grant_being_provisioned_says_how_to_see_when_it_is_active() {
        assert_eq!(
            grant_next_step(&grant(GrantState::Provisioning, false)).unwrap(),
            "G-2 is being provisioned: the connector of prod-db is giving alice the access; \
             `gatehouse grants show G-2` shows when it is active."
        );
    }

    #[test]
    fn an_active_grant_says_until_when() {
        let since = Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 1).unwrap();
        let active = GrantState::Active { since };
        assert_eq!(
            grant_next_step(&grant(active.clone(), false)).unwrap(),
            "G-2 is active: alice has prod-db/read until 2027-01-04 11:00 UTC, when it is taken back."
        );
        let emergency = grant_next_step(&grant(active, true)).unwrap();
        assert!(
            emergency.ends_with("As emergency access, it is reviewed afterwards."),
            "{emergency}"
        );
    }
}
