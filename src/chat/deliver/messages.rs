//! Everything outbound but approval cards: notices DMed to people, alerts in the security
//! channel, and access-review cards.

use serde_json::json;

use super::{CardPort, Delivery, Transport, required};
use crate::chat::views::{
    AlertView, CampaignItemView, GrantView, NoticeView, RequestView, alert_grant, notice_subject,
};
use crate::domain::anchor::ChainHead;
use crate::domain::card::CardKey;
use crate::domain::effect::{Alert, Notice};
use crate::domain::grant::Grant;
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::engine::{Lookup, Records};
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
        let world = self.facade.world();
        let Some((person, user)) = self.reach(world.directory.person(to)) else {
            return Ok(Vec::new());
        };
        let (request, grant) = notice_subject(notice);
        let card = notice.card();
        // A notice about a grant alone (an emergency review) shows the request it came
        // from too: what was asked, and why.
        let found = self
            .read(Lookup {
                request,
                grant,
                request_of_grant: true,
                cards: card,
                ..Lookup::default()
            })
            .await?;
        if card.is_some() && self.already_posted(&found.cards, delivery.key) {
            return Ok(Vec::new());
        }
        let asked = match (request, grant) {
            (Some(id), _) => Some(self.request_view(&found, id)?),
            (None, Some(grant)) => {
                let from = required(found.grant.as_ref(), grant)?.request;
                Some(self.request_view(&found, from)?)
            }
            (None, None) => None,
        };
        let grant = self.grant_view(&found, grant)?;
        let view = NoticeView::new(notice, asked, grant, &world.directory);
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
        let about = alert_grant(alert);
        // Every alert publishes the audit chain's head out of band.
        let found = self
            .read(Lookup {
                grant: about,
                request_of_grant: true,
                chain_head: true,
                ..Lookup::default()
            })
            .await?;
        let head = found.chain_head.as_ref();
        let Some(channel) = self.transport.security_channel() else {
            let platform = self.transport.template_dir();
            let head = head.map(ChainHead::short).unwrap_or_default();
            tracing::info!(
                ?alert,
                audit_head = %head,
                "no {platform}.security_channel: alert not posted there"
            );
            return Ok(());
        };
        let world = self.facade.world();
        let asked = match about {
            Some(grant) => {
                let from = required(found.grant.as_ref(), grant)?.request;
                Some(self.request_view(&found, from)?)
            }
            None => None,
        };
        let view = AlertView::new(alert, self.grant_view(&found, about)?, &world.directory)
            .with_request(asked)
            .with_audit_head(head);
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
        let world = self.facade.world();
        let Some((person, user)) = self.reach(world.directory.person(reviewer)) else {
            return Ok(Vec::new());
        };
        let about = CardKey::Review { campaign, grant };
        let found = self
            .read(Lookup {
                grant: Some(grant),
                campaign: Some(campaign),
                cards: Some(about),
                ..Lookup::default()
            })
            .await?;
        if self.already_posted(&found.cards, delivery.key) {
            return Ok(Vec::new());
        }
        let campaign = required(found.campaign, campaign)?;
        let item = campaign.items.iter().find(|i| i.grant == grant);
        let item = required(item, format!("{grant} in {}", campaign.id))?;
        let record = required(found.grant, grant)?;
        let view = CampaignItemView::new(
            &campaign,
            item,
            &record,
            &world.directory,
            &world.policy,
            self.facade.now(),
        );
        let template = self.template("review_card");
        let message = self.render(&template, json!({ "item": view }))?;
        let posted = self.dm(person, user, &template, message, delivery).await?;
        Ok(vec![(about, posted)])
    }

    /// The view of request `id`, which `found` must hold.
    fn request_view(&self, found: &Records, id: RequestId) -> Result<RequestView, ChatError> {
        let request: &AccessRequest = required(found.request.as_ref(), id)?;
        let world = self.facade.world();
        Ok(RequestView::new(request, &world.directory, &world.policy))
    }

    /// The view of grant `id`, if any, which `found` must then hold.
    pub(super) fn grant_view(
        &self,
        found: &Records,
        id: Option<GrantId>,
    ) -> Result<Option<GrantView>, ChatError> {
        let Some(id) = id else { return Ok(None) };
        let grant: &Grant = required(found.grant.as_ref(), id)?;
        let world = self.facade.world();
        Ok(Some(GrantView::new(
            grant,
            &world.directory,
            &world.policy,
            self.facade.now(),
        )))
    }
}
