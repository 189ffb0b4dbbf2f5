//! The Discord front end. Interactions arrive over the gateway (serenity's client, no public
//! URL) or at `POST /discord/interactions` (signed with Ed25519); both are read into one
//! typed [`interaction::Incoming`] and answered by one [`respond::Responder`], which runs
//! the shared chat logic of [`crate::chat`]. Outbound, [`transport::DiscordTransport`] posts,
//! finds again and edits messages for the shared card port. Every REST call goes to
//! `{discord.api_url}/api/v10/…`, through [`rest::Rest`] (and serenity's proxy setting for
//! the gateway client), with Discord's rate limits handled here: serenity's own limiter is
//! off, as its proxy mode requires.

pub mod commands;
pub mod gateway;
pub mod http;
pub mod interaction;
pub mod respond;
pub mod rest;
pub mod transport;
pub mod verify;

use std::sync::Arc;

use crate::chat::render::Templates;
use crate::config::{DiscordConfig, DiscordMode, Secret};
use crate::metrics::Metrics;

/// Everything the Discord adapter needs, built once from `[discord]`.
pub struct Discord {
    pub rest: rest::Rest,
    pub bot_token: Secret,
    pub application_id: String,
    /// HTTP mode: the key Discord signs interactions with.
    pub public_key: Option<verify::PublicKey>,
    /// Commands are registered in this guild; globally when absent.
    pub guild_id: Option<String>,
    pub api_url: String,
    pub mode: DiscordMode,
    pub security_channel: Option<String>,
    /// The command's name, `access`, for help texts.
    pub command: String,
    pub templates: Arc<Templates>,
}

/// Why the Discord adapter could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("discord.bot_token is required when [discord] is enabled")]
    NoBotToken,
    #[error(
        "discord.application_id is required when [discord] is enabled; copy it from the developer portal's General Information page"
    )]
    NoApplicationId,
    #[error(
        "discord.public_key is required in http mode; copy it from the developer portal's General Information page"
    )]
    NoPublicKey,
    #[error("discord.public_key is not an Ed25519 public key: {0}")]
    BadPublicKey(String),
    #[error(transparent)]
    Rest(#[from] rest::RestSetupError),
}

impl Discord {
    /// The adapter for `[discord]`, counting its API calls in `metrics`.
    pub fn from_config(
        config: &DiscordConfig,
        templates: Arc<Templates>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SetupError> {
        let bot_token = config.bot_token.clone().ok_or(SetupError::NoBotToken)?;
        let application_id = config
            .application_id
            .clone()
            .ok_or(SetupError::NoApplicationId)?;
        let public_key = match (&config.public_key, config.mode) {
            (Some(hex), _) => {
                Some(verify::PublicKey::from_hex(hex).map_err(SetupError::BadPublicKey)?)
            }
            (None, DiscordMode::Http) => return Err(SetupError::NoPublicKey),
            (None, DiscordMode::Gateway) => None,
        };
        let api_url = config.api_url.trim_end_matches('/').to_owned();
        let rest = rest::Rest::new(&api_url, bot_token.expose(), metrics)?;
        Ok(Self {
            rest,
            bot_token,
            application_id,
            public_key,
            guild_id: config.guild_id.clone(),
            api_url,
            mode: config.mode,
            security_channel: config.security_channel.clone(),
            command: config.command.clone(),
            templates,
        })
    }

    /// `/access` as people type it, for help texts.
    pub fn slash_command(&self) -> String {
        format!("/{}", self.command)
    }
}

/// Makes `message` ping nobody, whatever a template or a person's text says: every message
/// Gatehouse sends Discord goes through here.
pub fn no_pings(message: &mut serde_json::Value) {
    message["allowed_mentions"] = serde_json::json!({ "parse": [] });
}
