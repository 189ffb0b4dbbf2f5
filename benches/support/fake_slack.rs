//! A minimal fake Slack Web API on loopback: answers the methods Gatehouse calls with the
//! fields slack-morphism decodes, and notes when each request's approval card (a
//! chat.postMessage to a manager's DM naming `AR-n`) arrived.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Recorded {
    /// Request number → when its approval card was posted.
    pub cards: Mutex<HashMap<u64, Instant>>,
    pub calls: AtomicU64,
    counter: AtomicU64,
}

pub struct FakeSlack {
    pub api_url: String,
    pub recorded: Arc<Recorded>,
    _thread: std::thread::JoinHandle<()>,
}

impl FakeSlack {
    /// Starts the fake on its own single-threaded runtime.
    pub fn start() -> FakeSlack {
        let recorded = Arc::new(Recorded::default());
        let state = recorded.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/api/{method}", post(api).get(api))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let address = rx.recv().unwrap();
        FakeSlack {
            api_url: format!("http://{address}/api"),
            recorded,
            _thread: thread,
        }
    }

    pub fn cards(&self) -> HashMap<u64, Instant> {
        self.recorded.cards.lock().unwrap().clone()
    }
}

/// The number after the first `AR-` in `text`.
pub fn request_number(text: &str) -> Option<u64> {
    let at = text.find("AR-")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn args(body: &[u8]) -> Value {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return value;
    }
    let mut map = serde_json::Map::new();
    for pair in String::from_utf8_lossy(body).split('&') {
        if let Some((k, v)) = pair.split_once('=') {
            map.insert(k.to_owned(), Value::String(v.replace('+', " ")));
        }
    }
    Value::Object(map)
}

async fn api(
    State(recorded): State<Arc<Recorded>>,
    Path(method): Path<String>,
    body: Bytes,
) -> Json<Value> {
    let arrived = Instant::now();
    recorded.calls.fetch_add(1, Ordering::Relaxed);
    let args = args(&body);
    let n = recorded.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let ts = format!("1700000000.{n:06}");
    let text = |key: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Json(match method.as_str() {
        "auth.test" => json!({"ok": true, "url": "https://fake.slack.com/", "team": "Fake",
            "user": "gatehouse", "team_id": "T0FAKE", "user_id": "U0FAKEBOT", "bot_id": "B0FAKE"}),
        "conversations.open" => {
            let users = text("users");
            json!({"ok": true, "channel": {"id": format!("D{users}")}})
        }
        "chat.postMessage" => {
            let channel = text("channel");
            if channel.starts_with("DUM")
                && let Some(number) = request_number(&String::from_utf8_lossy(&body))
            {
                recorded
                    .cards
                    .lock()
                    .unwrap()
                    .entry(number)
                    .or_insert(arrived);
            }
            json!({"ok": true, "channel": channel, "ts": ts, "message": message(&ts)})
        }
        "chat.update" => {
            let mut shown = message(&ts);
            shown.as_object_mut().map(|m| m.remove("ts"));
            json!({"ok": true, "channel": text("channel"), "ts": text("ts"), "text": "", "message": shown})
        }
        "chat.postEphemeral" => json!({"ok": true, "message_ts": ts}),
        "conversations.history" => json!({"ok": true, "messages": [], "has_more": false,
            "pin_count": 0, "response_metadata": {"next_cursor": ""}}),
        "views.open" | "views.update" | "views.publish" => {
            let mut view = args.get("view").cloned().unwrap_or_else(|| json!({}));
            if let Some(fields) = view.as_object_mut() {
                let id = format!("V{n:08}");
                for (k, v) in [
                    ("id", json!(id)),
                    ("team_id", json!("T0FAKE")),
                    ("hash", json!(format!("1700000000.h{n}"))),
                    ("state", json!({"values": {}})),
                    ("app_id", json!("A0FAKE")),
                    ("bot_id", json!("B0FAKE")),
                    ("root_view_id", json!(id)),
                ] {
                    fields.insert(k.to_owned(), v);
                }
            }
            json!({"ok": true, "view": view})
        }
        _ => json!({"ok": false, "error": "user_not_found"}),
    })
}

fn message(ts: &str) -> Value {
    json!({"type": "message", "user": "U0FAKEBOT", "bot_id": "B0FAKE", "app_id": "A0FAKE",
        "team": "T0FAKE", "ts": ts, "text": ""})
}
