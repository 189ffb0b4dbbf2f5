//! The fake gateway: a websocket at `/?v=10&encoding=json` speaking Discord's protocol in text
//! JSON frames. HELLO on connect; IDENTIFY (op 2) with the bot token (else close 4004), valid
//! properties, shard and intents (privileged intents close 4014) → READY; heartbeats (op 1) →
//! op 11; RESUME (op 6) of a known session replays what it missed, then RESUMED, and an unknown
//! one gets INVALID_SESSION. Anything before IDENTIFY closes 4003, an unknown opcode 4001,
//! a frame that is not JSON 4002. The test side pushes dispatches, RECONNECT, INVALID_SESSION,
//! a close or a cut onto the current connection through [`Command`]s, can refuse every new
//! connection's handshake (an outage), and reads how each connection ended ([`Ended`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::conn::Conn;
use super::{APPLICATION_ID, BOT_TOKEN, Shared, bot_user};

/// What the test side asks of a connection.
pub enum Command {
    Send(Value),
    /// Close with this code and a close frame.
    Close(u16),
    /// Cut the TCP connection without a close frame.
    Drop,
}

/// How a connection ended, seen from the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client sent a close frame with this code.
    ClientClosed(u16),
    /// The fake sent a close frame, and the client answered it with its own.
    CloseAnswered,
    /// The fake sent a close frame, and the connection ended without the client's answer.
    CloseUnanswered,
    /// The connection ended without any close frame from the client (1006 to Discord).
    Cut,
    /// The test cut it ([`Command::Drop`]).
    DroppedByFake,
}

/// GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT: need approval the bot does not have.
const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);
/// Every intent bit Discord defines: 0–16, 20, 21, 24 and 25.
const KNOWN_INTENTS: u64 = 0b11_0011_0001_1111_1111_1111_1111;

struct Connection {
    id: usize,
    tx: mpsc::UnboundedSender<Command>,
    session: Option<String>,
}

#[derive(Default)]
struct Session {
    seq: u64,
    /// Every dispatch of the session, for RESUME to replay.
    events: Vec<Value>,
}

pub struct GatewayState {
    ws_url: String,
    pub heartbeat_interval: Duration,
    pub connections: usize,
    pub identifies: Vec<Value>,
    pub resumes: usize,
    pub heartbeats: usize,
    pub violations: Vec<String>,
    /// While set, every websocket handshake is answered 503, as in an outage.
    pub refusing: bool,
    /// Handshakes refused while `refusing`.
    pub refused: usize,
    /// How each connection ended, by connection number (1 is the first).
    pub ended: Vec<(usize, Ended)>,
    /// Connection tasks, stopped when the fake is dropped.
    pub tasks: Vec<AbortHandle>,
    current: Option<Connection>,
    sessions: HashMap<String, Session>,
}

impl GatewayState {
    pub fn new(ws_url: String) -> GatewayState {
        GatewayState {
            ws_url,
            heartbeat_interval: Duration::from_millis(41_250),
            connections: 0,
            identifies: Vec::new(),
            resumes: 0,
            heartbeats: 0,
            violations: Vec::new(),
            refusing: false,
            refused: 0,
            ended: Vec::new(),
            tasks: Vec::new(),
            current: None,
            sessions: HashMap::new(),
        }
    }

    /// The session id of the current connection, once it is identified or resumed.
    pub fn live_session(&self) -> Option<&str> {
        let current = self.current.as_ref().filter(|c| !c.tx.is_closed())?;
        current.session.as_deref()
    }

    pub fn send_current(&mut self, command: Command) {
        let current = self
            .current
            .as_ref()
            .expect("no gateway client is connected");
        let _ = current.tx.send(command);
    }

    /// Sends `t` with `d` on the live session (op 0, next sequence number).
    pub fn dispatch(&mut self, event: &str, data: Value) {
        let current = self
            .current
            .as_ref()
            .expect("no gateway client is connected");
        let id = current
            .session
            .clone()
            .expect("the gateway client is not identified");
        let session = self.sessions.entry(id).or_default();
        session.seq += 1;
        let frame = json!({"op": 0, "t": event, "s": session.seq, "d": data});
        session.events.push(frame.clone());
        let _ = current.tx.send(Command::Send(frame));
    }
}

/// What one client frame leads to.
enum Step {
    Reply(Vec<Value>),
    Close(u16, &'static str),
}

/// An outage: the handshake is answered 503 Service Unavailable, and the connection closed.
async fn refuse(mut conn: Conn, shared: &Shared) {
    shared.lock().gateway.refused += 1;
    shared.changed.notify_waiters();
    let answer =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let _ = conn.write_all(answer.as_bytes()).await;
    let _ = conn.shutdown().await;
}

pub async fn serve(conn: Conn, path: String, shared: Arc<Shared>) {
    if shared.lock().gateway.refusing {
        return refuse(conn, &shared).await;
    }
    let query = check_query(&path);
    let Ok(mut socket) = tokio_tungstenite::accept_async(conn).await else {
        return;
    };
    let (tx, mut commands) = mpsc::unbounded_channel();
    let id = {
        let mut state = shared.lock();
        let gateway = &mut state.gateway;
        gateway.connections += 1;
        let id = gateway.connections;
        gateway.current = Some(Connection {
            id,
            tx,
            session: None,
        });
        if let Err((code, why)) = query {
            gateway
                .violations
                .push(format!("gateway URL {path}: {why}"));
            let _ = gateway
                .current
                .as_ref()
                .map(|c| c.tx.send(Command::Close(code)));
        }
        id
    };
    shared.changed.notify_waiters();
    let interval = shared.lock().gateway.heartbeat_interval.as_millis() as u64;
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null});
    let mut ended = Ended::Cut;
    // Until a newer connection becomes the current one: this one is then left to the client.
    let mut current = true;
    if socket.send(Message::text(hello.to_string())).await.is_ok() {
        loop {
            let step = tokio::select! {
                command = commands.recv(), if current => match command {
                    Some(Command::Send(frame)) => Step::Reply(vec![frame]),
                    Some(Command::Close(code)) => Step::Close(code, "closed by the test"),
                    Some(Command::Drop) => {
                        ended = Ended::DroppedByFake;
                        break;
                    }
                    None => {
                        current = false;
                        Step::Reply(Vec::new())
                    }
                },
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => receive(&shared, id, text.as_str()),
                    Some(Ok(Message::Binary(_))) => Step::Close(4002, "Error while decoding payload."),
                    Some(Ok(Message::Close(frame))) => {
                        ended = Ended::ClientClosed(frame.map_or(1005, |f| u16::from(f.code)));
                        break;
                    }
                    Some(Err(_)) | None => break,
                    Some(Ok(_)) => Step::Reply(Vec::new()),
                },
            };
            shared.changed.notify_waiters();
            match step {
                Step::Reply(frames) => {
                    for frame in frames {
                        if socket.send(Message::text(frame.to_string())).await.is_err() {
                            break;
                        }
                    }
                }
                Step::Close(code, reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    // Let the client answer the close, but not forever.
                    let answer = async {
                        loop {
                            match socket.next().await {
                                Some(Ok(Message::Close(_))) => return true,
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => return false,
                            }
                        }
                    };
                    let answered = tokio::time::timeout(Duration::from_secs(2), answer).await;
                    ended = if answered == Ok(true) {
                        Ended::CloseAnswered
                    } else {
                        Ended::CloseUnanswered
                    };
                    break;
                }
            }
        }
    }
    let mut state = shared.lock();
    state.gateway.ended.push((id, ended));
    if state.gateway.current.as_ref().is_some_and(|c| c.id == id) {
        state.gateway.current = None;
    }
    drop(state);
    shared.changed.notify_waiters();
}

/// `/?v=10&encoding=json`, as serenity asks (`?v=10`) or Discord documents it.
fn check_query(path: &str) -> Result<(), (u16, String)> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if !route.is_empty() && route != "/" {
        return Err((4000, format!("unknown path {route}")));
    }
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let get = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    if get("v") != Some("10") {
        return Err((4012, "Invalid API version: v=10 is required".into()));
    }
    if get("encoding").is_some_and(|e| e != "json") {
        return Err((4002, "only encoding=json is served".into()));
    }
    if get("compress").is_some() {
        return Err((4000, "the fake serves no transport compression".into()));
    }
    Ok(())
}

fn receive(shared: &Shared, id: usize, text: &str) -> Step {
    let mut state = shared.lock();
    let gateway = &mut state.gateway;
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        gateway.violations.push(format!("not JSON: {text}"));
        return Step::Close(4002, "Error while decoding payload.");
    };
    let identified = gateway
        .current
        .as_ref()
        .is_some_and(|c| c.id == id && c.session.is_some());
    let data = &frame["d"];
    match frame["op"].as_u64() {
        Some(1) => {
            gateway.heartbeats += 1;
            if !(data.is_null() || data.is_u64()) {
                gateway.violations.push(format!("heartbeat d is {data}"));
            }
            Step::Reply(vec![json!({"op": 11, "d": null, "s": null, "t": null})])
        }
        Some(2) if identified => Step::Close(4005, "Already authenticated."),
        Some(2) => identify(gateway, id, data),
        Some(6) => resume(gateway, id, data),
        Some(3 | 4 | 8 | 31) if identified => Step::Reply(Vec::new()),
        Some(3 | 4 | 8 | 31) => Step::Close(4003, "Not authenticated."),
        _ => {
            gateway
                .violations
                .push(format!("unknown opcode in {frame}"));
            Step::Close(4001, "Unknown opcode.")
        }
    }
}

fn token_ok(token: &Value) -> bool {
    let token = token.as_str().unwrap_or("");
    token.strip_prefix("Bot ").unwrap_or(token) == BOT_TOKEN
}

fn identify(gateway: &mut GatewayState, id: usize, data: &Value) -> Step {
    if !token_ok(&data["token"]) {
        gateway
            .violations
            .push("IDENTIFY with a wrong token".into());
        return Step::Close(4004, "Authentication failed.");
    }
    let properties = &data["properties"];
    let described = ["os", "browser", "device"]
        .iter()
        .all(|k| properties[k].is_string());
    let Some(intents) = data["intents"].as_u64().filter(|_| described) else {
        let problem =
            format!("IDENTIFY without properties {{os, browser, device}} or intents: {data}");
        gateway.violations.push(problem);
        return Step::Close(4002, "Error while decoding payload.");
    };
    let shard = &data["shard"];
    if !shard.is_null() && (shard[0] != 0 || shard[1] != 1) {
        gateway.violations.push(format!(
            "IDENTIFY with shard {shard}; /gateway/bot says 1 shard"
        ));
        return Step::Close(4010, "Invalid shard.");
    }
    if intents & !KNOWN_INTENTS != 0 {
        gateway
            .violations
            .push(format!("IDENTIFY with unknown intents {intents}"));
        return Step::Close(4013, "Invalid intent(s).");
    }
    if intents & PRIVILEGED_INTENTS != 0 {
        gateway
            .violations
            .push(format!("IDENTIFY with privileged intents {intents}"));
        return Step::Close(4014, "Disallowed intent(s).");
    }
    let mut recorded = data.clone();
    if let Some(fields) = recorded.as_object_mut() {
        fields.remove("token");
    }
    gateway.identifies.push(recorded);
    let session = format!("fake{:028x}", gateway.identifies.len() * 7919 + id);
    gateway.sessions.insert(session.clone(), Session::default());
    if let Some(current) = gateway.current.as_mut().filter(|c| c.id == id) {
        current.session = Some(session.clone());
    }
    let ready = json!({
        "v": 10, "user": bot_user(), "guilds": [], "session_id": session,
        "session_type": "normal", "resume_gateway_url": gateway.ws_url, "shard": [0, 1],
        "application": {"id": APPLICATION_ID, "flags": 0},
        "private_channels": [], "relationships": [], "presences": [],
        "guild_join_requests": [], "geo_ordered_rtc_regions": [], "user_settings": {},
        "_trace": ["[\"fake-discord-gateway\"]"],
    });
    gateway.dispatch("READY", ready);
    Step::Reply(Vec::new())
}

fn resume(gateway: &mut GatewayState, id: usize, data: &Value) -> Step {
    if !token_ok(&data["token"]) {
        gateway.violations.push("RESUME with a wrong token".into());
        return Step::Close(4004, "Authentication failed.");
    }
    let session = data["session_id"].as_str().unwrap_or("").to_owned();
    let Some(known) = gateway.sessions.get(&session) else {
        return Step::Reply(vec![json!({"op": 9, "d": false, "s": null, "t": null})]);
    };
    let seen = data["seq"].as_u64().unwrap_or(0);
    let missed: Vec<Value> = known
        .events
        .iter()
        .filter(|f| f["s"].as_u64().is_some_and(|s| s > seen))
        .cloned()
        .collect();
    gateway.resumes += 1;
    if let Some(current) = gateway.current.as_mut().filter(|c| c.id == id) {
        current.session = Some(session);
    }
    // Replayed frames first, then RESUMED (sent through the queue, after these).
    gateway.dispatch("RESUMED", json!({"_trace": ["[\"fake-discord-gateway\"]"]}));
    Step::Reply(missed)
}
