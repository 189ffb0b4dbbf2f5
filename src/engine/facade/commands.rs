//! Commands: what changes state. Each is one use case of the engine, run in one trip, and
//! answers with what the front end shows (the request, the grant, where it stands).

use super::Facade;
use crate::domain::audit::Actor;
use crate::domain::directory::Directory;
use crate::domain::duration::Duration;
use crate::domain::grant::Grant;
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::policy::Policy;
use crate::domain::request::Changes;
use crate::domain::review::Campaign;
use crate::domain::validation::Ask;
use crate::engine::decide::Decided;
use crate::engine::grants::Offboarded;
use crate::engine::{EngineError, ReloadReport, Submitted};

impl Facade {
    /// Asks for access (or emergency access) for `ask.requester`; `actor` is who typed it.
    pub async fn submit(&self, actor: Actor, ask: Ask) -> Result<Submitted, EngineError> {
        self.call(move |engine| engine.submit(&actor, ask)).await
    }

    /// Approves the current stage of a request, with `changes` when not empty; the grant
    /// too once every stage is approved.
    pub async fn approve(
        &self,
        actor: Actor,
        id: RequestId,
        changes: Changes,
    ) -> Result<Decided, EngineError> {
        self.call(move |engine| engine.approve(&actor, id, &changes))
            .await
    }

    /// Rejects a request, with the reason the requester reads.
    pub async fn reject(
        &self,
        actor: Actor,
        id: RequestId,
        reason: String,
    ) -> Result<Decided, EngineError> {
        self.call(move |engine| engine.reject(&actor, id, &reason))
            .await
    }

    /// Withdraws a pending request (its requester, or an admin).
    pub async fn cancel(&self, actor: Actor, id: RequestId) -> Result<Decided, EngineError> {
        self.call(move |engine| engine.cancel(&actor, id)).await
    }

    /// Asks for `by` more on a live grant: a request routed like any other.
    pub async fn extend(
        &self,
        actor: Actor,
        grant: GrantId,
        by: Duration,
        reason: String,
    ) -> Result<Submitted, EngineError> {
        self.call(move |engine| engine.extend(&actor, grant, by, &reason))
            .await
    }

    /// The holder gives a grant back now.
    pub async fn end_early(&self, actor: Actor, grant: GrantId) -> Result<Grant, EngineError> {
        self.call(move |engine| engine.end_early(&actor, grant))
            .await
    }

    /// An admin or an owner of the resource takes a grant away.
    pub async fn revoke(
        &self,
        actor: Actor,
        grant: GrantId,
        reason: String,
    ) -> Result<Grant, EngineError> {
        self.call(move |engine| engine.revoke(&actor, grant, &reason))
            .await
    }

    /// An admin offboards a person: every live grant revoked, every pending request
    /// cancelled.
    pub async fn offboard(
        &self,
        actor: Actor,
        person: PersonId,
    ) -> Result<Offboarded, EngineError> {
        self.call(move |engine| engine.offboard(&actor, &person))
            .await
    }

    /// The post-hoc review of emergency access: confirmed, or flagged and taken back.
    pub async fn review_emergency(
        &self,
        actor: Actor,
        grant: GrantId,
        confirm: bool,
        note: String,
    ) -> Result<Grant, EngineError> {
        self.call(move |engine| engine.review_emergency(&actor, grant, confirm, &note))
            .await
    }

    /// A reviewer keeps or revokes one grant of an access-review campaign.
    pub async fn decide_review(
        &self,
        actor: Actor,
        campaign: CampaignId,
        grant: GrantId,
        keep: bool,
    ) -> Result<Campaign, EngineError> {
        self.call(move |engine| engine.decide_review(&actor, campaign, grant, keep))
            .await
    }

    /// Puts a new policy and directory in force (both already checked) and applies what the
    /// directory change means for people's access.
    pub async fn reload(
        &self,
        policy: Policy,
        directory: Directory,
    ) -> Result<ReloadReport, EngineError> {
        self.call(move |engine| engine.reload(policy, directory))
            .await
    }

    /// Puts a directory read from LDAP in force under the policy already in force, because
    /// the policy files do not pass the checks with it (`problems`): leavers must lose their
    /// access even while the policy waits for a fix. The security channel is told why.
    pub async fn keep_policy_take_directory(
        &self,
        directory: Directory,
        problems: Vec<String>,
    ) -> Result<ReloadReport, EngineError> {
        self.call(move |engine| {
            let policy = engine.world().policy.clone();
            let report = engine.reload(policy, directory)?;
            if let Err(e) = engine.directory_out_of_policy(&problems) {
                tracing::error!(error = %e, "the security channel could not be told");
            }
            Ok(report)
        })
        .await
    }

    /// A directory read from LDAP was held (too many leavers at once): audited, and the
    /// security channel told what to do.
    pub async fn directory_sync_held(
        &self,
        leavers: usize,
        message: String,
    ) -> Result<(), EngineError> {
        self.call(move |engine| engine.directory_sync_held(leavers, &message))
            .await
    }
}
