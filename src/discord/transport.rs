//! The outbound half of Discord: posting, and editing, the messages the shared card port
//! renders from templates/discord/*.j2. A DM goes to the channel `POST /users/@me/channels`
//! opens (remembered per user). Every post carries a nonce derived from its effect key with
//! `enforce_nonce`, so Discord itself returns the message already posted when a retry follows
//! a post whose answer was lost, instead of posting it twice. No message pings anyone.

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Discord;
use crate::chat::deliver::{Delivery, DmChannels, Transport};
use crate::chat::render::Templates;
use crate::connector::BoxFuture;
use crate::domain::directory::Platform;
use crate::outbox::ChatError;

/// Discord's limit on a message nonce.
const NONCE_LEN: usize = 25;

/// Discord's REST API as a [`Transport`].
pub struct DiscordTransport {
    discord: Arc<Discord>,
    dm_channels: DmChannels,
}

impl DiscordTransport {
    pub fn new(discord: Arc<Discord>) -> Self {
        Self {
            discord,
            dm_channels: DmChannels::default(),
        }
    }

    /// The DM channel with `user`, opened if need be (opening twice gives the same one).
    async fn open_dm(&self, user: &str) -> Result<String, ChatError> {
        let open = async {
            let opened = self
                .discord
                .rest
                .post("/users/@me/channels", &json!({ "recipient_id": user }))
                .await
                .map_err(super::rest::RestError::classify)?;
            id_of(&opened, "a DM channel")
        };
        self.dm_channels.get_or_open(user, open).await
    }

    async fn create(
        &self,
        channel: &str,
        template: &str,
        message: Value,
        delivery: Delivery<'_>,
    ) -> Result<String, ChatError> {
        let mut body = outgoing(template, message)?;
        body["nonce"] = nonce(delivery.key).into();
        body["enforce_nonce"] = true.into();
        let posted = self
            .discord
            .rest
            .post(&format!("/channels/{channel}/messages"), &body)
            .await
            .map_err(super::rest::RestError::classify)?;
        id_of(&posted, "a message")
    }

    async fn edit(
        &self,
        channel: &str,
        id: &str,
        template: &str,
        message: Value,
    ) -> Result<(), ChatError> {
        let body = outgoing(template, message)?;
        self.discord
            .rest
            .patch(&format!("/channels/{channel}/messages/{id}"), &body)
            .await
            .map_err(super::rest::RestError::classify)
            .map(|_| ())
    }
}

impl Transport for DiscordTransport {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn template_dir(&self) -> &'static str {
        "discord"
    }

    fn templates(&self) -> &Templates {
        &self.discord.templates
    }

    fn security_channel(&self) -> Option<&str> {
        self.discord.security_channel.as_deref()
    }

    fn dm<'a>(
        &'a self,
        user: &'a str,
        template: &'a str,
        message: Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<(String, String), ChatError>> {
        Box::pin(async move {
            let channel = self.open_dm(user).await?;
            let id = self.create(&channel, template, message, delivery).await?;
            Ok((channel, id))
        })
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        template: &'a str,
        message: Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(self.create(channel, template, message, delivery))
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        id: &'a str,
        // A message keeps the nonce it was created with.
        _key: &'a str,
        template: &'a str,
        message: Value,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.edit(channel, id, template, message))
    }
}

/// A rendered message as sent: pinging nobody.
fn outgoing(template: &str, mut message: Value) -> Result<Value, ChatError> {
    if !message.is_object() {
        return Err(ChatError::Permanent(format!(
            "{template} did not render a Discord message"
        )));
    }
    super::no_pings(&mut message);
    Ok(message)
}

/// The nonce for effect `key`: the same key, the same nonce, within Discord's 25 characters.
fn nonce(key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    digest[..NONCE_LEN].to_owned()
}

fn id_of(object: &Value, what: &str) -> Result<String, ChatError> {
    object
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ChatError::transient(format!("Discord answered without the id of {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_effect_key_gives_one_nonce_within_discords_limit() {
        let key = "card:AR-12:0:bob";
        assert_eq!(nonce(key), nonce(key));
        assert_ne!(nonce(key), nonce("card:AR-12:0:carol"));
        assert_eq!(nonce(&"k".repeat(500)).len(), NONCE_LEN);
    }

    #[test]
    fn no_message_can_ping_anyone() {
        let sent = outgoing("t", json!({"content": "@everyone"})).unwrap();
        assert_eq!(sent["allowed_mentions"], json!({"parse": []}));
        assert!(outgoing("t", json!("text")).is_err());
    }
}
