//! The outbound half of Slack: [`SlackChat`] is the [`ChatPort`] the outbox delivers effects
//! through when Slack is enabled. It turns an effect into messages rendered from
//! templates/slack/*.j2 — approval cards DMed to approvers and updated without buttons once
//! their stage is decided, DMs to people, alerts in `slack.security_channel`, review cards —
//! and publishes App Home tabs. Slack's failures are sorted for the outbox: rate limits (with
//! their Retry-After), 5xx and network trouble are `Transient`, so the outbox retries; what
//! Slack will never accept (an unknown user, blocks it refuses) is `Permanent`, and logged.

mod api;
mod cards;
mod messages;
mod refresh;

use std::sync::Arc;

use serde::Serialize;

use super::Slack;
use crate::connector::BoxFuture;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::directory::{Person, Platform};
use crate::domain::effect::Effect;
use crate::engine::Engine;
use crate::outbox::{ChatError, ChatPort, Posted};
use crate::store::Store;

pub use api::{call_outcome, classify};

/// One attempt at delivering an effect: its key (the same for every attempt) and which
/// attempt this is, from 1. Every message posted carries the key (see [`api`]), so a retry
/// can find a post whose answer was lost instead of posting it twice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivery<'a> {
    key: &'a str,
    attempt: u32,
}

impl Delivery<'_> {
    /// Whether an earlier attempt may have posted without hearing back.
    fn is_retry(&self) -> bool {
        self.attempt > 1
    }
}

/// Delivers the outbox's chat effects to Slack, for an engine on store `S`.
pub struct SlackChat<S> {
    slack: Arc<Slack>,
    engine: Arc<Engine<S>>,
}

impl<S: Store> SlackChat<S> {
    pub fn new(slack: Arc<Slack>, engine: Arc<Engine<S>>) -> Self {
        Self { slack, engine }
    }

    async fn deliver_effect(
        &self,
        effect: &Effect,
        delivery: Delivery<'_>,
    ) -> Result<Posted, ChatError> {
        match effect {
            Effect::ApprovalCard {
                request,
                approver,
                stage,
            } => {
                self.approval_card(*request, approver, *stage, delivery)
                    .await
            }
            Effect::RefreshCards { request } => {
                self.refresh_cards(*request).await?;
                Ok(Vec::new())
            }
            Effect::Notify { to, notice } => self.notify(to, notice, delivery).await,
            Effect::Alert { alert } => self.alert(alert, delivery).await.map(|()| Vec::new()),
            Effect::ReviewCard {
                campaign,
                grant,
                reviewer,
            } => {
                self.review_card(*campaign, *grant, reviewer, delivery)
                    .await
            }
            Effect::RefreshReviewCards { campaign, grant } => {
                self.refresh_review_cards(*campaign, *grant).await?;
                Ok(Vec::new())
            }
            Effect::RefreshGrantCards { grant } => {
                self.refresh_grant_cards(*grant).await?;
                Ok(Vec::new())
            }
            // Connector work: never routed to a chat port.
            Effect::Provision { .. } | Effect::Deprovision { .. } => Ok(Vec::new()),
        }
    }

    /// Renders `template` with `context`; a template that fails is our bug, never Slack's.
    fn render(
        &self,
        template: &str,
        context: impl Serialize,
    ) -> Result<serde_json::Value, ChatError> {
        self.slack.templates.render(template, context).map_err(|e| {
            tracing::error!(template, error = %e, "a Slack message could not be rendered");
            ChatError::Permanent(format!("{template} could not be rendered: {e}"))
        })
    }

    /// Whether a card for effect `key` was already posted and recorded under `about`.
    fn already_posted(&self, about: &CardKey, key: &str) -> Result<bool, ChatError> {
        let cards = self.engine.store().cards(about).map_err(store_error)?;
        Ok(cards.iter().any(|c| c.effect_key == key))
    }

    /// DMs `message` (rendered from `template`) to `person` and says where it landed.
    async fn dm(
        &self,
        person: &Person,
        slack_user: &str,
        template: &str,
        message: serde_json::Value,
        delivery: Delivery<'_>,
    ) -> Result<PostedCard, ChatError> {
        let channel = self.open_dm(slack_user).await?;
        let ts = self.post(&channel, template, message, delivery).await?;
        Ok(PostedCard {
            platform: Platform::Slack,
            channel,
            message: ts,
            recipient: person.id.clone(),
            effect_key: delivery.key.to_owned(),
        })
    }
}

impl<S: Store> ChatPort for SlackChat<S> {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        let delivery = Delivery { key, attempt };
        Box::pin(self.deliver_effect(effect, delivery))
    }
}

/// The chat port a served Gatehouse delivers through: [`SlackChat`] on the shared Slack
/// adapter when `[slack]` is enabled, else [`LogChat`](crate::outbox::LogChat).
pub fn chat_port<S: Store>(slack: Option<Arc<Slack>>, engine: Arc<Engine<S>>) -> Arc<dyn ChatPort> {
    match slack {
        Some(slack) => Arc::new(SlackChat::new(slack, engine)),
        None => Arc::new(crate::outbox::LogChat),
    }
}

/// The person and their Slack user id, when they are to be reached on Slack at all: they have
/// a Slack id, and Slack is among their `notify` platforms (or they named none).
fn reachable(person: Option<&Person>) -> Option<(&Person, &str)> {
    let person = person?;
    let slack = person.slack.as_deref()?;
    let wants = person.notify.is_empty() || person.notify.contains(&Platform::Slack);
    wants.then_some((person, slack))
}

/// Cards are for people Slack knows; an approver with no Slack id gets theirs elsewhere.
fn slack_id(person: Option<&Person>) -> Option<(&Person, &str)> {
    let person = person?;
    Some((person, person.slack.as_deref()?))
}

fn store_error(e: crate::store::StoreError) -> ChatError {
    ChatError::transient(format!("the store could not be read: {e}"))
}

fn missing(what: impl std::fmt::Display) -> ChatError {
    ChatError::Permanent(format!("{what} no longer exists"))
}
