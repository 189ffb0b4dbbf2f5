//! Review cards and messages with buttons about a grant, brought up to date once there is
//! nothing left to click: a review item once a reviewer (or the deadline) decided it, an
//! emergency review once it has an outcome, an expiry warning once the access ended. A card
//! still open is left as it is, so a refresh that arrives early changes nothing.

use serde_json::{Value, json};

use super::{SlackChat, missing, store_error};
use crate::chat::views::{CampaignItemView, GrantCardView};
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::directory::Platform;
use crate::domain::grant::Grant;
use crate::domain::ids::{CampaignId, GrantId};
use crate::outbox::ChatError;
use crate::store::Store;

const REVIEW: &str = "slack/review_card.j2";
const GRANT_DECIDED: &str = "slack/grant_card_decided.j2";

impl<S: Store> SlackChat<S> {
    /// Re-renders every Slack review card of `grant` in `campaign` once the item is decided
    /// or the campaign closed: the outcome, and no Keep / Revoke buttons.
    pub(super) async fn refresh_review_cards(
        &self,
        campaign: CampaignId,
        grant: GrantId,
    ) -> Result<(), ChatError> {
        let world = self.engine.world();
        let store = self.engine.store();
        let found = store.campaign(campaign).map_err(store_error)?;
        let campaign = found.ok_or_else(|| missing(campaign))?.value;
        let Some(item) = campaign.items.iter().find(|i| i.grant == grant) else {
            return Err(missing(format!("{grant} in {}", campaign.id)));
        };
        let record = self.stored_grant(grant)?;
        let view = CampaignItemView::new(
            &campaign,
            item,
            &record,
            &world.directory,
            &world.policy,
            self.engine.now(),
        );
        if !view.decided {
            return Ok(());
        }
        let message = self.render(REVIEW, json!({ "item": view }))?;
        let about = CardKey::Review {
            campaign: campaign.id,
            grant,
        };
        self.update_all(&about, |_| Ok(Some((REVIEW, message.clone()))))
            .await
    }

    /// Re-renders every Slack message with buttons about `grant` whose buttons no longer
    /// work for its recipient (see [`GrantCardView::decided`]).
    pub(super) async fn refresh_grant_cards(&self, grant: GrantId) -> Result<(), ChatError> {
        let world = self.engine.world();
        let record = self.stored_grant(grant)?;
        let now = self.engine.now();
        self.update_all(&CardKey::Grant { grant }, |card| {
            let Some(view) = GrantCardView::decided(
                &record,
                &card.recipient,
                &world.directory,
                &world.policy,
                now,
            ) else {
                return Ok(None);
            };
            let message = self.render(GRANT_DECIDED, json!({ "card": view }))?;
            Ok(Some((GRANT_DECIDED, message)))
        })
        .await
    }

    /// chat.update of every Slack card recorded under `about` that `message_for` has a new
    /// message for. One card failing does not stop the others; a transient failure of any
    /// makes the whole refresh retried (updating a card twice changes nothing).
    async fn update_all(
        &self,
        about: &CardKey,
        message_for: impl Fn(&PostedCard) -> Result<Option<(&'static str, Value)>, ChatError>,
    ) -> Result<(), ChatError> {
        let cards = self.engine.store().cards(about).map_err(store_error)?;
        let mut retry: Option<ChatError> = None;
        for card in cards.iter().filter(|c| c.platform == Platform::Slack) {
            let updated = match message_for(card) {
                Ok(Some((template, message))) => {
                    self.update(&card.channel, &card.message, template, message)
                        .await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            match updated {
                Ok(()) => {}
                Err(e @ ChatError::Transient { .. }) => {
                    tracing::warn!(%about, recipient = %card.recipient, error = %e, "a card could not be updated; will retry");
                    retry.get_or_insert(e);
                }
                Err(e) => {
                    tracing::warn!(%about, recipient = %card.recipient, error = %e, "a card can never be updated; left as it is");
                }
            }
        }
        retry.map_or(Ok(()), Err)
    }

    fn stored_grant(&self, id: GrantId) -> Result<Grant, ChatError> {
        let stored = self.engine.store().grant(id).map_err(store_error)?;
        Ok(stored.ok_or_else(|| missing(id))?.value)
    }
}
