//! Which route a request is, and what the routes that are not about interactions do to the
//! fake's state and answer: gateway discovery, the bot user, command overwrites, DM channels,
//! channel messages (with `enforce_nonce` idempotency) and their edits. Answers are shaped so
//! serenity's models read them.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::rules::{self, Body, is_snowflake};
use super::state::{DmRefusal, Message, Route, State};
use super::{APPLICATION_ID, BOT_NAME, bot_user, commands};

/// How long Discord remembers a nonce for `enforce_nonce`.
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What a route answers: status, JSON body (`Null` for an empty 204), and the rules broken.
pub struct Outcome {
    pub status: u16,
    pub body: Value,
    pub violations: Vec<String>,
}

impl Outcome {
    pub fn ok(body: Value) -> Outcome {
        Outcome {
            status: 200,
            body,
            violations: Vec::new(),
        }
    }

    /// A Discord error `{"message", "code"}`, not counted as a broken rule (unknown message…).
    pub fn error(status: u16, code: u64, message: &str) -> Outcome {
        Outcome {
            status,
            body: json!({"message": message, "code": code}),
            violations: Vec::new(),
        }
    }

    /// A Discord error that only a wrong client gets: recorded as a violation too.
    pub fn refused(status: u16, code: u64, message: &str, why: String) -> Outcome {
        let mut outcome = Outcome::error(status, code, message);
        outcome.violations.push(why);
        outcome
    }

    /// 400 with the form-body errors, or 400 code 50006 for an empty message.
    pub fn invalid(checked: Result<rules::Problems, Value>) -> Option<Outcome> {
        match checked {
            Err(empty) => Some(Outcome {
                status: 400,
                violations: vec![format!("{} ({})", empty["message"], empty["code"])],
                body: empty,
            }),
            Ok(problems) if !problems.is_empty() => Some(Outcome {
                status: 400,
                body: problems.body(),
                violations: problems.lines(),
            }),
            Ok(_) => None,
        }
    }
}

/// The route of `method path` and its path parameters.
pub fn resolve(method: &Method, path: &str) -> (Route, Vec<String>) {
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        return (Route::Unknown, Vec::new());
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let owned = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect();
    let m = method.as_str();
    match (m, parts.as_slice()) {
        ("GET", ["gateway"]) => (Route::GetGateway, vec![]),
        ("GET", ["gateway", "bot"]) => (Route::GetBotGateway, vec![]),
        ("GET", ["users", "@me"]) => (Route::GetMyUser, vec![]),
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            (Route::GetMyApplication, vec![])
        }
        ("PUT", ["applications", app, "commands"]) => {
            (Route::BulkSetApplicationCommands, owned(&[app]))
        }
        ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
            (Route::BulkSetGuildApplicationCommands, owned(&[app, guild]))
        }
        ("POST", ["users", "@me", "channels"]) => (Route::CreateDm, vec![]),
        ("POST", ["channels", channel, "messages"]) => (Route::CreateMessage, owned(&[channel])),
        ("PATCH", ["channels", channel, "messages", message]) => {
            (Route::UpdateMessage, owned(&[channel, message]))
        }
        ("POST", ["interactions", id, token, "callback"]) => {
            (Route::CreateInteractionResponse, owned(&[id, token]))
        }
        ("GET", ["webhooks", app, token, "messages", "@original"]) => {
            (Route::GetOriginalWebhookMessage, owned(&[app, token]))
        }
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
            (Route::UpdateOriginalWebhookMessage, owned(&[app, token]))
        }
        ("POST", ["webhooks", app, token]) => (Route::ExecuteWebhook, owned(&[app, token])),
        ("PATCH", ["webhooks", app, token, "messages", message]) => {
            (Route::UpdateWebhookMessage, owned(&[app, token, message]))
        }
        _ => (Route::Unknown, vec![]),
    }
}

/// Applies a call that passed authentication.
pub fn apply(
    state: &mut State,
    route: Route,
    params: &[String],
    body: &Value,
    query: &str,
    now: Instant,
    at: Duration,
) -> Outcome {
    let param = |i: usize| params.get(i).map(String::as_str).unwrap_or("");
    match route {
        Route::GetGateway => Outcome::ok(json!({"url": state.gateway_url()})),
        Route::GetBotGateway => Outcome::ok(json!({
            "url": state.gateway_url(), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000,
                                    "max_concurrency": 1},
        })),
        Route::GetMyUser => Outcome::ok(bot_user()),
        Route::GetMyApplication => Outcome::ok(application()),
        Route::BulkSetApplicationCommands | Route::BulkSetGuildApplicationCommands => {
            if param(0) != APPLICATION_ID {
                let why = format!("commands of application {} with the bot's token", param(0));
                return Outcome::refused(403, 50001, "Missing Access", why);
            }
            let problems = commands::check(body);
            if let Some(refused) = Outcome::invalid(Ok(problems)) {
                return refused;
            }
            let guild = (route == Route::BulkSetGuildApplicationCommands).then(|| param(1));
            Outcome::ok(commands::store(state, body, guild))
        }
        Route::CreateDm => create_dm(state, body),
        Route::CreateMessage => create_message(state, param(0), body, now, at),
        Route::UpdateMessage => {
            if state.message(param(0), param(1)).is_none() {
                return Outcome::error(404, 10008, "Unknown Message");
            }
            if let Some(refused) = Outcome::invalid(rules::message(body, Body::ChannelEdit)) {
                return refused;
            }
            Outcome::ok(edit(state, param(1), body, at))
        }
        Route::CreateInteractionResponse
        | Route::GetOriginalWebhookMessage
        | Route::UpdateOriginalWebhookMessage
        | Route::ExecuteWebhook
        | Route::UpdateWebhookMessage => {
            super::callbacks::apply(state, route, params, body, query, now, at)
        }
        Route::Unknown => Outcome::refused(404, 0, "404: Not Found", "no such route".into()),
    }
}

fn application() -> Value {
    json!({
        "id": APPLICATION_ID, "name": BOT_NAME, "icon": null, "description": "",
        "bot_public": false, "bot_require_code_grant": false, "verify_key": super::public_key_hex(),
        "flags": 0, "owner": {"id": "1000000000000000099", "username": "owner",
                              "discriminator": "0", "avatar": null, "public_flags": 0},
        "team": null, "summary": "", "bot": bot_user(), "hook": true,
        "redirect_uris": [], "interactions_endpoint_url": null,
    })
}

fn create_dm(state: &mut State, body: &Value) -> Outcome {
    let recipient = &body["recipient_id"];
    if !is_snowflake(recipient) {
        let mut problems = rules::Problems::default();
        let message = format!("Value \"{recipient}\" is not snowflake.");
        problems.add("recipient_id", "NUMBER_TYPE_COERCE", message);
        return Outcome::invalid(Ok(problems)).unwrap_or_else(|| Outcome::ok(Value::Null));
    }
    let user = match recipient {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if state.dm_refusals.get(&user) == Some(&DmRefusal::OnOpen) {
        return Outcome::error(403, 50007, "Cannot send messages to this user");
    }
    let channel = state.dm_with(&user);
    Outcome::ok(json!({
        "id": channel, "type": 1, "flags": 0, "last_message_id": null,
        "recipients": [{"id": user, "username": format!("user{user}"), "discriminator": "0",
                        "global_name": null, "avatar": null, "public_flags": 0}],
    }))
}

fn nonce_key(nonce: &Value) -> Option<String> {
    match nonce {
        Value::String(s) => Some(format!("s{s}")),
        Value::Number(n) => Some(format!("n{n}")),
        _ => None,
    }
}

fn create_message(
    state: &mut State,
    channel: &str,
    body: &Value,
    now: Instant,
    at: Duration,
) -> Outcome {
    if !state.channels.contains(channel) {
        return Outcome::error(404, 10003, "Unknown Channel");
    }
    let refused = state
        .dms
        .iter()
        .any(|(user, dm)| dm == channel && state.dm_refusals.get(user) == Some(&DmRefusal::OnSend));
    if refused {
        return Outcome::error(403, 50007, "Cannot send messages to this user");
    }
    if let Some(refused) = Outcome::invalid(rules::message(body, Body::ChannelPost)) {
        return refused;
    }
    let key = nonce_key(&body["nonce"]).map(|nonce| (channel.to_owned(), nonce));
    if let (Some(key), Some(true)) = (&key, body["enforce_nonce"].as_bool())
        && let Some((id, used)) = state.nonces.get(key)
        && now.duration_since(*used) < NONCE_WINDOW
        && let Some(existing) = state.message(channel, id)
    {
        return Outcome::ok(existing.json());
    }
    let flags = body["flags"].as_u64().unwrap_or(0);
    let id = post(state, channel, body, flags, None, at);
    if let Some(key) = key {
        state.nonces.insert(key, (id.clone(), now));
    }
    let message = state.message(channel, &id).map(Message::json);
    Outcome::ok(message.unwrap_or_default())
}

/// Stores a new message from a message body; its id.
pub fn post(
    state: &mut State,
    channel: &str,
    body: &Value,
    flags: u64,
    token: Option<&str>,
    at: Duration,
) -> String {
    let id = state.snowflake();
    let list = |name: &str| body[name].as_array().cloned().unwrap_or_default();
    let message = Message {
        id: id.clone(),
        channel_id: channel.to_owned(),
        content: body["content"].as_str().unwrap_or("").to_owned(),
        embeds: list("embeds"),
        components: number_components(list("components")),
        flags,
        nonce: body.get("nonce").filter(|n| !n.is_null()).cloned(),
        interaction_token: token.map(str::to_owned),
        edits: Vec::new(),
        created: at,
        edited: None,
    };
    state.messages.push(message);
    id
}

/// Applies an edit body to message `id`; the message as it stands after.
pub fn edit(state: &mut State, id: &str, body: &Value, at: Duration) -> Value {
    let Some(message) = state.messages.iter_mut().find(|m| m.id == id) else {
        return Value::Null;
    };
    if let Some(content) = body.get("content") {
        message.content = content.as_str().unwrap_or("").to_owned();
    }
    if let Some(embeds) = body.get("embeds") {
        message.embeds = embeds.as_array().cloned().unwrap_or_default();
    }
    if let Some(components) = body.get("components") {
        message.components = number_components(components.as_array().cloned().unwrap_or_default());
    }
    if let Some(flags) = body["flags"].as_u64() {
        // Only SUPPRESS_EMBEDS changes on an edit; ephemerality stays what it was.
        message.flags = (message.flags & !4) | (flags & 4);
    }
    message.flags &= !128;
    message.edits.push(body.clone());
    message.edited = Some(at);
    message.json()
}

/// Discord numbers every component of a stored message (`id` 1, 2, …) and fills defaults.
fn number_components(rows: Vec<Value>) -> Vec<Value> {
    let mut next = 0;
    let mut number = |item: &mut Value| {
        next += 1;
        if item.get("id").is_none_or(Value::is_null) {
            item["id"] = json!(next);
        }
    };
    let mut rows = rows;
    for row in &mut rows {
        number(row);
        if let Some(items) = row["components"].as_array_mut() {
            for item in items {
                number(item);
            }
        }
    }
    rows
}

impl State {
    fn gateway_url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}
