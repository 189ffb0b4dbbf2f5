//! What the web portal reads and writes beyond the other front ends: its sessions (kept in
//! the store, so that they survive a restart and can be ended from anywhere), and the
//! records a request page shows together.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::Facade;
use crate::domain::anchor::ChainHead;
use crate::domain::audit::AuditRecord;
use crate::domain::grant::Grant;
use crate::domain::ids::{GrantId, PersonId, RequestId};
use crate::domain::request::{AccessRequest, RequestState};
use crate::domain::review::{Campaign, ReviewItem};
use crate::domain::session::{Session, Timeouts};
use crate::engine::{Engine, EngineError};
use crate::store::{GrantList, Mark, RequestList, Window};

/// What an auditor looks for in the audit log, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Events this person did, or were done for them (an operator acting as them).
    pub person: Option<PersonId>,
    /// Events whose action names this resource (submissions, refusals, grants).
    pub resource: Option<String>,
    /// Events about this request, or about this grant.
    pub request: Option<RequestId>,
    pub grant: Option<GrantId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only events older than this sequence number: the page after one that ended there.
    pub before: Option<u64>,
    /// Oldest first, only events newer than this sequence number: the page after one that
    /// ended there.
    pub after: Option<u64>,
    /// Oldest first from `since` (found by bisection), instead of newest first.
    pub oldest_first: bool,
    /// The most events returned.
    pub limit: usize,
    /// The most events read to find them: a search for something rare stops here, and says
    /// where to go on from.
    pub budget: usize,
}

/// One page of an audit search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// Newest first (oldest first when asked).
    pub records: Vec<AuditRecord>,
    /// Where the search stopped with more to read: the next page's `before`.
    pub more_before: Option<u64>,
    /// Oldest first, where the search stopped with more to read: the next page's `after`.
    pub more_after: Option<u64>,
    /// The chain's head when the search was made.
    pub head: Option<ChainHead>,
}

impl AuditQuery {
    fn matches(&self, record: &AuditRecord) -> bool {
        let event = &record.event;
        let person = self.person.as_ref().is_none_or(|person| {
            event.actor.person_id() == Some(person)
                || matches!(&event.actor, crate::domain::audit::Actor::Operator { for_person, .. } if for_person == person)
        });
        let resource = self.resource.as_deref().is_none_or(|resource| {
            serde_json::to_value(&event.action).is_ok_and(|action| action["resource"] == resource)
        });
        let subject = match (self.request, self.grant) {
            (None, None) => true,
            (request, grant) => {
                (request.is_some() && event.request == request)
                    || (grant.is_some() && event.grant == grant)
            }
        };
        person && resource && subject && self.since.is_none_or(|since| event.at >= since)
    }
}

/// How many records one read of the audit log takes.
const AUDIT_CHUNK: u64 = 256;

impl Facade {
    /// The session stored under `key`, if any (whether it still lets anyone in is the
    /// caller's to check, with [`Session::check`]).
    pub async fn session(&self, key: String) -> Result<Option<Session>, EngineError> {
        self.call(move |engine| Ok(engine.store.session(&key)?))
            .await
    }

    /// Stores a new session, durably, and forgets every session that has ended by now:
    /// sign-ins are rare, sessions few, and this keeps abandoned ones from piling up.
    pub async fn open_session(
        &self,
        key: String,
        session: Session,
        timeouts: Timeouts,
    ) -> Result<(), EngineError> {
        self.call(move |engine| {
            let world = engine.world();
            let now = engine.now();
            for (old, stored) in engine.store.sessions()? {
                if stored.check(now, timeouts, &world.directory).is_err() {
                    engine.store.end_session(&old)?;
                }
            }
            Ok(engine.store.put_session(&key, &session, true)?)
        })
        .await
    }

    /// Writes a session's new `last_seen` (not flushed on its own: losing it to a crash
    /// only makes a session end sooner).
    pub async fn touch_session(&self, key: String, session: Session) -> Result<(), EngineError> {
        self.call(move |engine| Ok(engine.store.put_session(&key, &session, false)?))
            .await
    }

    /// Ends one session (sign-out, or one found ended); whether there was one.
    pub async fn end_session(&self, key: String) -> Result<bool, EngineError> {
        self.call(move |engine| Ok(engine.store.end_session(&key)?))
            .await
    }

    /// Ends every session of `person`; how many.
    pub async fn end_sessions_of(&self, person: PersonId) -> Result<usize, EngineError> {
        self.call(move |engine| {
            let mut ended = 0;
            for (key, session) in engine.store.sessions()? {
                if session.person == person && engine.store.end_session(&key)? {
                    ended += 1;
                }
            }
            Ok(ended)
        })
        .await
    }

    /// One page of a list of requests, read from its index: My access.
    pub async fn requests_window(
        &self,
        list: RequestList,
        window: Window,
    ) -> Result<Vec<AccessRequest>, EngineError> {
        self.call(move |engine| Ok(engine.store.requests_window(&list, window)?))
            .await
    }

    /// One page of a list of grants, read from its index: My access, Grants by their end.
    pub async fn grants_window(
        &self,
        list: GrantList,
        window: Window,
    ) -> Result<Vec<Grant>, EngineError> {
        self.call(move |engine| Ok(engine.store.grants_window(&list, window)?))
            .await
    }

    /// One page of the pending requests whose current stage `person` may decide now, read
    /// from `pending_by_approver` beyond the window's mark: those listed that `person` may not
    /// decide (their own, an approver of an earlier stage) are passed over, and the index is
    /// read on until the page is full or ends.
    pub async fn to_decide_window(
        &self,
        person: PersonId,
        window: Window,
    ) -> Result<Vec<AccessRequest>, EngineError> {
        self.call(move |engine| {
            let distinct = engine.world().defaults().distinct_approvers;
            let list = RequestList::AwaitingApprover(person.clone());
            let mut found = Vec::new();
            let mut read = window;
            loop {
                let listed = engine.store.requests_window(&list, read)?;
                let ended = listed.len() < read.limit;
                read.after = listed.last().map(|r| Mark {
                    at_ms: 0,
                    id: r.id.0,
                });
                found.extend(
                    listed
                        .into_iter()
                        .filter(|r| r.check_decider(&person, distinct).is_ok()),
                );
                if found.len() >= window.limit || ended {
                    found.truncate(window.limit);
                    return Ok(found);
                }
            }
        })
        .await
    }

    /// A request and, once approved, its grant, read together for the request page.
    pub async fn request_with_grant(
        &self,
        id: RequestId,
    ) -> Result<(AccessRequest, Option<Grant>), EngineError> {
        self.call(move |engine| {
            let request = engine.load_request(id)?.value;
            let grant = match &request.state {
                RequestState::Approved { grant, .. } => {
                    engine.store.grant(*grant)?.map(|g| g.value)
                }
                _ => None,
            };
            Ok((request, grant))
        })
        .await
    }
}

impl Facade {
    /// One page of the items of open access-review campaigns that wait for `person`'s
    /// decision, each with its campaign and the grant it is about, in the order of their
    /// campaign and then their grant: a [`Window`] whose marks hold the campaign's id in
    /// `at_ms`. Open campaigns are few and are read whole (their items live in the campaign's
    /// record); only the grants of the rows returned are read.
    pub async fn reviews_for(
        &self,
        person: PersonId,
        window: Window,
    ) -> Result<Vec<(Arc<Campaign>, ReviewItem, Grant)>, EngineError> {
        self.call(move |engine| {
            let beyond = |mark: Mark| match window.ascending {
                true => mark > window.after.unwrap_or_default(),
                false => window.after.is_none_or(|after| mark < after),
            };
            let mut waiting = Vec::new();
            for campaign in engine.store.campaigns(true)? {
                let campaign = Arc::new(campaign.value);
                for (i, item) in campaign.items.iter().enumerate() {
                    let mark = Mark {
                        at_ms: campaign.id.0,
                        id: item.grant.0,
                    };
                    if item.decision.is_none() && item.reviewers.contains(&person) && beyond(mark) {
                        waiting.push((mark, campaign.clone(), i));
                    }
                }
            }
            waiting.sort_by_key(|(mark, _, _)| *mark);
            if !window.ascending {
                waiting.reverse();
            }
            let mut page = Vec::new();
            for (_, campaign, i) in waiting {
                if page.len() >= window.limit {
                    break;
                }
                let item = campaign.items[i].clone();
                if let Some(grant) = engine.store.grant(item.grant)? {
                    page.push((campaign, item, grant.value));
                }
            }
            Ok(page)
        })
        .await
    }

    /// Searches the audit log newest first, by the sequence index: the newest event at or
    /// before `until` is found by bisection, then events are read backwards in chunks until
    /// `limit` match, `budget` were read, or `since` is passed. Its cost is what it reads,
    /// never the size of the log.
    pub async fn audit_search(&self, query: AuditQuery) -> Result<AuditPage, EngineError> {
        self.call(move |engine| search_audit(engine, &query)).await
    }
}

fn search_audit(engine: &Engine, query: &AuditQuery) -> Result<AuditPage, EngineError> {
    let store = &engine.store;
    let head = store.chain_head()?;
    let newest = head.as_ref().map_or(0, |h| h.seq);
    let mut end = query
        .before
        .map_or(newest, |b| b.saturating_sub(1).min(newest));
    if let Some(until) = query.until {
        end = end.min(last_at_or_before(engine, until, end)?);
    }
    let mut page = AuditPage {
        head,
        ..AuditPage::default()
    };
    if query.oldest_first {
        let start = match query.since {
            Some(since) => last_at_or_before(engine, since - TimeDelta::nanoseconds(1), end)? + 1,
            None => 1,
        };
        let start = query.after.map_or(start, |after| start.max(after + 1));
        return read_forward(engine, query, start, end, page);
    }
    let mut read = 0;
    while end >= 1 {
        let from = end.saturating_sub(AUDIT_CHUNK - 1).max(1);
        let chunk = store.audit(from, (end - from + 1) as usize)?;
        for record in chunk.into_iter().rev() {
            read += 1;
            if query.since.is_some_and(|since| record.event.at < since) {
                return Ok(page);
            }
            if query.matches(&record) {
                page.records.push(record.clone());
            }
            if page.records.len() >= query.limit || read >= query.budget {
                page.more_before = (record.seq > 1).then_some(record.seq);
                return Ok(page);
            }
        }
        end = from - 1;
    }
    Ok(page)
}

/// [`search_audit`] oldest first, from `start` to `end`.
fn read_forward(
    engine: &Engine,
    query: &AuditQuery,
    mut start: u64,
    end: u64,
    mut page: AuditPage,
) -> Result<AuditPage, EngineError> {
    let mut read = 0;
    while start <= end {
        let count = (end - start + 1).min(AUDIT_CHUNK);
        let chunk = engine.store.audit(start, count as usize)?;
        if chunk.is_empty() {
            break;
        }
        for record in chunk {
            read += 1;
            start = record.seq + 1;
            let record_seq = record.seq;
            if query.matches(&record) {
                page.records.push(record);
            }
            if page.records.len() >= query.limit || read >= query.budget {
                page.more_after = (record_seq < end).then_some(record_seq);
                return Ok(page);
            }
        }
    }
    Ok(page)
}

/// The newest sequence number at or before `end` whose event happened at or before `until`
/// (0 when none did). Events are appended in time order, so the log is bisected.
fn last_at_or_before(engine: &Engine, until: DateTime<Utc>, end: u64) -> Result<u64, EngineError> {
    let (mut low, mut high) = (0, end);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        let at = engine.store.audit(middle, 1)?.first().map(|r| r.event.at);
        if at.is_some_and(|at| at <= until) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Ok(low)
}

#[cfg(test)]
#[path = "portal_tests.rs"]
mod tests;
