//! Taking access back and what follows a grant: ending early, revoking, the post-hoc review
//! of emergency access, offboarding, expiry, and the results connectors report.

use chrono::{DateTime, Utc};

use super::{Engine, EngineError};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::card::CardKey;
use crate::domain::effect::{Alert, Effect};
use crate::domain::grant::{Grant, ReviewOutcome, RevokeReason};
use crate::domain::ids::{GrantId, PersonId};
use crate::domain::reason::read_reason;
use crate::domain::request::RequestState;
use crate::store::{Commit, Expect, RequestWrite, StoreError, Versioned};

/// What an offboarding took away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offboarded {
    pub grants: Vec<GrantId>,
    pub requests: usize,
}

impl Engine {
    pub(super) fn load_grant(&self, id: GrantId) -> Result<Versioned<Grant>, EngineError> {
        let stored = self
            .store
            .grant(id)?
            .ok_or_else(|| EngineError::NotFound(format!("there is no grant {id}")))?;
        // Every line about a grant names the request it came from (when the span asks).
        tracing::Span::current().record("request", tracing::field::display(stored.value.request));
        Ok(stored)
    }

    /// Whether messages with buttons about `grant` may have been posted, or be on their way:
    /// only its expiry warning and the review of emergency access post any, so a grant never
    /// warned (since it was given or last extended), not emergency, with none recorded has
    /// nothing to refresh. Most grants taken back together (an offboarding, a restart after
    /// their end) are of that kind, and a refresh each would cost its queuing, its delivery
    /// and its completion for nothing. (A warning queued before an extension is recorded by
    /// now, or still on its way and then rendered as the grant is when delivered; only one
    /// delivered in the very moment before its answer is recorded keeps its buttons, which
    /// then answer that the grant has ended.)
    pub(super) fn may_have_cards(&self, grant: &Grant) -> Result<bool, EngineError> {
        if grant.emergency || grant.warned_at.is_some() {
            return Ok(true);
        }
        let about = CardKey::Grant { grant: grant.id };
        Ok(!self.store.cards(&about)?.is_empty())
    }

    /// Queues the revocation of a live grant into `commit`.
    pub(super) fn queue_revocation(
        &self,
        stored: Versioned<Grant>,
        reason: RevokeReason,
        actor: &Actor,
        now: DateTime<Utc>,
        commit: &mut Commit,
    ) -> Result<Grant, EngineError> {
        let mut grant = stored.value;
        grant.start_revoke(reason.clone(), now)?;
        commit.events.push(
            AuditEvent::new(now, actor.clone(), AuditAction::RevocationStarted)
                .grant(grant.id)
                .request(grant.request)
                .reason(reason.to_string()),
        );
        commit.effects.push(Effect::Deprovision { grant: grant.id });
        // The holder's Extend / End now buttons no longer apply: now, or once the connector
        // confirms ([`Engine::deprovisioned`]) or keeps failing
        // ([`Engine::revocation_failing`]); see `RevokeReason::refreshes_cards_at_once`.
        if reason.refreshes_cards_at_once() && self.may_have_cards(&grant)? {
            commit
                .effects
                .push(Effect::RefreshGrantCards { grant: grant.id });
        }
        // The holder is told once the connector confirms ([`Engine::deprovisioned`]): until
        // then the access may still be there, and "revoked" would not be true.
        commit
            .grants
            .push((grant.clone(), Expect::Version(stored.version)));
        Ok(grant)
    }

    /// The holder is done with their access.
    #[tracing::instrument(name = "end_early", skip_all, fields(grant = %id, request = tracing::field::Empty))]
    pub fn end_early(&self, actor: &Actor, id: GrantId) -> Result<Grant, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let person = world.acting_person(actor)?;
            let stored = self.load_grant(id)?;
            if stored.value.person != person.id {
                return Err(EngineError::NotAllowed(format!(
                    "{id} is not yours; only {} can end it",
                    stored.value.person
                )));
            }
            let mut commit = Commit::default();
            let grant = self.queue_revocation(
                stored,
                RevokeReason::EndedEarly,
                actor,
                self.now(),
                &mut commit,
            )?;
            self.commit(commit)?;
            Ok(grant)
        })
    }

    /// An admin or an owner of the resource takes access away.
    #[tracing::instrument(name = "revoke", skip_all, fields(grant = %id, request = tracing::field::Empty))]
    pub fn revoke(&self, actor: &Actor, id: GrantId, why: &str) -> Result<Grant, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let person = world.acting_person(actor)?;
            let stored = self.load_grant(id)?;
            let owner = world
                .policy
                .resource(&stored.value.resource)
                .is_some_and(|r| r.owners.iter().any(|s| s.includes(person)));
            if !owner && !world.policy.is_admin(person) {
                return Err(EngineError::NotAllowed(format!(
                    "only an admin or an owner of {} can revoke {id}",
                    stored.value.resource
                )));
            }
            let why = read_reason(why).map_err(|e| EngineError::Refused(e.into()))?;
            let why = if why.is_empty() {
                "no reason given".to_owned()
            } else {
                why
            };
            let reason = RevokeReason::Revoked {
                by: person.id.clone(),
                why,
            };
            let mut commit = Commit::default();
            let grant = self.queue_revocation(stored, reason, actor, self.now(), &mut commit)?;
            self.commit(commit)?;
            Ok(grant)
        })
    }

    /// The post-hoc review of emergency access: confirm it, or flag it and take it back.
    #[tracing::instrument(name = "review_emergency", skip_all, fields(grant = %id, request = tracing::field::Empty))]
    pub fn review_emergency(
        &self,
        actor: &Actor,
        id: GrantId,
        confirm: bool,
        note: &str,
    ) -> Result<Grant, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let reviewer = world.acting_person(actor)?.id.clone();
            let stored = self.load_grant(id)?;
            let version = stored.version;
            let mut grant = stored.value;
            let now = self.now();
            let outcome = if confirm {
                ReviewOutcome::Confirmed {
                    by: reviewer.clone(),
                    at: now,
                }
            } else {
                ReviewOutcome::Flagged {
                    by: reviewer.clone(),
                    at: now,
                    note: note.to_owned(),
                }
            };
            grant.review(outcome)?;
            let mut commit = Commit::default();
            let action = if confirm {
                AuditAction::EmergencyConfirmed
            } else {
                AuditAction::EmergencyFlagged
            };
            commit.events.push(
                AuditEvent::new(now, actor.clone(), action)
                    .grant(id)
                    .request(grant.request)
                    .reason(note)
                    .policy("emergency"),
            );
            if !confirm {
                commit.effects.push(Effect::Alert {
                    alert: Alert::EmergencyFlagged {
                        grant: id,
                        by: reviewer,
                    },
                });
                if grant.is_live() {
                    let reviewed = Versioned {
                        value: grant,
                        version,
                    };
                    let revoked = self.queue_revocation(
                        reviewed,
                        RevokeReason::ReviewSaidNo {
                            by: actor.person_id().cloned(),
                        },
                        actor,
                        now,
                        &mut commit,
                    )?;
                    self.commit(commit)?;
                    return Ok(revoked);
                }
            }
            // The reviewers' Confirm / Flag buttons no longer apply (a revocation above
            // queues the same refresh).
            commit.effects.push(Effect::RefreshGrantCards { grant: id });
            commit
                .grants
                .push((grant.clone(), Expect::Version(version)));
            self.commit(commit)?;
            Ok(grant)
        })
    }

    /// A person leaves: every live grant is revoked and every pending request cancelled.
    pub fn offboard(&self, actor: &Actor, person: &PersonId) -> Result<Offboarded, EngineError> {
        self.with_retries(|| {
            let world = self.world();
            let admin = world.acting_person(actor)?;
            if !world.policy.is_admin(admin) {
                return Err(EngineError::NotAllowed(
                    "only an admin can offboard someone".to_owned(),
                ));
            }
            if world.directory.person(person).is_none() && self.store.grants_of(person)?.is_empty()
            {
                return Err(EngineError::NotFound(format!(
                    "Gatehouse knows nobody called `{person}`"
                )));
            }
            self.offboard_unchecked(actor, person)
        })
    }

    /// Offboarding without the admin check, for directory reloads (the leaver is gone).
    pub fn offboard_unchecked(
        &self,
        actor: &Actor,
        person: &PersonId,
    ) -> Result<Offboarded, EngineError> {
        let now = self.now();
        let mut commit = Commit::default();
        let mut revoked = Vec::new();
        for grant in self
            .store
            .grants_of(person)?
            .into_iter()
            .filter(Grant::is_live)
        {
            let stored = self.load_grant(grant.id)?;
            revoked.push(
                self.queue_revocation(stored, RevokeReason::Offboarded, actor, now, &mut commit)?
                    .id,
            );
        }
        let mut cancelled = 0;
        for request in self.store.requests_of(person)? {
            let Some(stored) = self.store.request(request.id)? else {
                continue;
            };
            if !stored.value.is_pending() {
                continue;
            }
            let mut request = stored.value;
            request.state = RequestState::Cancelled {
                by: person.clone(),
                at: now,
            };
            commit.events.push(
                AuditEvent::new(now, actor.clone(), AuditAction::RequestCancelled)
                    .request(request.id)
                    .reason("the requester left"),
            );
            commit.effects.push(Effect::RefreshCards {
                request: request.id,
            });
            commit.requests.push(RequestWrite {
                request,
                expect: Expect::Version(stored.version),
                due: None,
            });
            cancelled += 1;
        }
        commit.events.push(AuditEvent::new(
            now,
            actor.clone(),
            AuditAction::PersonOffboarded {
                person: person.clone(),
                grants: revoked.len(),
                requests: cancelled,
            },
        ));
        commit.effects.push(Effect::Alert {
            alert: Alert::PersonOffboarded {
                person: person.clone(),
                grants: revoked.len(),
            },
        });
        self.commit(commit)?;
        Ok(Offboarded {
            grants: revoked,
            requests: cancelled,
        })
    }

    /// Starts revoking every live grant whose end has come; returns how many. Grants are
    /// revoked [`TOGETHER`] to a commit, and many such commits are made on a few threads,
    /// whose commits the store applies together: catching up with a long list after a restart
    /// costs a flush per batch of batches, not one per grant. A commit that finds one of its
    /// grants changed meanwhile is made again grant by grant, so one change holds up nothing.
    pub fn revoke_expired_grants(&self, limit: usize) -> Result<usize, EngineError> {
        const THREADS: usize = 8;
        let now = self.now();
        let due: Vec<GrantId> = self
            .store
            .grants_expiring(now, limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let revoke_all = |ids: &[GrantId]| -> Result<usize, EngineError> {
            let mut done = 0;
            for together in ids.chunks(TOGETHER) {
                done += self.revoke_expired_together(together, now)?;
            }
            Ok(done)
        };
        if due.len() <= TOGETHER {
            return revoke_all(&due);
        }
        let per_thread = due.len().div_ceil(THREADS).max(TOGETHER);
        // The scheduler's commits are leader work: so are those of the threads it starts.
        let leader = crate::store::is_leader_work();
        std::thread::scope(|scope| {
            let workers: Vec<_> = due
                .chunks(per_thread)
                .map(|ids| {
                    scope.spawn(move || crate::store::leader_work_if(leader, || revoke_all(ids)))
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .sum()
        })
    }

    /// Starts revoking those of `ids` that are live and whose end has come by `now`, in one
    /// commit; how many. On a conflict, one commit each.
    fn revoke_expired_together(
        &self,
        ids: &[GrantId],
        now: DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        let mut commit = Commit::default();
        let mut revoked = 0;
        for id in ids {
            let _span = tracing::info_span!("expire", grant = %id, request = tracing::field::Empty)
                .entered();
            let stored = self.load_grant(*id)?;
            if !is_due(&stored.value, now) {
                continue;
            }
            self.queue_revocation(
                stored,
                RevokeReason::Expired,
                &Actor::System,
                now,
                &mut commit,
            )?;
            revoked += 1;
        }
        if revoked == 0 {
            return Ok(0);
        }
        match self.commit(commit) {
            Ok(_) => Ok(revoked),
            Err(StoreError::Conflict) => {
                let mut done = 0;
                for id in ids {
                    done += usize::from(self.revoke_if_expired(*id, now)?);
                }
                Ok(done)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Starts revoking grant `id` if it is still live and its end has come by `now`.
    fn revoke_if_expired(&self, id: GrantId, now: DateTime<Utc>) -> Result<bool, EngineError> {
        let _span =
            tracing::info_span!("expire", grant = %id, request = tracing::field::Empty).entered();
        self.with_retries(|| {
            let stored = self.load_grant(id)?;
            if !is_due(&stored.value, now) {
                return Ok(false);
            }
            let mut commit = Commit::default();
            self.queue_revocation(
                stored,
                RevokeReason::Expired,
                &Actor::System,
                now,
                &mut commit,
            )?;
            self.commit(commit)?;
            Ok(true)
        })
    }
}

/// How many expired grants one commit revokes: enough that a flush serves many, few enough
/// that the commit stays one small journal value (about 1 KB a grant).
pub const TOGETHER: usize = 32;

/// Whether `grant` is live and its end has come by `now`.
fn is_due(grant: &Grant, now: DateTime<Utc>) -> bool {
    grant.is_live() && grant.expires_at.is_some_and(|e| e <= now)
}
