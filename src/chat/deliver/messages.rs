//! Everything outbound but approval cards: notices DMed to people, alerts in the security
//! channel, and access-review cards.

use serde_json::json;

use super::{CardPort, Delivery, Transport, missing, store_error};
use crate::chat::views::{
    AlertView, CampaignItemView, GrantView, NoticeView, RequestView, alert_grant, notice_subject,
};
use crate::domain::anchor::ChainHead;
use crate::domain::card::CardKey;
use crate::domain::effect::{Alert, Notice};
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::outbox::{ChatError, Posted};

impl<T: Transport> CardPort<T> {
    /// DMs a notice. Notices with buttons are recorded under what they are about
    /// ([`Notice::card`]), so they can be found again and closed with it.
    pub(super) async fn notify(
        &self,
        to: &PersonId,
        notice: &Notice,
        delivery: Delivery<'_>,
    ) -> Result<Posted, ChatError> {
        let world = self.engine.world();
        let Some((person, user)) = self.reach(world.directory.person(to)) else {
            return Ok(Vec::new());
        };
        let (request, grant) = notice_subject(notice);
        let card = notice.card();
        if let Some(about) = &card
            && self.already_posted(about, delivery.key)?
        {
            return Ok(Vec::new());
        }
        // A notice about a grant alone (an emergency review) shows the request it came
        // from too: what was asked, and why.
        let request = match (request, grant) {
            (Some(id), _) => Some(id),
            (None, Some(grant)) => Some(self.grant(grant)?.request),
            (None, None) => None,
        };
        let request = request.map(|id| self.request_view(id)).transpose()?;
        let grant = self.grant_view(grant)?;
        let view = NoticeView::new(notice, request, grant, &world.directory);
        let template = self.template("notice");
        let message = self.render(&template, json!({ "notice": view }))?;
        let posted = self.dm(person, user, &template, message, delivery).await?;
        Ok(card.map(|about| (about, posted)).into_iter().collect())
    }

    /// Posts an alert in this platform's security channel, when one is configured.
    pub(super) async fn alert(
        &self,
        alert: &Alert,
        delivery: Delivery<'_>,
    ) -> Result<(), ChatError> {
        // Every alert publishes the audit chain's head out of band.
        let head = self.engine.store().chain_head().map_err(store_error)?;
        let Some(channel) = self.transport.security_channel() else {
            let platform = self.transport.template_dir();
            let head = head.as_ref().map(ChainHead::short).unwrap_or_default();
            tracing::info!(
                ?alert,
                audit_head = %head,
                "no {platform}.security_channel: alert not posted there"
            );
            return Ok(());
        };
        let world = self.engine.world();
        let about = alert_grant(alert);
        let asked = match about {
            Some(grant) => Some(self.request_view(self.grant(grant)?.request)?),
            None => None,
        };
        let view = AlertView::new(alert, self.grant_view(about)?, &world.directory)
            .with_request(asked)
            .with_audit_head(head.as_ref());
        let template = self.template(match alert {
            Alert::Impersonation { .. } => "impersonation_alert",
            _ => "alert",
        });
        let message = self.render(&template, json!({ "alert": view }))?;
        self.transport
            .post(channel, &template, message, delivery)
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
        let Some((person, user)) = self.reach(world.directory.person(reviewer)) else {
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
        let template = self.template("review_card");
        let message = self.render(&template, json!({ "item": view }))?;
        let posted = self.dm(person, user, &template, message, delivery).await?;
        Ok(vec![(about, posted)])
    }

    fn request_view(&self, id: RequestId) -> Result<RequestView, ChatError> {
        let world = self.engine.world();
        Ok(RequestView::new(
            &self.request(id)?,
            &world.directory,
            &world.policy,
        ))
    }

    pub(super) fn grant_view(&self, id: Option<GrantId>) -> Result<Option<GrantView>, ChatError> {
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
