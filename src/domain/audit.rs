//! Audit events: who did what, when, why, and which policy decided, for every transition.
//! Records are hash-chained (SHA-256 over the previous hash and the record), so that any
//! edit, deletion, insertion or reordering is found by `verify_chain`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::duration::Duration;
use super::ids::{CampaignId, GrantId, PersonId, RequestId, ResourceId, RoleId};
use super::request::RequestKind;

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A person, in chat.
    Person { id: PersonId },
    /// An operator acting for a person through the admin API (token name). `impersonated`
    /// when the person is not the token's own `operator`: the token's `impersonate` power
    /// let its holder act as someone else. (Written only when true, so records from before
    /// it existed keep their hashes.)
    Operator {
        token: String,
        for_person: PersonId,
        #[serde(default, skip_serializing_if = "is_false")]
        impersonated: bool,
    },
    /// Gatehouse itself: the scheduler, the outbox worker, a directory reload.
    System,
}

impl Actor {
    pub fn person(id: &PersonId) -> Self {
        Actor::Person { id: id.clone() }
    }

    /// The admin token that impersonated the person, when one did.
    pub fn impersonating_token(&self) -> Option<&str> {
        match self {
            Actor::Operator {
                token,
                impersonated: true,
                ..
            } => Some(token),
            _ => None,
        }
    }

    /// The person on whose behalf this happens, if any.
    pub fn person_id(&self) -> Option<&PersonId> {
        match self {
            Actor::Person { id } | Actor::Operator { for_person: id, .. } => Some(id),
            Actor::System => None,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Person { id } => write!(f, "{id}"),
            Actor::Operator {
                token,
                for_person,
                impersonated: false,
            } => write!(f, "{for_person} (via admin token {token})"),
            Actor::Operator {
                token,
                for_person,
                impersonated: true,
            } => write!(f, "{for_person} (impersonated via admin token {token})"),
            Actor::System => f.write_str("gatehouse"),
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AuditAction {
    RequestSubmitted {
        resource: ResourceId,
        role: RoleId,
        duration: Option<Duration>,
        stages: usize,
        /// What kind of request (and for an extension, of which grant); absent from events
        /// written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<RequestKind>,
    },
    RequestDenied {
        resource: ResourceId,
        role: RoleId,
        reasons: Vec<String>,
    },
    StageApproved {
        stage: String,
        remaining: usize,
    },
    StageEscalated {
        stage: String,
        added: Vec<PersonId>,
    },
    ApprovedWithChanges {
        duration: Option<Duration>,
        role: Option<RoleId>,
    },
    RequestApproved,
    RequestAutoApproved,
    RequestRejected,
    RequestCancelled,
    RequestExpired,
    GrantCreated {
        person: PersonId,
        resource: ResourceId,
        role: RoleId,
        expires_at: Option<DateTime<Utc>>,
    },
    GrantProvisioned,
    ProvisioningFailed {
        error: String,
    },
    GrantExtended {
        expires_at: Option<DateTime<Utc>>,
    },
    RevocationStarted,
    GrantRevoked,
    RevocationFailed {
        error: String,
        attempts: u32,
    },
    EmergencyGranted {
        resource: ResourceId,
        role: RoleId,
        expires_at: DateTime<Utc>,
    },
    EmergencyConfirmed,
    EmergencyFlagged,
    PersonOffboarded {
        person: PersonId,
        grants: usize,
        requests: usize,
    },
    /// A directory read was not applied: too many leavers at once.
    DirectorySyncHeld {
        leavers: usize,
    },
    RemindersSent {
        to: Vec<PersonId>,
    },
    CampaignStarted {
        review: String,
        items: usize,
    },
    ReviewKept,
    ReviewRevoked,
    CampaignTimedOut {
        revoked: usize,
        kept: usize,
        escalated: usize,
    },
    ExpiryWarned,
}

impl AuditAction {
    /// The action's name as it appears in exports: `request_submitted`.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    #[serde(flatten)]
    pub action: AuditAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<CampaignId>,
    /// The justification, rejection reason or note given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The workflow, rule or setting that decided (`workflow:privileged`, `sod:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl AuditEvent {
    pub fn new(at: DateTime<Utc>, actor: Actor, action: AuditAction) -> Self {
        Self {
            at,
            actor,
            action,
            request: None,
            grant: None,
            campaign: None,
            reason: None,
            policy: None,
        }
    }

    pub fn request(mut self, id: RequestId) -> Self {
        self.request = Some(id);
        self
    }

    pub fn grant(mut self, id: GrantId) -> Self {
        self.grant = Some(id);
        self
    }

    pub fn campaign(mut self, id: CampaignId) -> Self {
        self.campaign = Some(id);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = Some(policy.into());
        self
    }
}

/// An event as stored: numbered and chained to the one before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    pub event: AuditEvent,
}

/// The hash before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditRecord {
    /// Chains `event` after a record with hash `prev_hash`.
    pub fn chain(seq: u64, prev_hash: &str, event: AuditEvent) -> Self {
        let hash = record_hash(seq, prev_hash, &event);
        Self {
            seq,
            prev_hash: prev_hash.to_owned(),
            hash,
            event,
        }
    }
}

fn record_hash(seq: u64, prev_hash: &str, event: &AuditEvent) -> String {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(prev_hash.as_bytes());
    h.update(&body);
    hex::encode(h.finalize())
}

/// The first thing wrong with a chain, in words an auditor can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("audit event {seq} was edited: its content no longer matches its hash")]
    Edited { seq: u64 },
    #[error(
        "audit event {expected} is missing: the log jumps from {previous} to {found} (deleted)"
    )]
    Missing {
        previous: u64,
        expected: u64,
        found: u64,
    },
    #[error("audit event {seq} is stored under position {position} (moved or inserted)")]
    Misplaced { seq: u64, position: u64 },
    #[error(
        "audit event {seq} does not follow event {previous}: its previous-hash does not match (inserted or reordered)"
    )]
    Broken { seq: u64, previous: u64 },
    #[error(
        "the audit log ends at event {last}, but {expected} events were written (the last ones were deleted)"
    )]
    Truncated { last: u64, expected: u64 },
    #[error(
        "audit event {seq} does not have the hash recorded as the head when it was written (the log was rewritten)"
    )]
    Rewritten { seq: u64 },
    #[error(
        "audit event {seq} does not match its checkpoint of audit key {key}: the log was rewritten up to there by someone without the key"
    )]
    CheckpointMismatch { seq: u64, key: String },
    #[error(
        "audit events {from}-{to} have no checkpoint of audit key {key}, though the events before them do: they were added by someone without the key, or written while Gatehouse ran without it (starting Gatehouse with the key takes them as found, and says so)"
    )]
    Unanchored { from: u64, to: u64, key: String },
    #[error(
        "audit event {seq} has hash {found}, but {published} was published for it: the log was rewritten"
    )]
    NotPublished {
        seq: u64,
        published: String,
        found: String,
    },
    #[error(
        "the audit log ends at event {last}, but the head of event {seq} was published: events were removed (the log was cut back or rolled back)"
    )]
    PublishedBeyond { seq: u64, last: u64 },
}

/// Walks stored records in position order and checks the chain, ending at `head` (the
/// number of events written, as recorded separately) when known.
pub fn verify_chain<I>(records: I, head: Option<u64>) -> Result<u64, ChainError>
where
    I: IntoIterator<Item = (u64, AuditRecord)>,
{
    let mut previous: Option<AuditRecord> = None;
    let mut count = 0;
    for (position, record) in records {
        if record.seq != position {
            return Err(ChainError::Misplaced {
                seq: record.seq,
                position,
            });
        }
        let expected = previous.as_ref().map_or(1, |p| p.seq + 1);
        if record.seq > expected {
            return Err(ChainError::Missing {
                previous: expected - 1,
                expected,
                found: record.seq,
            });
        }
        let prev_hash = previous.as_ref().map_or(GENESIS_HASH, |p| p.hash.as_str());
        if record_hash(record.seq, &record.prev_hash, &record.event) != record.hash {
            return Err(ChainError::Edited { seq: record.seq });
        }
        if record.prev_hash != prev_hash {
            return Err(ChainError::Broken {
                seq: record.seq,
                previous: expected - 1,
            });
        }
        count = record.seq;
        previous = Some(record);
    }
    match head {
        Some(expected) if expected > count => Err(ChainError::Truncated {
            last: count,
            expected,
        }),
        _ => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: u64) -> Vec<(u64, AuditRecord)> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let at = Utc.timestamp_opt(1_700_000_000 + seq as i64, 0).unwrap();
                let event = AuditEvent::new(at, Actor::System, AuditAction::RequestExpired)
                    .request(RequestId(seq));
                let record = AuditRecord::chain(seq, &prev, event);
                prev = record.hash.clone();
                (seq, record)
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(chain(5), Some(5)), Ok(5));
        assert_eq!(verify_chain(Vec::new(), Some(0)), Ok(0));
    }

    #[test]
    fn an_operator_event_from_before_impersonation_was_recorded_keeps_its_hash() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let before = r#"{"at":"2023-11-14T22:13:20Z","actor":{"type":"operator","token":"ops","for_person":"bob"},"action":"request_approved","request":"AR-1"}"#;
        let event: AuditEvent = serde_json::from_str(before).unwrap();
        assert_eq!(
            event.actor,
            Actor::Operator {
                token: "ops".into(),
                for_person: "bob".into(),
                impersonated: false
            }
        );
        assert_eq!(serde_json::to_string(&event).unwrap(), before);
        assert_eq!(event.at, at);
        assert_eq!(event.actor.to_string(), "bob (via admin token ops)");
    }

    #[test]
    fn an_impersonation_is_written_into_the_record_and_its_line() {
        let actor = Actor::Operator {
            token: "ops".into(),
            for_person: "bob".into(),
            impersonated: true,
        };
        assert_eq!(actor.to_string(), "bob (impersonated via admin token ops)");
        assert_eq!(actor.impersonating_token(), Some("ops"));
        let json = serde_json::to_value(&actor).unwrap();
        assert_eq!(json["impersonated"], true);
    }

    #[test]
    fn an_edited_event_is_named() {
        let mut records = chain(5);
        records[2].1.event.reason = Some("nothing to see".into());
        assert_eq!(
            verify_chain(records, Some(5)),
            Err(ChainError::Edited { seq: 3 })
        );
    }

    #[test]
    fn a_deleted_event_is_named() {
        let mut records = chain(5);
        records.remove(2);
        assert_eq!(
            verify_chain(records, Some(5)),
            Err(ChainError::Missing {
                previous: 2,
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn deleting_the_newest_events_is_found_through_the_head() {
        let mut records = chain(5);
        records.truncate(3);
        assert_eq!(
            verify_chain(records, Some(5)),
            Err(ChainError::Truncated {
                last: 3,
                expected: 5
            })
        );
    }

    #[test]
    fn an_inserted_event_is_found() {
        let mut records = chain(5);
        // A forger rebuilds a valid-looking record at position 3 and renumbers the rest.
        let forged = AuditRecord::chain(3, &records[1].1.hash, records[0].1.event.clone());
        records.insert(2, (3, forged));
        for (i, (position, record)) in records.iter_mut().enumerate().skip(3) {
            *position = i as u64 + 1;
            record.seq = i as u64 + 1;
        }
        assert_eq!(
            verify_chain(records, Some(6)),
            Err(ChainError::Edited { seq: 4 })
        );
    }

    #[test]
    fn reordered_events_are_found() {
        let mut records = chain(5);
        let (a, b) = (records[1].1.clone(), records[2].1.clone());
        records[1].1 = AuditRecord { seq: 2, ..b };
        records[2].1 = AuditRecord { seq: 3, ..a };
        assert_eq!(
            verify_chain(records, Some(5)),
            Err(ChainError::Edited { seq: 2 })
        );
    }

    #[test]
    fn a_record_moved_to_another_position_is_found() {
        let mut records = chain(5);
        records[4].0 = 9;
        assert_eq!(
            verify_chain(records, Some(5)),
            Err(ChainError::Misplaced {
                seq: 5,
                position: 9
            })
        );
    }
}
