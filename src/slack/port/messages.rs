//! Everything outbound but approval cards: notices DMed to people, alerts in the security
//! channel, access-review cards, and the App Home tab.

use serde_json::json;

use super::{Delivery, SlackChat, missing, reachable, slack_id, store_error};
use crate::chat::views::{
    AlertView, CampaignItemView, GrantView, HomeView, NoticeView, RequestView, alert_grant,
    notice_subject,
};
use crate::domain::card::CardKey;
use crate::domain::effect::{Alert, Notice};
use crate::domain::grant::Grant;
use crate::domain::ids::{CampaignId, GrantId, PersonId};
use crate::domain::request::AccessRequest;
use crate::outbox::{ChatError, Posted};
use crate::store::Store;

const NOTICE: &str = "slack/notice.j2";
const ALERT: &str = "slack/alert.j2";
const REVIEW: &str = "slack/review_card.j2";
const HOME: &str = "slack/app_home.j2";
/// How many of a person's requests and pending approvals App Home lists.
const HOME_ITEMS: usize = 50;
/// How many pending requests are searched for approvals waiting for someone.
const PENDING_SCAN: usize = 2000;

impl<S: Store> SlackChat<S> {
    /// DMs a notice. Notices with buttons (expiry warning, emergency review) are recorded
    /// under their grant, so they can be found again.
    pub(super) async fn notify(
        &self,
        to: &PersonId,
        notice: &Notice,
        delivery: Delivery<'_>,
    ) -> Result<Posted, ChatError> {
        let world = self.engine.world();
        let Some((person, user)) = reachable(world.directory.person(to)) else {
            return Ok(Vec::new());
        };
        let (request, grant) = notice_subject(notice);
        let card = match notice {
            Notice::ExpiryWarning { grant, .. } | Notice::EmergencyReview { grant } => {
                Some(CardKey::Grant { grant: *grant })
            }
            _ => None,
        };
        if let Some(about) = &card
            && self.already_posted(about, delivery.key)?
        {
            return Ok(Vec::new());
        }
        let request = match request {
            Some(id) => Some(RequestView::new(
                &self.request(id)?,
                &world.directory,
                &world.policy,
            )),
            None => None,
        };
        let grant = self.grant_view(grant)?;
        let view = NoticeView::new(notice, request, grant, &world.directory);
        let message = self.render(NOTICE, json!({ "notice": view }))?;
        let posted = self.dm(person, user, NOTICE, message, delivery).await?;
        Ok(card.map(|about| (about, posted)).into_iter().collect())
    }

    /// Posts an alert in the security channel, when one is configured.
    pub(super) async fn alert(
        &self,
        alert: &Alert,
        delivery: Delivery<'_>,
    ) -> Result<(), ChatError> {
        let Some(channel) = self.slack.security_channel.as_deref() else {
            tracing::info!(
                ?alert,
                "no slack.security_channel: alert not posted to Slack"
            );
            return Ok(());
        };
        let world = self.engine.world();
        let view = AlertView::new(
            alert,
            self.grant_view(alert_grant(alert))?,
            &world.directory,
        );
        let message = self.render(ALERT, json!({ "alert": view }))?;
        self.post(channel, ALERT, message, delivery)
            .await
            .map(|_| ())
    }

    /// DMs a reviewer the card for one grant of an access review.
    pub(super) async fn review_card(
        &self,
        campaign: CampaignId,
        grant: GrantId,
        reviewer: &PersonId,
        delivery: Delivery<'_>,
    ) -> Result<Posted, ChatError> {
        let world = self.engine.world();
        let Some((person, user)) = slack_id(world.directory.person(reviewer)) else {
            return Ok(Vec::new());
        };
        let about = CardKey::Review { campaign, grant };
        if self.already_posted(&about, delivery.key)? {
            return Ok(Vec::new());
        }
        let store = self.engine.store();
        let found = store.campaign(campaign).map_err(store_error)?;
        let campaign = found.ok_or_else(|| missing(campaign))?.value;
        let item = campaign
            .items
            .iter()
            .find(|i| i.grant == grant)
            .ok_or_else(|| missing(format!("{grant} in {}", campaign.id)))?;
        let record = self.grant(grant)?;
        let view = CampaignItemView::new(
            &campaign,
            item,
            &record,
            &world.directory,
            &world.policy,
            self.engine.now(),
        );
        let message = self.render(REVIEW, json!({ "item": view }))?;
        let posted = self.dm(person, user, REVIEW, message, delivery).await?;
        Ok(vec![(about, posted)])
    }

    /// Publishes `person`'s App Home for `slack_user`: their requests, their live grants
    /// and the approvals waiting for them. Called when they open the tab.
    pub async fn publish_home(&self, slack_user: &str, person: &PersonId) -> Result<(), ChatError> {
        let world = self.engine.world();
        let store = self.engine.store();
        let mut requests = store.requests_of(person).map_err(store_error)?;
        requests.truncate(HOME_ITEMS);
        let mut grants = store.grants_of(person).map_err(store_error)?;
        grants.retain(Grant::is_live);
        let mut approvals = store.requests(true, PENDING_SCAN).map_err(store_error)?;
        approvals.retain(|r| waits_for(r, person));
        approvals.truncate(HOME_ITEMS);
        let view = HomeView::new(
            person,
            &requests,
            &grants,
            &approvals,
            &world.directory,
            &world.policy,
            self.engine.now(),
        );
        let home = self.render(HOME, json!({ "home": view }))?;
        self.publish(slack_user, HOME, home).await
    }

    fn grant(&self, id: GrantId) -> Result<Grant, ChatError> {
        let stored = self.engine.store().grant(id).map_err(store_error)?;
        Ok(stored.ok_or_else(|| missing(id))?.value)
    }

    fn grant_view(&self, id: Option<GrantId>) -> Result<Option<GrantView>, ChatError> {
        let Some(id) = id else { return Ok(None) };
        let world = self.engine.world();
        let grant = self.grant(id)?;
        Ok(Some(GrantView::new(
            &grant,
            &world.directory,
            &world.policy,
            self.engine.now(),
        )))
    }
}

/// Whether `person` can decide the current stage of `request` now.
fn waits_for(request: &AccessRequest, person: &PersonId) -> bool {
    request.is_pending()
        && &request.requester != person
        && request
            .plan
            .stages
            .get(request.current_stage)
            .is_some_and(|s| s.approvers.contains(person) && !s.has_approved(person))
}
