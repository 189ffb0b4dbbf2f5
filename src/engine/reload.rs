//! Putting a new policy and directory in force, and what the directory change means for
//! people: leavers lose everything, movers lose (or get reviewed on) what they are no
//! longer eligible for, joiners and movers receive the bundles that now match them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, World};
use crate::domain::audit::{Actor, AuditAction, AuditEvent};
use crate::domain::directory::{Directory, Person};
use crate::domain::effect::{Effect, Notice};
use crate::domain::grant::{Grant, GrantState, RevokeReason};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::jml::{Birthright, birthrights, compare, mover_review, no_longer_eligible};
use crate::domain::policy::{MoverAction, Policy};
use crate::domain::request::{AccessRequest, RequestKind, RequestState};
use crate::domain::review::Campaign;
use crate::domain::routing::ApprovalPlan;
use crate::store::{Commit, Expect, RequestWrite, Sequence, Store};

/// What a reload did to people's access.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub leavers: Vec<PersonId>,
    pub movers: Vec<PersonId>,
    pub joiners: Vec<PersonId>,
    /// Grants taken away (leavers, and movers under `on_mover = "revoke"`).
    pub revoked: Vec<GrantId>,
    /// Movers' grants sent to their owners for review.
    pub reviews: Vec<CampaignId>,
    /// Grants given by bundles.
    pub bundled: Vec<GrantId>,
}

impl<S: Store> Engine<S> {
    /// Puts `policy` and `directory` in force (both already checked) and applies the
    /// joiners, movers and leavers the directory change makes.
    pub fn reload(
        &self,
        policy: Policy,
        directory: Directory,
    ) -> Result<ReloadReport, EngineError> {
        let old = self.world();
        self.replace_world(policy, directory);
        let new = self.world();
        let people = compare(&old.directory, &new.directory);
        let mut report = ReloadReport {
            leavers: people.leavers.clone(),
            movers: people.movers.clone(),
            joiners: people.joiners.clone(),
            ..ReloadReport::default()
        };
        for leaver in &people.leavers {
            report
                .revoked
                .extend(self.offboard_unchecked(&Actor::System, leaver)?.grants);
        }
        for mover in &people.movers {
            let Some(person) = new.directory.person(mover) else {
                continue;
            };
            let grants = self.store.grants_of(mover)?;
            let lost: Vec<Grant> = no_longer_eligible(&new.policy, person, &grants)
                .into_iter()
                .cloned()
                .collect();
            if !lost.is_empty() {
                match new.policy.defaults.on_mover {
                    MoverAction::Revoke => report.revoked.extend(self.revoke_for_mover(&lost)?),
                    MoverAction::Review => report
                        .reviews
                        .push(self.review_for_mover(mover, &lost, &new)?),
                }
            }
            report
                .bundled
                .extend(self.give_bundles(person, old.directory.person(mover), &new)?);
        }
        for joiner in &people.joiners {
            let Some(person) = new.directory.person(joiner) else {
                continue;
            };
            report
                .bundled
                .extend(self.give_bundles(person, None, &new)?);
        }
        Ok(report)
    }

    fn revoke_for_mover(&self, lost: &[Grant]) -> Result<Vec<GrantId>, EngineError> {
        let now = self.now();
        let mut commit = Commit::default();
        let mut revoked = Vec::new();
        for grant in lost {
            let Some(stored) = self.store.grant(grant.id)?.filter(|g| g.value.is_live()) else {
                continue;
            };
            self.queue_revocation(
                stored,
                RevokeReason::NoLongerEligible,
                &Actor::System,
                now,
                &mut commit,
            )?;
            revoked.push(grant.id);
        }
        self.commit(commit)?;
        Ok(revoked)
    }

    fn review_for_mover(
        &self,
        mover: &PersonId,
        lost: &[Grant],
        world: &World,
    ) -> Result<CampaignId, EngineError> {
        let now = self.now();
        let id = CampaignId(self.store.next_id(Sequence::Campaign)?);
        let name = format!("mover:{mover}");
        let spec = mover_review(&name);
        let campaign = Campaign::start(id, &spec, &world.policy, &world.directory, lost, now);
        let mut commit = Commit::default();
        commit.events.push(
            AuditEvent::new(
                now,
                Actor::System,
                AuditAction::CampaignStarted {
                    review: name,
                    items: campaign.items.len(),
                },
            )
            .campaign(id)
            .reason(format!(
                "{mover} moved and is no longer eligible for {} grant(s)",
                lost.len()
            ))
            .policy("defaults.on_mover = review"),
        );
        super::review::queue_new_campaign(campaign, &mut commit);
        self.commit(commit)?;
        Ok(id)
    }

    /// Gives `person` the bundles that now match them, auto-approved and audited.
    fn give_bundles(
        &self,
        person: &Person,
        before: Option<&Person>,
        world: &World,
    ) -> Result<Vec<GrantId>, EngineError> {
        let grants = self.store.grants_of(&person.id)?;
        let mut given = Vec::new();
        for birthright in birthrights(&world.policy, person, before, &grants) {
            given.push(self.give_birthright(person, &birthright)?);
        }
        Ok(given)
    }

    fn give_birthright(
        &self,
        person: &Person,
        birthright: &Birthright,
    ) -> Result<GrantId, EngineError> {
        let now = self.now();
        let request_id = RequestId(self.store.next_id(Sequence::Request)?);
        let grant_id = GrantId(self.store.next_id(Sequence::Grant)?);
        let policy = format!("bundle:{}", birthright.bundle);
        let request = birthright_request(request_id, grant_id, person, birthright, now);
        let grant = Grant {
            id: grant_id,
            person: person.id.clone(),
            resource: birthright.resource.clone(),
            role: birthright.role.clone(),
            request: request_id,
            granted_at: now,
            expires_at: None,
            emergency: false,
            review: None,
            warned_at: None,
            state: GrantState::Provisioning,
        };
        let commit = Commit {
            events: vec![
                AuditEvent::new(now, Actor::System, AuditAction::RequestAutoApproved)
                    .request(request_id)
                    .reason(request.justification.clone())
                    .policy(policy.clone()),
                AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::GrantCreated {
                        person: person.id.clone(),
                        resource: grant.resource.clone(),
                        role: grant.role.clone(),
                        expires_at: None,
                    },
                )
                .request(request_id)
                .grant(grant_id)
                .policy(policy),
            ],
            effects: vec![
                Effect::Provision { grant: grant_id },
                Effect::Notify {
                    to: person.id.clone(),
                    notice: Notice::Approved {
                        request: request_id,
                        grant: grant_id,
                    },
                },
            ],
            requests: vec![RequestWrite {
                request,
                expect: Expect::New,
                due: None,
            }],
            grants: vec![(grant, Expect::New)],
            ..Commit::default()
        };
        self.commit(commit)?;
        Ok(grant_id)
    }
}

/// The request record a birthright grant is filed under: asked by nobody, approved by policy.
fn birthright_request(
    id: RequestId,
    grant: GrantId,
    person: &Person,
    birthright: &Birthright,
    now: DateTime<Utc>,
) -> AccessRequest {
    AccessRequest {
        id,
        requester: person.id.clone(),
        resource: birthright.resource.clone(),
        role: birthright.role.clone(),
        duration: None,
        justification: format!("birthright access from bundle {}", birthright.bundle),
        fields: BTreeMap::new(),
        kind: RequestKind::Access,
        submitted_at: now,
        submitted_by: Some("directory reload".to_owned()),
        plan: ApprovalPlan {
            workflow: format!("bundle:{}", birthright.bundle).as_str().into(),
            auto_approved: true,
            stages: Vec::new(),
        },
        current_stage: 0,
        stage_started_at: now,
        expires_at: now,
        last_reminded_at: None,
        changes: Vec::new(),
        state: RequestState::Approved { grant, at: now },
    }
}
