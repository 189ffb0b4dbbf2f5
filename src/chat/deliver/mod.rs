//! The outbound half of chat, once for every platform: [`CardPort`] is the [`ChatPort`] that
//! turns an effect into messages — approval cards DMed to approvers and brought up to date
//! as the request moves on, notices to people, alerts in the security channel, review cards —
//! rendered from the platform's templates. What differs between Slack and Discord is only
//! how a message is posted, found again and edited: that is the platform's [`Transport`].
//! [`Fanout`] hands every effect to each running platform, so one organisation can use both.
//!
//! Who gets what where is the domain's rule ([`Person::reached_on`]): a person's `notify`
//! platforms, among those running. What an effect shows (the request, the grant, the cards
//! already posted) is read through the engine's [`Facade`], in one trip per effect.

mod cards;
mod dm_channels;
mod fanout;
mod log;
mod messages;
mod refresh;

use std::sync::Arc;

use serde::Serialize;

pub use dm_channels::DmChannels;
pub use fanout::Fanout;
pub use log::{LogPort, LogTransport};

use crate::chat::render::Templates;
use crate::connector::BoxFuture;
use crate::domain::card::PostedCard;
use crate::domain::directory::{Person, Platform};
use crate::domain::effect::Effect;
use crate::engine::{EngineError, Facade, Lookup, Records};
use crate::outbox::{ChatError, ChatPort, Posted};

/// One attempt at delivering an effect: its key (the same for every attempt) and which
/// attempt this is, from 1. A transport marks what it posts with the key, so that a retry
/// can find a post whose answer was lost instead of posting it twice.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    pub key: &'a str,
    pub attempt: u32,
}

impl Delivery<'_> {
    /// Whether an earlier attempt may have posted without hearing back.
    pub fn is_retry(&self) -> bool {
        self.attempt > 1
    }
}

/// How one platform posts, finds again and edits messages. Messages arrive rendered from
/// the platform's templates (`{dir}/approval_card.j2` …); `template` is passed along only
/// to name it in errors.
///
/// Contract: `post` and `dm` with the same `delivery.key` post at most one message, even when
/// an earlier attempt's answer was lost; failures are sorted into `Transient` (retry later,
/// not before `retry_after` when the platform said) and `Permanent` (never deliverable).
pub trait Transport: Send + Sync + 'static {
    fn platform(&self) -> Platform;
    /// The folder of its templates: `slack` or `discord`.
    fn template_dir(&self) -> &'static str;
    fn templates(&self) -> &Templates;
    /// Where real-time alerts go on this platform, if anywhere.
    fn security_channel(&self) -> Option<&str>;
    /// Whether every person is reached here, whatever their platform ids and `notify`: the
    /// log, standing in for every platform when none is enabled. Their directory id is then
    /// their address.
    fn reaches_everyone(&self) -> bool {
        false
    }
    /// Posts `message` in the DM with `user` (the platform's id); the channel and message id.
    fn dm<'a>(
        &'a self,
        user: &'a str,
        template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<(String, String), ChatError>>;
    /// Posts `message` in `channel`; the message id.
    fn post<'a>(
        &'a self,
        channel: &'a str,
        template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ChatError>>;
    /// Replaces message `id` in `channel`; the same call twice leaves the same message.
    /// `key` is the key of the effect that posted it: the message stays marked with it, so
    /// that a retry of that effect still finds it.
    fn update<'a>(
        &'a self,
        channel: &'a str,
        id: &'a str,
        key: &'a str,
        template: &'a str,
        message: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ChatError>>;
}

/// Delivers the outbox's chat effects through transport `T`.
pub struct CardPort<T> {
    transport: Arc<T>,
    facade: Facade,
    /// Every platform running in this process, for [`Person::reached_on`].
    running: Vec<Platform>,
}

impl<T: Transport> CardPort<T> {
    /// A port for `transport` when it is the only platform running.
    pub fn new(transport: Arc<T>, facade: Facade) -> Self {
        let running = vec![transport.platform()];
        Self::among(transport, facade, running)
    }

    /// A port for `transport` beside the other platforms in `running`.
    pub fn among(transport: Arc<T>, facade: Facade, running: Vec<Platform>) -> Self {
        Self {
            transport,
            facade,
            running,
        }
    }

    pub fn transport(&self) -> &Arc<T> {
        &self.transport
    }

    pub fn facade(&self) -> &Facade {
        &self.facade
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

    /// The platform's template `stem` (`approval_card`): `slack/approval_card.j2`.
    fn template(&self, stem: &str) -> String {
        format!("{}/{stem}.j2", self.transport.template_dir())
    }

    /// Renders `template` with `context`; a template that fails is our bug, never the
    /// platform's.
    fn render(
        &self,
        template: &str,
        context: impl Serialize,
    ) -> Result<serde_json::Value, ChatError> {
        self.transport
            .templates()
            .render(template, context)
            .map_err(|e| {
                tracing::error!(template, error = %e, "a chat message could not be rendered");
                ChatError::Permanent(format!("{template} could not be rendered: {e}"))
            })
    }

    /// The person and their id here, when their messages go to this platform.
    fn reach<'p>(&self, person: Option<&'p Person>) -> Option<(&'p Person, &'p str)> {
        let person = person?;
        if self.transport.reaches_everyone() {
            return Some((person, person.id.as_str()));
        }
        let platform = self.transport.platform();
        if !person.reached_on(platform, &self.running) {
            return None;
        }
        Some((person, person.id_on(platform)?))
    }

    /// What an effect shows, read in one trip.
    async fn read(&self, lookup: Lookup) -> Result<Records, ChatError> {
        self.facade.records(lookup).await.map_err(read_error)
    }

    /// Whether a card for effect `key` was already posted here (among `cards`, recorded
    /// under what it is about).
    fn already_posted(&self, cards: &[PostedCard], key: &str) -> bool {
        let platform = self.transport.platform();
        cards
            .iter()
            .any(|c| c.effect_key == key && c.platform == platform)
    }

    /// DMs `message` (rendered from `template`) to `person` and says where it landed.
    async fn dm(
        &self,
        person: &Person,
        user: &str,
        template: &str,
        message: serde_json::Value,
        delivery: Delivery<'_>,
    ) -> Result<PostedCard, ChatError> {
        let (channel, id) = self.transport.dm(user, template, message, delivery).await?;
        Ok(PostedCard {
            platform: self.transport.platform(),
            channel,
            message: id,
            recipient: person.id.clone(),
            effect_key: delivery.key.to_owned(),
        })
    }
}

impl<T: Transport> ChatPort for CardPort<T> {
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

pub(crate) fn read_error(e: EngineError) -> ChatError {
    ChatError::transient(format!("the store could not be read: {e}"))
}

/// `found`, or the permanent failure of a message about something that no longer exists.
pub(crate) fn required<T>(found: Option<T>, what: impl std::fmt::Display) -> Result<T, ChatError> {
    found.ok_or_else(|| ChatError::Permanent(format!("{what} no longer exists")))
}
