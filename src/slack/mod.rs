//! The Slack front end: authenticating what Slack sends us (request signatures, retry dedup
//! keys), mapping Slack users to people, and talking to Slack's Web API through
//! slack-morphism. Everything Slack-specific lives under this module; the engine never sees
//! a Slack type.

pub mod client;
pub mod http;
pub mod people;
pub mod port;
pub mod socket;
pub mod verify;

use std::sync::Arc;

use slack_morphism::prelude::*;

use crate::chat::render::Templates;
use crate::config::{Secret, SlackConfig, SlackMode};
use people::SlackPeople;

/// Everything the Slack adapter needs, built once from `[slack]`.
pub struct Slack {
    pub client: client::SlackApiClient,
    /// The bot token (`xoxb-…`) every Web API call is made with.
    pub token: SlackApiToken,
    /// HTTP mode: the secret Slack signs its requests with.
    pub signing_secret: Option<Secret>,
    /// Socket Mode: the app-level token (`xapp-…`).
    pub app_token: Option<Secret>,
    pub mode: SlackMode,
    /// Where real-time security alerts go.
    pub security_channel: Option<String>,
    /// The slash command as configured (`/access`), for help texts and error messages.
    pub command: String,
    pub templates: Arc<Templates>,
    pub people: SlackPeople,
}

/// Why the Slack adapter could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("slack.bot_token is required when [slack] is enabled")]
    NoBotToken,
    #[error(transparent)]
    Client(#[from] client::ClientError),
}

impl Slack {
    pub fn from_config(
        config: &SlackConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, SetupError> {
        let bot = config.bot_token.as_ref().ok_or(SetupError::NoBotToken)?;
        let client = client::client(&config.api_url)?;
        let token = SlackApiToken::new(SlackApiTokenValue::new(bot.expose().to_owned()));
        let people = SlackPeople::new(client.clone(), token.clone());
        Ok(Self {
            client,
            token,
            signing_secret: config.signing_secret.clone(),
            app_token: config.app_token.clone(),
            mode: config.mode,
            security_channel: config.security_channel.clone(),
            command: config.command.clone(),
            templates,
            people,
        })
    }
}
