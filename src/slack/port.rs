//! The outbound half of Slack: [`SlackTransport`] posts, finds again and updates messages
//! through the Web API for the shared [`CardPort`], and [`SlackChat`] is that port for Slack,
//! plus the App Home tab. Slack's failures are sorted for the outbox: rate limits (with their
//! Retry-After), 5xx and network trouble are `Transient`, so the outbox retries; what Slack
//! will never accept (an unknown user, blocks it refuses) is `Permanent`, and logged.

mod api;
mod home;

use std::sync::Arc;

use super::Slack;
use crate::chat::deliver::{CardPort, Delivery, DmChannels, Transport};
use crate::chat::render::Templates;
use crate::connector::BoxFuture;
use crate::domain::directory::Platform;
use crate::domain::effect::Effect;
use crate::engine::Facade;
use crate::metrics::Metrics;
use crate::outbox::{ChatError, ChatPort, Posted};

pub use api::{call_outcome, classify};

/// Slack's Web API as a [`Transport`]; every call is counted in `metrics`.
pub struct SlackTransport {
    slack: Arc<Slack>,
    metrics: Arc<Metrics>,
    dm_channels: DmChannels,
}

impl SlackTransport {
    pub fn new(slack: Arc<Slack>, metrics: Arc<Metrics>) -> Self {
        Self {
            slack,
            metrics,
            dm_channels: DmChannels::default(),
        }
    }
}

impl Transport for SlackTransport {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn template_dir(&self) -> &'static str {
        "slack"
    }

    fn templates(&self) -> &Templates {
        &self.slack.templates
    }

    fn security_channel(&self) -> Option<&str> {
        self.slack.security_channel.as_deref()
    }

    fn dm<'a>(
        &'a self,
        user: &'a str,
        template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<(String, String), ChatError>> {
        Box::pin(async move {
            let channel = self.open_dm(user).await?;
            let ts = self
                .post_marked(&channel, template, message, delivery)
                .await?;
            Ok((channel, ts))
        })
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(self.post_marked(channel, template, message, delivery))
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        id: &'a str,
        key: &'a str,
        template: &'a str,
        message: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.update_message(channel, id, key, template, message))
    }
}

/// Delivers the outbox's chat effects to Slack, and publishes App Home tabs.
pub struct SlackChat {
    port: CardPort<SlackTransport>,
}

impl SlackChat {
    /// Slack as the only platform.
    pub fn new(slack: Arc<Slack>, facade: Facade) -> Self {
        Self::among(slack, facade, vec![Platform::Slack])
    }

    /// Slack beside the other platforms in `running`.
    pub fn among(slack: Arc<Slack>, facade: Facade, running: Vec<Platform>) -> Self {
        let transport = Arc::new(SlackTransport::new(slack, facade.metrics().clone()));
        Self {
            port: CardPort::among(transport, facade, running),
        }
    }
}

impl ChatPort for SlackChat {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        self.port.deliver(effect, key, attempt)
    }
}
