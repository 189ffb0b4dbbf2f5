//! What connectors report back through the outbox: access given, access taken back, or a
//! failure. Each result is queued into `then`, which the outbox commits together with the
//! removal of the effect, so a result is recorded exactly once.

use super::{Engine, EngineError};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::effect::{Alert, Effect, Notice};
use crate::domain::grant::{Grant, GrantState};
use crate::domain::ids::GrantId;
use crate::store::{Commit, Expect, Versioned};

impl Engine {
    fn grant_in(
        &self,
        id: GrantId,
        state: fn(&GrantState) -> bool,
    ) -> Result<Option<Versioned<Grant>>, EngineError> {
        let stored = self
            .store
            .grant(id)?
            .ok_or_else(|| EngineError::NotFound(format!("there is no grant {id}")))?;
        Ok(state(&stored.value.state).then_some(stored))
    }

    /// The connector gave the access: the grant is active. `detail` goes to the audit log.
    pub fn provisioned(
        &self,
        id: GrantId,
        detail: &str,
        then: &mut Commit,
    ) -> Result<(), EngineError> {
        // Revoked before the connector answered: the revocation that follows takes it back.
        let Some(stored) = self.grant_in(id, |s| matches!(s, GrantState::Provisioning))? else {
            return Ok(());
        };
        let mut grant = stored.value;
        let now = self.now();
        grant.activate(now)?;
        then.events.push(
            AuditEvent::new(now, Actor::System, AuditAction::GrantProvisioned)
                .grant(id)
                .request(grant.request)
                .reason(detail),
        );
        then.grants.push((grant, Expect::Version(stored.version)));
        Ok(())
    }

    /// The connector could not give the access, for good: the holder and the security channel
    /// are told, and whatever the connector may have changed before failing is taken back (a
    /// revoke queued with the failure); the grant is failed once that revoke is confirmed.
    pub fn provisioning_failed(
        &self,
        id: GrantId,
        error: &str,
        then: &mut Commit,
    ) -> Result<(), EngineError> {
        let Some(stored) = self.grant_in(id, |s| matches!(s, GrantState::Provisioning))? else {
            return Ok(());
        };
        let mut grant = stored.value;
        let now = self.now();
        grant.fail(error, now)?;
        then.events.push(
            AuditEvent::new(
                now,
                Actor::System,
                AuditAction::ProvisioningFailed {
                    error: error.to_owned(),
                },
            )
            .grant(id)
            .request(grant.request),
        );
        then.effects.push(Effect::Deprovision { grant: id });
        then.effects.push(Effect::Alert {
            alert: Alert::ProvisioningFailed {
                grant: id,
                error: error.to_owned(),
            },
        });
        then.effects.push(Effect::Notify {
            to: grant.person.clone(),
            notice: Notice::ProvisioningFailed {
                grant: id,
                error: error.to_owned(),
            },
        });
        then.grants.push((grant, Expect::Version(stored.version)));
        Ok(())
    }

    /// The connector took the access back: the grant is revoked (failed, when it was the undo
    /// of a failed provisioning), and its holder is told now that it is true.
    pub fn deprovisioned(
        &self,
        id: GrantId,
        detail: &str,
        then: &mut Commit,
    ) -> Result<(), EngineError> {
        let Some(stored) = self.grant_in(id, |s| matches!(s, GrantState::Revoking { .. }))? else {
            return Ok(());
        };
        let mut grant = stored.value;
        let now = self.now();
        let reason = match &grant.state {
            GrantState::Revoking { reason, .. } => reason.to_string(),
            _ => String::new(),
        };
        let undone = grant.is_undoing();
        grant.finish_revoke(now)?;
        let detail = if undone {
            format!("taken back after the failed provisioning: {detail}")
        } else {
            detail.to_owned()
        };
        then.events.push(
            AuditEvent::new(now, Actor::System, AuditAction::GrantRevoked)
                .grant(id)
                .request(grant.request)
                .reason(detail),
        );
        if self.may_have_cards(&grant)? {
            then.effects.push(Effect::RefreshGrantCards { grant: id });
        }
        if !undone {
            // Told only now: until the connector confirms, the access may still be there.
            then.effects.push(Effect::Notify {
                to: grant.person.clone(),
                notice: Notice::Revoked { grant: id, reason },
            });
        }
        then.grants.push((grant, Expect::Version(stored.version)));
        Ok(())
    }

    /// A revocation keeps failing: the access may still be there. Audited and alerted; the
    /// outbox keeps trying (daily), because access must never silently stay.
    pub fn revocation_failing(
        &self,
        id: GrantId,
        error: &str,
        attempts: u32,
    ) -> Result<(), EngineError> {
        let Some(stored) = self.grant_in(id, |s| matches!(s, GrantState::Revoking { .. }))? else {
            return Ok(());
        };
        let mut grant = stored.value;
        if let GrantState::Revoking {
            attempts: recorded, ..
        } = &mut grant.state
        {
            *recorded = attempts;
        }
        let now = self.now();
        let mut effects = vec![Effect::Alert {
            alert: Alert::RevocationFailed {
                grant: id,
                error: error.to_owned(),
            },
        }];
        // A grant that ran out still offers Extend (`RevokeReason::refreshes_cards_at_once`):
        // the holder sees that it is being taken back.
        if self.may_have_cards(&grant)? {
            effects.push(Effect::RefreshGrantCards { grant: id });
        }
        let commit = Commit {
            events: vec![
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::RevocationFailed {
                        error: error.to_owned(),
                        attempts,
                    },
                )
                .grant(id)
                .request(grant.request),
            ],
            effects,
            grants: vec![(grant, Expect::Version(stored.version))],
            ..Commit::default()
        };
        self.commit(commit)?;
        Ok(())
    }
}
