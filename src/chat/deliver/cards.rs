//! Approval cards: one DM per approver of a stage, and what each becomes as the request
//! moves on. A card keeps working buttons only while its recipient can still decide its
//! stage; once the stage is complete (or the recipient has approved it, or the request is
//! over) the card shows the outcome and who decided, without buttons.

use serde_json::json;

use super::{CardPort, Delivery, Transport, required};
use crate::chat::views::{NoticeView, PersonView, RequestView, join_names};
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::effect::Notice;
use crate::domain::ids::{PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::engine::{Lookup, World};
use crate::outbox::{ChatError, Posted};

impl<T: Transport> CardPort<T> {
    pub(super) async fn approval_card(
        &self,
        id: RequestId,
        approver: &PersonId,
        stage: usize,
        delivery: Delivery<'_>,
    ) -> Result<Posted, ChatError> {
        let world = self.facade.world();
        let Some((person, user)) = self.reach(world.directory.person(approver)) else {
            return Ok(Vec::new());
        };
        let about = CardKey::Request { request: id };
        let found = self
            .read(Lookup {
                request: Some(id),
                cards: Some(about),
                ..Lookup::default()
            })
            .await?;
        if self.already_posted(&found.cards, delivery.key) {
            return Ok(Vec::new());
        }
        let request = required(found.request, id)?;
        let moved_on = request.state.is_terminal() || request.current_stage != stage;
        if moved_on && !delivery.is_retry() {
            // Decided before the card went out: a card now would only be stale.
            return Ok(Vec::new());
        }
        let (template, message) = self.card_for(&request, &world, stage, approver)?;
        // On a retry, a card an earlier attempt posted is found again, as it was posted; the
        // outbox brings it up to date once it is recorded.
        let posted = self.dm(person, user, &template, message, delivery).await?;
        Ok(vec![(about, posted)])
    }

    /// Brings every card of the request on this platform up to date. One card failing does not stop the
    /// others; a transient failure of any makes the whole refresh retried.
    pub(super) async fn refresh_cards(&self, id: RequestId) -> Result<(), ChatError> {
        let found = self
            .read(Lookup {
                request: Some(id),
                cards: Some(CardKey::Request { request: id }),
                ..Lookup::default()
            })
            .await?;
        let request = required(found.request, id)?;
        let world = self.facade.world();
        let cards = found.cards;
        let mut retry: Option<ChatError> = None;
        let platform = self.transport.platform();
        for card in cards.iter().filter(|c| c.platform == platform) {
            let message = match stage_of(card) {
                Some(stage) => self.card_for(&request, &world, stage, &card.recipient),
                // The requester's "submitted" DM follows the request: where it stands and
                // what it asks for now, while pending; once over, a short status line
                // (the outcome itself comes as a new DM, which notifies).
                None if card.recipient == request.requester => self.submitted_dm(&request, &world),
                // A reminder's Approve…: left as it is while the request is pending,
                // closed once it is over.
                None if request.state.is_terminal() => {
                    self.card_for(&request, &world, request.current_stage, &card.recipient)
                }
                None => continue,
            };
            let updated = match message {
                Ok((template, message)) => {
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
                Err(e) => Err(e),
            };
            match updated {
                Ok(()) => {}
                Err(e @ ChatError::Transient { .. }) => {
                    tracing::warn!(request = %id, recipient = %card.recipient, error = %e, "a card could not be updated; will retry");
                    retry = Some(later(retry, e));
                }
                Err(e) => {
                    tracing::warn!(request = %id, recipient = %card.recipient, error = %e, "a card can never be updated; left as it is");
                }
            }
        }
        retry.map_or(Ok(()), Err)
    }

    /// The requester's "submitted" DM as it should read now.
    fn submitted_dm(
        &self,
        request: &AccessRequest,
        world: &World,
    ) -> Result<(String, serde_json::Value), ChatError> {
        let view = RequestView::new(request, &world.directory, &world.policy);
        let notice = Notice::Submitted {
            request: request.id,
        };
        let view = NoticeView::new(&notice, Some(view), None, &world.directory);
        let template = self.template("notice");
        let message = self.render(&template, json!({ "notice": view }))?;
        Ok((template, message))
    }

    /// The card `recipient` should see now for `stage` of `request`: with buttons while they
    /// can still decide it, else its outcome.
    fn card_for(
        &self,
        request: &AccessRequest,
        world: &World,
        stage: usize,
        recipient: &PersonId,
    ) -> Result<(String, serde_json::Value), ChatError> {
        let mut view = RequestView::new(request, &world.directory, &world.policy);
        let decided = self.template("approval_card_decided");
        if request.state.is_terminal() {
            let message = self.render(&decided, json!({ "request": view }))?;
            return Ok((decided, message));
        }
        let Some(planned) = request.plan.stages.get(stage) else {
            return Err(ChatError::Permanent(format!(
                "{} has no stage {stage}",
                request.id
            )));
        };
        let open = stage == request.current_stage
            && !planned.is_complete()
            && !planned.has_approved(recipient);
        if open {
            let card = self.template("approval_card");
            let message = self.render(&card, json!({ "request": view }))?;
            return Ok((card, message));
        }
        let names: Vec<String> = planned
            .approvals
            .iter()
            .map(|a| PersonView::new(&a.by, &world.directory).name)
            .collect();
        let who = if names.is_empty() {
            "nobody yet".to_owned()
        } else {
            join_names(&names)
        };
        view.state = "in progress";
        view.outcome = Some(if planned.is_complete() {
            format!(
                "Approved by {who} ({} done); now {}",
                planned.name,
                request.stage_summary()
            )
        } else {
            format!("Approved by {who}; waiting for {}", request.stage_summary())
        });
        let message = self.render(&decided, json!({ "request": view }))?;
        Ok((decided, message))
    }
}

/// The stage a card was posted for, from its effect key `card:{request}:{stage}:{approver}`.
fn stage_of(card: &PostedCard) -> Option<usize> {
    let mut parts = card.effect_key.split(':');
    (parts.next() == Some("card")).then_some(())?;
    parts.nth(1)?.parse().ok()
}

/// Of two transient failures, the one asking for the longer wait.
pub(super) fn later(kept: Option<ChatError>, new: ChatError) -> ChatError {
    let wait = |e: &ChatError| match e {
        ChatError::Transient { retry_after, .. } => *retry_after,
        ChatError::Permanent(_) => None,
    };
    match kept {
        Some(kept) if wait(&kept) >= wait(&new) => kept,
        _ => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::Platform;
    use std::time::Duration;

    fn card(key: &str) -> PostedCard {
        PostedCard {
            platform: Platform::Slack,
            channel: "D1".into(),
            message: "1.2".into(),
            recipient: "bob".into(),
            effect_key: key.into(),
        }
    }

    #[test]
    fn a_card_knows_the_stage_it_was_posted_for() {
        assert_eq!(stage_of(&card("card:AR-7:2:bob")), Some(2));
        assert_eq!(stage_of(&card("effect:12")), None);
    }

    #[test]
    fn the_longest_retry_after_wins() {
        let short = ChatError::rate_limited("a", Some(Duration::from_secs(1)));
        let long = ChatError::rate_limited("b", Some(Duration::from_secs(5)));
        assert_eq!(later(Some(long.clone()), short.clone()), long);
        assert_eq!(later(Some(short), long.clone()), long);
    }
}
