//! What the fake remembers: the recorded calls, channels and messages, nonces, commands,
//! interactions and the gateway's sessions, and the public types tests read them through.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::gateway::GatewayState;
use super::interaction::Interaction;
use super::{APPLICATION_ID, CHANNEL_ID, bot_user};

/// The REST routes the fake serves, named after the operation ids of Discord's OpenAPI
/// description; faults are scripted per route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    GetGateway,
    GetBotGateway,
    GetMyUser,
    GetMyApplication,
    BulkSetApplicationCommands,
    BulkSetGuildApplicationCommands,
    CreateDm,
    CreateMessage,
    UpdateMessage,
    CreateInteractionResponse,
    GetOriginalWebhookMessage,
    UpdateOriginalWebhookMessage,
    ExecuteWebhook,
    UpdateWebhookMessage,
    /// Anything else: answered 404 and recorded as a violation.
    Unknown,
}

impl Route {
    /// Whether the route changes something (random faults hit only these).
    pub fn mutates(self) -> bool {
        !matches!(
            self,
            Route::GetGateway
                | Route::GetBotGateway
                | Route::GetMyUser
                | Route::GetMyApplication
                | Route::GetOriginalWebhookMessage
                | Route::Unknown
        )
    }
}

/// What the next call(s) to a route meet instead of Discord. A faulted call is recorded (with
/// its fault) and has no effect, but for [`Fault::LostResponse`], which has its effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` (whole seconds, rounded up) and
    /// `{"message":"You are being rate limited.","retry_after":<secs>,"global":false}`.
    RateLimited { retry_after: Duration },
    /// 500 with `{"message":"500: Internal Server Error","code":0}`.
    ServerError,
    /// No answer for [`super::FakeDiscord::set_slow_delay`] (30 s unless set), then a 504
    /// nobody waits for any more.
    Timeout,
    /// The connection is closed without an answer.
    Drop,
    /// The call is applied (a message is stored, an interaction acknowledged), then the
    /// connection is closed without an answer: the caller cannot tell it from [`Fault::Drop`].
    LostResponse,
}

/// Where a refused DM fails (see [`super::FakeDiscord::refuse_dms`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmRefusal {
    /// `POST /users/@me/channels` fails.
    OnOpen,
    /// Opening works; posting to the DM channel fails, as for a user who closed their DMs.
    OnSend,
}

/// One REST request the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    pub route: Route,
    pub method: String,
    /// The path without the query, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// The JSON body (`Null` when there was none).
    pub body: Value,
    /// Time since the fake started (tokio time, so it follows a paused clock).
    pub at: Duration,
    pub fault: Option<Fault>,
    /// What broke Discord's rules: `"embeds.0.title: Must be 256 or fewer in length.
    /// (BASE_TYPE_MAX_LENGTH)"`; empty for a clean call.
    pub violations: Vec<String>,
    /// 0 when the connection was dropped.
    pub status: u16,
    pub response: Value,
}

impl Call {
    /// Discord's error code of a refused call (`10008`, `50035`, …).
    pub fn code(&self) -> Option<u64> {
        self.response.get("code")?.as_u64()
    }
}

/// A message as it stands now.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    pub content: String,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub flags: u64,
    pub nonce: Option<Value>,
    /// The token of the interaction this message answers (original response or follow-up).
    pub interaction_token: Option<String>,
    /// The bodies of its successful edits, oldest first.
    pub edits: Vec<Value>,
    pub(super) created: Duration,
    pub(super) edited: Option<Duration>,
}

impl Message {
    /// Flag 64: only the person who used the interaction sees it.
    pub fn ephemeral(&self) -> bool {
        self.flags & 64 != 0
    }

    /// Flag 128: a deferred response still "thinking".
    pub fn loading(&self) -> bool {
        self.flags & 128 != 0
    }

    /// The `custom_id`s of its buttons and selects, in order.
    pub fn custom_ids(&self) -> Vec<String> {
        let rows = self.components.iter();
        let items = rows.flat_map(|row| row["components"].as_array().cloned().unwrap_or_default());
        let ids = items.filter_map(|c| c["custom_id"].as_str().map(str::to_owned));
        ids.collect()
    }

    /// The message object Discord answers with (what serenity's `Message` reads).
    pub fn json(&self) -> Value {
        let stamp = |at: Duration| {
            let base = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
            let at = base + chrono::Duration::from_std(at).unwrap_or_default();
            at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
        };
        let mut out = json!({
            "id": self.id, "channel_id": self.channel_id, "type": 0, "content": self.content,
            "author": bot_user(), "timestamp": stamp(self.created),
            "edited_timestamp": self.edited.map(stamp), "tts": false, "mention_everyone": false,
            "mentions": [], "mention_roles": [], "mention_channels": [], "attachments": [],
            "embeds": self.embeds, "components": self.components, "pinned": false,
            "flags": self.flags, "application_id": APPLICATION_ID,
        });
        if let Some(nonce) = &self.nonce {
            out["nonce"] = nonce.clone();
        }
        if self.interaction_token.is_some() {
            out["webhook_id"] = json!(APPLICATION_ID);
        }
        out
    }
}

/// An interaction handed to the client: what [`super::FakeDiscord::interaction`] returns.
#[derive(Clone, Debug)]
pub struct Sent {
    pub id: String,
    pub token: String,
    /// The interaction object as sent (`d` of INTERACTION_CREATE, or an HTTP-mode body).
    pub body: Value,
}

/// What the fake knows of one interaction.
pub(super) struct InteractionRecord {
    pub token: String,
    /// 1 PING, 2 APPLICATION_COMMAND, 3 MESSAGE_COMPONENT, 4 AUTOCOMPLETE, 5 MODAL_SUBMIT.
    pub kind: u64,
    pub channel_id: String,
    /// The message a component (or a modal opened from one) is on.
    pub message_id: Option<String>,
    pub created: Instant,
    /// The first accepted callback's body.
    pub callback: Option<Value>,
    pub original: Option<String>,
    pub followups: Vec<String>,
}

pub(super) struct RandomFaults {
    pub seed: u64,
    pub percent: u32,
    pub faults: Vec<Fault>,
}

pub(super) struct State {
    pub addr: SocketAddr,
    pub calls: Vec<Call>,
    pub faults: HashMap<Route, VecDeque<Fault>>,
    pub random: Option<RandomFaults>,
    pub slow_delay: Duration,
    pub counter: u64,
    pub channels: HashSet<String>,
    pub dms: HashMap<String, String>,
    pub dm_refusals: HashMap<String, DmRefusal>,
    pub messages: Vec<Message>,
    /// (channel, nonce) → (message id, when it was used).
    pub nonces: HashMap<(String, String), (String, Instant)>,
    pub global_commands: Vec<Value>,
    pub guild_commands: HashMap<String, Vec<Value>>,
    pub interactions: HashMap<String, InteractionRecord>,
    pub gateway: GatewayState,
}

impl State {
    pub fn new(addr: SocketAddr) -> State {
        State {
            addr,
            calls: Vec::new(),
            faults: HashMap::new(),
            random: None,
            slow_delay: Duration::from_secs(30),
            counter: 0,
            channels: HashSet::from([CHANNEL_ID.to_owned()]),
            dms: HashMap::new(),
            dm_refusals: HashMap::new(),
            messages: Vec::new(),
            nonces: HashMap::new(),
            global_commands: Vec::new(),
            guild_commands: HashMap::new(),
            interactions: HashMap::new(),
            gateway: GatewayState::new(format!("ws://{addr}")),
        }
    }

    /// A fresh snowflake, increasing.
    pub fn snowflake(&mut self) -> String {
        self.counter += 1;
        (1_300_000_000_000_000_000u64 + self.counter * 4096).to_string()
    }

    /// The next pseudo-random number of the random-fault generator (splitmix64).
    pub fn next_random(&mut self) -> Option<(u64, u32, Vec<Fault>)> {
        let random = self.random.as_mut()?;
        random.seed = random.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = random.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Some((z ^ (z >> 31), random.percent, random.faults.clone()))
    }

    pub fn message(&self, channel_id: &str, message_id: &str) -> Option<&Message> {
        let mut here = self.messages.iter();
        here.find(|m| m.channel_id == channel_id && m.id == message_id)
    }

    pub fn message_by_id(&self, message_id: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.id == message_id)
    }

    pub fn by_token(&self, token: &str) -> Option<&InteractionRecord> {
        self.interactions.values().find(|r| r.token == token)
    }

    /// The DM channel with `user`, opened on first use.
    pub fn dm_with(&mut self, user: &str) -> String {
        if let Some(channel) = self.dms.get(user) {
            return channel.clone();
        }
        let channel = self.snowflake();
        self.dms.insert(user.to_owned(), channel.clone());
        self.channels.insert(channel.clone());
        channel
    }

    /// Builds `builder` into an interaction with a fresh id and token and remembers it.
    pub fn register(&mut self, builder: Interaction, now: Instant) -> Sent {
        let body = builder.build(self);
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        let token = body["token"].as_str().unwrap_or_default().to_owned();
        let channel_id = body["channel_id"].as_str().unwrap_or_default().to_owned();
        self.channels.insert(channel_id.clone());
        let record = InteractionRecord {
            token: token.clone(),
            kind: body["type"].as_u64().unwrap_or_default(),
            channel_id,
            message_id: body["message"]["id"].as_str().map(str::to_owned),
            created: now,
            callback: None,
            original: None,
            followups: Vec::new(),
        };
        self.interactions.insert(id.clone(), record);
        Sent { id, token, body }
    }

    /// Sends a dispatch (op 0) on the live gateway session.
    pub fn dispatch(&mut self, event: &str, data: Value) {
        self.gateway.dispatch(event, data);
    }
}
