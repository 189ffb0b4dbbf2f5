//! Interactions as Discord sends them (over the gateway as INTERACTION_CREATE, or POSTed to an
//! HTTP interactions endpoint): slash commands with a subcommand, autocomplete, button clicks,
//! modal submits and PING, shaped like the fixtures of Discord's docs, with snowflake ids and a
//! fresh token each. And the Ed25519 key HTTP-mode tests sign those POSTs with.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use super::state::State;
use super::{APPLICATION_ID, CHANNEL_ID, bot_user};

/// The key the fake "Discord" signs HTTP interactions with; the adapter is configured with
/// [`public_key_hex`].
fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

/// The public key (64 hex digits) for `discord.public_key`.
pub fn public_key_hex() -> String {
    hex::encode(signing_key().verifying_key().to_bytes())
}

/// Signs an HTTP interaction the way Discord does, over `timestamp` followed by `body`:
/// `(X-Signature-Ed25519, X-Signature-Timestamp)`.
pub fn sign(timestamp: impl std::fmt::Display, body: impl AsRef<[u8]>) -> (String, String) {
    let timestamp = timestamp.to_string();
    let mut signed = timestamp.clone().into_bytes();
    signed.extend_from_slice(body.as_ref());
    (
        hex::encode(signing_key().sign(&signed).to_bytes()),
        timestamp,
    )
}

#[derive(Clone, Debug)]
enum Kind {
    Ping,
    Command {
        subcommand: String,
        options: Vec<(String, Value)>,
        focused: Option<String>,
    },
    Button {
        custom_id: String,
    },
    ModalSubmit {
        custom_id: String,
        fields: Vec<(String, String)>,
    },
}

/// An interaction to send; build one with a constructor, adjust it with the `in_*`/`named`
/// methods, and hand it to [`super::FakeDiscord::interaction`] (or `prepare`).
#[derive(Clone, Debug)]
pub struct Interaction {
    kind: Kind,
    user_id: String,
    guild_id: Option<String>,
    channel_id: Option<String>,
    message_id: Option<String>,
    command: String,
    locale: String,
}

impl Interaction {
    fn new(kind: Kind, user_id: &str) -> Interaction {
        Interaction {
            kind,
            user_id: user_id.to_owned(),
            guild_id: None,
            channel_id: None,
            message_id: None,
            command: "access".to_owned(),
            locale: "en-US".to_owned(),
        }
    }

    fn options(options: &[(&str, Value)]) -> Vec<(String, Value)> {
        let owned = options.iter().map(|(k, v)| ((*k).to_owned(), v.clone()));
        owned.collect()
    }

    /// `/access <subcommand> <options…>` (type 2) by `user_id`, in a DM unless
    /// [`Interaction::in_guild`]. `subcommand` may be `""` (options on the command itself) or
    /// `"group sub"`. An option's type follows its JSON value (string 3, integer 4, boolean 5,
    /// number 10); `{"type": 6, "value": "…"}` gives it explicitly. The command is `access`
    /// unless [`Interaction::named`]; its `data.id` is the registered command's when there is one.
    pub fn command(user_id: &str, subcommand: &str, options: &[(&str, Value)]) -> Interaction {
        let kind = Kind::Command {
            subcommand: subcommand.to_owned(),
            options: Self::options(options),
            focused: None,
        };
        Interaction::new(kind, user_id)
    }

    /// Autocomplete (type 4) while `user_id` types: like [`Interaction::command`], with the
    /// option named `focused` marked `"focused": true` (its value is what was typed so far).
    pub fn autocomplete(
        user_id: &str,
        subcommand: &str,
        options: &[(&str, Value)],
        focused: &str,
    ) -> Interaction {
        let kind = Kind::Command {
            subcommand: subcommand.to_owned(),
            options: Self::options(options),
            focused: Some(focused.to_owned()),
        };
        Interaction::new(kind, user_id)
    }

    /// A click (type 3) by `user_id` on the button `custom_id` of message `message_id` in
    /// `channel_id`; the interaction carries the message as the fake holds it now.
    pub fn button(
        user_id: &str,
        channel_id: &str,
        message_id: &str,
        custom_id: &str,
    ) -> Interaction {
        let kind = Kind::Button {
            custom_id: custom_id.to_owned(),
        };
        let mut built = Interaction::new(kind, user_id);
        built.channel_id = Some(channel_id.to_owned());
        built.message_id = Some(message_id.to_owned());
        built
    }

    /// The submit (type 5) of modal `custom_id` by `user_id`: one action row per field with a
    /// text input `(custom_id, value)`. Add [`Interaction::on_message`] when the modal was
    /// opened from a button (UPDATE_MESSAGE is only valid then).
    pub fn modal_submit(user_id: &str, custom_id: &str, fields: &[(&str, &str)]) -> Interaction {
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let kind = Kind::ModalSubmit {
            custom_id: custom_id.to_owned(),
            fields: fields.collect(),
        };
        Interaction::new(kind, user_id)
    }

    /// PING (type 1), which only HTTP-mode endpoints get; answer PONG.
    pub fn ping() -> Interaction {
        Interaction::new(Kind::Ping, "0")
    }

    /// Happens in guild `guild_id` (with `member.user` instead of `user`), in [`CHANNEL_ID`]
    /// unless [`Interaction::in_channel`].
    pub fn in_guild(mut self, guild_id: &str) -> Interaction {
        self.guild_id = Some(guild_id.to_owned());
        self
    }

    /// Happens in `channel_id` (a DM interaction is in the user's DM channel otherwise).
    pub fn in_channel(mut self, channel_id: &str) -> Interaction {
        self.channel_id = Some(channel_id.to_owned());
        self
    }

    /// A modal submitted from a button on `message_id` in `channel_id`.
    pub fn on_message(mut self, channel_id: &str, message_id: &str) -> Interaction {
        self.channel_id = Some(channel_id.to_owned());
        self.message_id = Some(message_id.to_owned());
        self
    }

    /// The slash command's name (`access` unless set).
    pub fn named(mut self, command: &str) -> Interaction {
        self.command = command.to_owned();
        self
    }

    /// The user's locale (`en-US` unless set).
    pub fn locale(mut self, locale: &str) -> Interaction {
        self.locale = locale.to_owned();
        self
    }

    /// The interaction object, with ids from the fake's counter.
    pub(super) fn build(&self, state: &mut State) -> Value {
        let id = state.snowflake();
        let token = format!("aW50ZXJhY3Rpb246{id}OmZha2U.{}", state.snowflake());
        let mut out = json!({
            "id": id, "application_id": APPLICATION_ID, "token": token, "version": 1,
        });
        if let Kind::Ping = self.kind {
            out["type"] = json!(1);
            return out;
        }
        let user = json!({
            "id": self.user_id, "username": format!("user{}", self.user_id),
            "discriminator": "0", "global_name": null, "avatar": null, "public_flags": 0,
        });
        let channel_id = match (&self.channel_id, &self.guild_id) {
            (Some(channel), _) => channel.clone(),
            (None, Some(_)) => CHANNEL_ID.to_owned(),
            (None, None) => state.dm_with(&self.user_id),
        };
        let fields = json!({
            "channel_id": channel_id, "locale": self.locale, "app_permissions": "442368",
            "entitlements": [], "attachment_size_limit": 10_485_760,
        });
        merge(&mut out, fields);
        match &self.guild_id {
            Some(guild) => merge(
                &mut out,
                json!({
                    "guild_id": guild, "guild_locale": "en-US", "context": 0,
                    "guild": {"id": guild, "locale": "en-US", "features": []},
                    "channel": {"id": channel_id, "type": 0, "name": "access-requests",
                                "guild_id": guild, "permissions": "2147483647"},
                    "authorizing_integration_owners": {"0": guild},
                    "member": {
                        "user": user, "roles": [], "premium_since": null,
                        "permissions": "2147483647", "pending": false, "is_pending": false, "nick": null,
                        "mute": false, "deaf": false, "flags": 0, "avatar": null,
                        "joined_at": "2025-03-13T19:19:14.040000+00:00",
                    },
                }),
            ),
            None => merge(
                &mut out,
                json!({
                    "user": user, "context": 1, "authorizing_integration_owners": {"0": "0"},
                    "channel": {"id": channel_id, "type": 1, "flags": 0,
                                "recipients": [user], "last_message_id": null},
                }),
            ),
        }
        let message = self.message_id.as_ref().map(|message_id| {
            let stored = state.message(&channel_id, message_id);
            stored.map(|m| m.json()).unwrap_or_else(|| {
                json!({"id": message_id, "channel_id": channel_id, "type": 0, "content": "",
                       "author": bot_user(), "timestamp": "2026-01-01T00:00:00.000000+00:00",
                       "edited_timestamp": null, "tts": false, "mention_everyone": false,
                       "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                       "components": [], "pinned": false, "flags": 0})
            })
        });
        match &self.kind {
            Kind::Ping => {}
            Kind::Command {
                subcommand,
                options,
                focused,
            } => {
                out["type"] = json!(if focused.is_some() { 4 } else { 2 });
                out["data"] = self.command_data(state, subcommand, options, focused.as_deref());
            }
            Kind::Button { custom_id } => {
                out["type"] = json!(3);
                out["data"] = json!({"custom_id": custom_id, "component_type": 2});
                out["message"] = message.unwrap_or(Value::Null);
            }
            Kind::ModalSubmit { custom_id, fields } => {
                out["type"] = json!(5);
                let rows: Vec<Value> = fields
                    .iter()
                    .map(|(k, v)| {
                        json!({"type": 1, "components": [
                            {"type": 4, "custom_id": k, "value": v}]})
                    })
                    .collect();
                out["data"] = json!({"custom_id": custom_id, "components": rows});
                if let Some(message) = message {
                    out["message"] = message;
                }
            }
        }
        out
    }

    fn command_data(
        &self,
        state: &mut State,
        subcommand: &str,
        options: &[(String, Value)],
        focused: Option<&str>,
    ) -> Value {
        let options: Vec<Value> = options
            .iter()
            .map(|(name, value)| {
                let mut option = match value {
                    Value::Object(given) if given.contains_key("type") => value.clone(),
                    Value::String(_) => json!({"type": 3, "value": value}),
                    Value::Bool(_) => json!({"type": 5, "value": value}),
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        json!({"type": 4, "value": value})
                    }
                    _ => json!({"type": 10, "value": value}),
                };
                option["name"] = json!(name);
                if focused == Some(name.as_str()) {
                    option["focused"] = json!(true);
                }
                option
            })
            .collect();
        let words: Vec<&str> = subcommand.split_whitespace().collect();
        let options = match words.as_slice() {
            [] => options,
            [sub] => vec![json!({"type": 1, "name": sub, "options": options})],
            [group, sub, ..] => vec![json!({"type": 2, "name": group, "options": [
                {"type": 1, "name": sub, "options": options}]})],
        };
        let registered = match &self.guild_id {
            Some(guild) => state.guild_commands.get(guild).cloned().unwrap_or_default(),
            None => Vec::new(),
        };
        let found = (registered.iter())
            .chain(state.global_commands.iter())
            .find(|c| c["name"] == self.command.as_str() && c["type"] == 1)
            .cloned();
        let (id, version) = match &found {
            Some(command) => (command["id"].clone(), command["version"].clone()),
            None => (json!(state.snowflake()), json!(state.snowflake())),
        };
        let mut data = json!({"id": id, "name": self.command, "type": 1, "version": version,
                              "options": options});
        if let Some(guild) = found.as_ref().and_then(|c| c["guild_id"].as_str()) {
            data["guild_id"] = json!(guild);
        }
        data
    }
}

fn merge(into: &mut Value, more: Value) {
    if let (Some(into), Value::Object(more)) = (into.as_object_mut(), more) {
        into.extend(more);
    }
}
