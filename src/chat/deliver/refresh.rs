//! Review cards and messages with buttons about a grant, brought up to date once there is
//! nothing left to click: a review item once a reviewer (or the deadline) decided it, an
//! emergency review once it has an outcome, an expiry warning once the access ended. A card
//! still open is left as it is, so a refresh that arrives early changes nothing.

use serde_json::{Value, json};

use super::{CardPort, Transport, required};
use crate::chat::views::{CampaignItemView, GrantCardView};
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::ids::{CampaignId, GrantId};
use crate::engine::Lookup;
use crate::outbox::ChatError;

impl<T: Transport> CardPort<T> {
    /// Re-renders every review card on this platform of `grant` in `campaign` once the item is decided
    /// or the campaign closed: the outcome, and no Keep / Revoke buttons.
    pub(super) async fn refresh_review_cards(
        &self,
        campaign: CampaignId,
        grant: GrantId,
    ) -> Result<(), ChatError> {
        let world = self.facade.world();
        let about = CardKey::Review { campaign, grant };
        let found = self
            .read(Lookup {
                grant: Some(grant),
                campaign: Some(campaign),
                cards: Some(about),
                ..Lookup::default()
            })
            .await?;
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
        if !view.decided {
            return Ok(());
        }
        let template = self.template("review_card");
        let message = self.render(&template, json!({ "item": view }))?;
        self.update_all(&about, &found.cards, |_| {
            Ok(Some((template.clone(), message.clone())))
        })
        .await
    }

    /// Re-renders every message with buttons on this platform about `grant` whose buttons no longer
    /// work for its recipient (see [`GrantCardView::decided`]).
    pub(super) async fn refresh_grant_cards(&self, grant: GrantId) -> Result<(), ChatError> {
        let world = self.facade.world();
        let about = CardKey::Grant { grant };
        let found = self
            .read(Lookup {
                grant: Some(grant),
                cards: Some(about),
                ..Lookup::default()
            })
            .await?;
        let record = required(found.grant, grant)?;
        let now = self.facade.now();
        let template = self.template("grant_card_decided");
        self.update_all(&about, &found.cards, |card| {
            let Some(view) = GrantCardView::decided(
                &record,
                &card.recipient,
                &world.directory,
                &world.policy,
                now,
            ) else {
                return Ok(None);
            };
            let message = self.render(&template, json!({ "card": view }))?;
            Ok(Some((template.clone(), message)))
        })
        .await
    }

    /// Updates every card on this platform of `cards` (those recorded under `about`) that
    /// `message_for` has a new message for. One card failing does not stop the others; a
    /// transient failure of any makes the whole refresh retried (updating a card twice
    /// changes nothing).
    async fn update_all(
        &self,
        about: &CardKey,
        cards: &[PostedCard],
        message_for: impl Fn(&PostedCard) -> Result<Option<(String, Value)>, ChatError>,
    ) -> Result<(), ChatError> {
        let mut retry: Option<ChatError> = None;
        let platform = self.transport.platform();
        for card in cards.iter().filter(|c| c.platform == platform) {
            let updated = match message_for(card) {
                Ok(Some((template, message))) => {
                    self.transport
                        .update(
                            &card.channel,
                            &card.message,
                            &card.effect_key,
                            &template,
                            message,
                        )
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
}
