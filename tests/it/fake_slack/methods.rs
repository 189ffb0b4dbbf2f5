//! What each Web API method does to the fake's state and answers, for a call that passed
//! authentication and validation. Answers carry the fields slack-morphism's response types
//! require, so the real client decodes them.

use serde_json::{Map, Value, json};

use super::{FakeSlack, Message, State, arg};

/// The methods the fake implements; any other is `unknown_method`, as on Slack.
pub const METHODS: &[&str] = &[
    "auth.test",
    "conversations.open",
    "conversations.history",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.update",
    "views.publish",
    "users.info",
    "apps.connections.open",
];

const TEAM: &str = "T0FAKE";
const BOT_USER: &str = "U0FAKEBOT";
const BOT_ID: &str = "B0FAKE";
const APP_ID: &str = "A0FAKE";

pub fn apply(state: &mut State, method: &str, args: &Map<String, Value>) -> Value {
    match method {
        "auth.test" => json!({
            "ok": true, "url": "https://fake.slack.com/", "team": "Fake", "user": "gatehouse",
            "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID,
        }),
        "conversations.open" => conversations_open(args),
        "conversations.history" => history(state, args),
        "chat.postMessage" => post_message(state, args),
        "chat.update" => update(state, args),
        "chat.postEphemeral" => json!({"ok": true, "message_ts": next_ts(state)}),
        "views.open" => store_view(state, args, None),
        "views.update" => views_update(state, args),
        "views.publish" => views_publish(state, args),
        "users.info" => match arg(args, "user").and_then(|user| state.users.get(user)) {
            Some(user) => json!({"ok": true, "user": user}),
            None => failure("user_not_found"),
        },
        "apps.connections.open" => match &state.socket_url {
            Some(url) => json!({"ok": true, "url": url}),
            None => failure("fake_socket_url_not_set"),
        },
        _ => failure("unknown_method"),
    }
}

pub fn failure(error: &str) -> Value {
    json!({"ok": false, "error": error})
}

/// Unique and increasing, in Slack's `seconds.micros` form.
fn next_ts(state: &mut State) -> String {
    state.counter += 1;
    format!("1700000000.{:06}", state.counter)
}

fn conversations_open(args: &Map<String, Value>) -> Value {
    if let Some(channel) = arg(args, "channel") {
        return json!({"ok": true, "channel": {"id": channel}, "already_open": true});
    }
    // A comma-separated string on the wire; slack-morphism sends a JSON array.
    let users: Vec<String> = match args.get("users") {
        Some(Value::Array(users)) => users
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(users)) => users.split(',').map(|u| u.trim().to_owned()).collect(),
        _ => Vec::new(),
    };
    match users.as_slice() {
        [user] => json!({"ok": true, "channel": {"id": FakeSlack::dm_channel(user)}}),
        [] => failure("users_list_not_supplied"),
        many => json!({"ok": true, "channel": {"id": format!("G{}", many.join(""))}}),
    }
}

fn message_json(message: &Message) -> Value {
    let mut out = json!({
        "type": "message", "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM,
        "ts": message.ts, "text": message.text.clone().unwrap_or_default(),
    });
    if let Some(blocks) = &message.blocks {
        out["blocks"] = blocks.clone();
    }
    out
}

fn post_message(state: &mut State, args: &Map<String, Value>) -> Value {
    let channel = arg(args, "channel").unwrap_or_default();
    // Posting to a user id posts to the DM with that user, and says so.
    let channel = if channel.starts_with('U') || channel.starts_with('W') {
        FakeSlack::dm_channel(channel)
    } else {
        channel.to_owned()
    };
    let message = Message {
        channel: channel.clone(),
        ts: next_ts(state),
        text: args.get("text").and_then(Value::as_str).map(str::to_owned),
        blocks: args.get("blocks").cloned(),
        metadata: metadata(args),
        edits: 0,
    };
    let answer = json!({"ok": true, "channel": channel, "ts": message.ts, "message": message_json(&message)});
    state.messages.push(message);
    answer
}

/// `metadata` as sent: a JSON object, or (in a form body) its JSON text.
fn metadata(args: &Map<String, Value>) -> Option<Value> {
    match args.get("metadata")? {
        Value::String(text) => serde_json::from_str(text).ok(),
        Value::Null => None,
        value => Some(value.clone()),
    }
}

/// The channel's messages, newest first: at most `limit` (100 unless given), none before
/// `oldest`, with their metadata only when `include_all_metadata` is set, as on Slack.
fn history(state: &State, args: &Map<String, Value>) -> Value {
    let channel = arg(args, "channel").unwrap_or_default();
    let number = |name: &str| match args.get(name) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse::<f64>().ok(),
        _ => None,
    };
    let limit = number("limit").map_or(100, |n| n as usize);
    let oldest = number("oldest").unwrap_or(0.0);
    let with_metadata = matches!(args.get("include_all_metadata"), Some(Value::Bool(true)))
        || matches!(arg(args, "include_all_metadata"), Some("true" | "1"));
    let messages: Vec<Value> = state
        .messages
        .iter()
        .rev()
        .filter(|m| m.channel == channel)
        .filter(|m| m.ts.parse::<f64>().is_ok_and(|ts| ts >= oldest))
        .take(limit)
        .map(|m| {
            let mut shown = message_json(m);
            if let (true, Some(metadata)) = (with_metadata, &m.metadata) {
                shown["metadata"] = metadata.clone();
            }
            shown
        })
        .collect();
    json!({"ok": true, "messages": messages, "has_more": false, "pin_count": 0,
        "response_metadata": {"next_cursor": ""}})
}

fn update(state: &mut State, args: &Map<String, Value>) -> Value {
    let (channel, ts) = (arg(args, "channel"), arg(args, "ts"));
    let found = state
        .messages
        .iter_mut()
        .find(|m| Some(m.channel.as_str()) == channel && Some(m.ts.as_str()) == ts);
    let Some(message) = found else {
        return failure("message_not_found");
    };
    if let Some(text) = args.get("text").and_then(Value::as_str) {
        message.text = Some(text.to_owned());
    }
    // Omitted blocks are kept; `"blocks": []` removes them.
    if let Some(blocks) = args.get("blocks") {
        message.blocks = Some(blocks.clone());
    }
    message.edits += 1;
    let mut shown = message_json(message);
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("ts");
    }
    json!({
        "ok": true, "channel": message.channel, "ts": message.ts,
        "text": message.text.clone().unwrap_or_default(), "message": shown,
    })
}

/// Stores `args.view` under `id` (a new id when `None`) and answers with it as Slack does.
fn store_view(state: &mut State, args: &Map<String, Value>, id: Option<String>) -> Value {
    state.counter += 1;
    let id = id.unwrap_or_else(|| format!("V{:08}", state.counter));
    let mut view = args.get("view").cloned().unwrap_or_else(|| json!({}));
    if let Some(fields) = view.as_object_mut() {
        let filled = json!({
            "id": id, "team_id": TEAM, "hash": format!("1700000000.h{}", state.counter),
            "state": {"values": {}}, "app_id": APP_ID, "bot_id": BOT_ID, "root_view_id": id,
        });
        if let Value::Object(filled) = filled {
            fields.extend(filled);
        }
    }
    state.views.insert(id, view.clone());
    json!({"ok": true, "view": view})
}

/// `hash` guards against overwriting a view someone else changed since it was read.
fn hash_conflict(state: &State, id: &str, args: &Map<String, Value>) -> bool {
    let stored = state.views.get(id).and_then(|v| v["hash"].as_str());
    arg(args, "hash").is_some_and(|hash| Some(hash) != stored)
}

fn views_update(state: &mut State, args: &Map<String, Value>) -> Value {
    let id = match (arg(args, "view_id"), arg(args, "external_id")) {
        (Some(id), _) => state.views.contains_key(id).then(|| id.to_owned()),
        (None, Some(external)) => state
            .views
            .iter()
            .find(|(_, view)| view["external_id"] == external)
            .map(|(id, _)| id.clone()),
        (None, None) => None,
    };
    match id {
        None => failure("not_found"),
        Some(id) if hash_conflict(state, &id, args) => failure("hash_conflict"),
        Some(id) => store_view(state, args, Some(id)),
    }
}

fn views_publish(state: &mut State, args: &Map<String, Value>) -> Value {
    let user = arg(args, "user_id").unwrap_or_default().to_owned();
    let existing = state.homes.get(&user).cloned();
    if existing
        .as_deref()
        .is_some_and(|id| hash_conflict(state, id, args))
    {
        return failure("hash_conflict");
    }
    let answer = store_view(state, args, existing);
    if let Some(id) = answer["view"]["id"].as_str() {
        state.homes.insert(user, id.to_owned());
    }
    answer
}
