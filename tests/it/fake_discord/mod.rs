//! A fake Discord for adapter tests: one axum server on 127.0.0.1:0 that is both the REST API v10
//! (`{api_url}/api/v10/...`, what serenity's `HttpBuilder::proxy(api_url)` and the adapter's own
//! calls reach) and the gateway websocket (`ws://127.0.0.1:PORT/?v=10&encoding=json`), for the
//! real serenity client. It is stateful (channels, messages with their edits, nonces, registered
//! commands, interactions with their 3-second and 15-minute windows), strict (bot token, Discord's
//! form-body limits, checked in [`rules`] and [`commands`], and the interaction-callback rules)
//! and records every REST call with its violations. Faults are scripted per route with
//! [`FakeDiscord::fail_next`] or at random with [`FakeDiscord::fail_at_random`]. Interactions are
//! built with [`Interaction`] and dispatched over the gateway with [`FakeDiscord::interaction`].
//! This is our own fake; the shared conformance kit stays the independent second opinion.

mod callbacks;
mod commands;
mod components;
mod conn;
mod gateway;
mod interaction;
mod routes;
mod rules;
mod server;
mod state;
mod tests;
mod tests_callbacks;
mod tests_gateway;
mod tests_interactions;
mod tests_rules;
mod tests_serenity;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use gateway::Ended;
pub use interaction::{Interaction, public_key_hex, sign};
pub use state::{Call, DmRefusal, Fault, Message, Route, Sent};

use state::State;

/// The bot token the fake accepts, as `Authorization: Bot <token>` and in IDENTIFY.
pub const BOT_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GfAkEs.fake-discord-bot-token";
/// The application (and bot user) id.
pub const APPLICATION_ID: &str = "1000000000000000001";
/// The guild interactions happen in after [`Interaction::in_guild`] when a test has no other.
pub const GUILD_ID: &str = "290926798626357999";
/// A guild text channel that exists from the start (post cards here, or add others with
/// [`FakeDiscord::add_channel`]).
pub const CHANNEL_ID: &str = "645027906669510667";
/// The bot's username.
pub const BOT_NAME: &str = "gatehouse";

/// The bot user object, as `/users/@me` and READY give it.
pub fn bot_user() -> Value {
    json!({
        "id": APPLICATION_ID, "username": BOT_NAME, "discriminator": "0", "global_name": null,
        "avatar": null, "bot": true, "system": false, "mfa_enabled": true, "verified": true,
        "flags": 0, "public_flags": 0, "email": null, "locale": "en-US",
    })
}

struct Shared {
    state: Mutex<State>,
    started: Instant,
    /// Woken on every change a test may wait for (a call, an identify, a connection).
    changed: Notify,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep serving the rest.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits (for at most 10 s of real time, so a paused tokio clock is not pushed on) until
    /// `check` finds something in the state.
    async fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&State) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        // Dropped when this wait ends, which wakes the timer thread at once.
        let (_cancel, cancelled) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let waited = cancelled.recv_timeout(Duration::from_secs(10));
            if waited == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let _ = tx.send(());
            }
        });
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check(&self.lock()) {
                return found;
            }
            if std::time::Instant::now() >= deadline {
                panic!("the fake Discord waited 10 s for {what}");
            }
            tokio::select! {
                () = &mut notified => {}
                _ = &mut rx => panic!("the fake Discord waited 10 s for {what}"),
            }
        }
    }
}

/// A running fake; the server stops when this is dropped.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FakeDiscord {
    /// Binds 127.0.0.1:0 and serves REST and the gateway on it.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(addr)),
            started: Instant::now(),
            changed: Notify::new(),
            addr,
        });
        let server = tokio::spawn(server::serve(listener, shared.clone()));
        FakeDiscord { shared, server }
    }

    /// `http://127.0.0.1:PORT`, what `discord.api_url` (and serenity's `HttpBuilder::proxy`)
    /// should be set to: calls go to `{api_url}/api/v10/...`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `ws://127.0.0.1:PORT`, the gateway URL `GET /gateway` and `/gateway/bot` hand out.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.shared.addr)
    }

    /// Makes a guild text channel exist (posting to an unknown channel fails with 10003).
    pub fn add_channel(&self, channel_id: &str) {
        self.shared.lock().channels.insert(channel_id.to_owned());
    }

    /// Makes DMs to `user_id` fail with 403 code 50007 "Cannot send messages to this user":
    /// when the DM channel is opened, or (as Discord does for a user who closed their DMs)
    /// only when a message is posted to it.
    pub fn refuse_dms(&self, user_id: &str, when: DmRefusal) {
        self.shared
            .lock()
            .dm_refusals
            .insert(user_id.to_owned(), when);
    }

    /// The DM channel `POST /users/@me/channels` gave (or a DM interaction used) for `user_id`.
    pub fn dm_channel_of(&self, user_id: &str) -> Option<String> {
        self.shared.lock().dms.get(user_id).cloned()
    }

    /// The next call to `route` meets `fault` instead of Discord (after faults queued before);
    /// call it again to queue more.
    pub fn fail_next(&self, route: Route, fault: Fault) {
        let mut state = self.shared.lock();
        state.faults.entry(route).or_default().push_back(fault);
    }

    /// From now on each call that changes something (POST, PATCH, PUT) fails with probability
    /// `percent`/100 with one of `faults`, drawn from a generator seeded with `seed` so a
    /// failing run can be replayed. Queued [`FakeDiscord::fail_next`] faults go first.
    pub fn fail_at_random(&self, seed: u64, percent: u32, faults: &[Fault]) {
        assert!(!faults.is_empty() && percent <= 100);
        self.shared.lock().random = Some(state::RandomFaults {
            seed,
            percent,
            faults: faults.to_vec(),
        });
    }

    /// Stops failing calls at random.
    pub fn stop_failing_at_random(&self) {
        self.shared.lock().random = None;
    }

    /// How long a [`Fault::Timeout`] keeps the caller waiting (30 s unless set).
    pub fn set_slow_delay(&self, delay: Duration) {
        self.shared.lock().slow_delay = delay;
    }

    /// Every REST call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The REST calls to one route.
    pub fn calls_to(&self, route: Route) -> Vec<Call> {
        let state = self.shared.lock();
        let calls = state.calls.iter().filter(|c| c.route == route);
        calls.cloned().collect()
    }

    /// Every call that broke a Discord rule (a refused form body, a late or second
    /// acknowledgement, a wrong token, an unknown route…): the list tests assert is empty.
    pub fn violations(&self) -> Vec<Call> {
        let state = self.shared.lock();
        let broken = state.calls.iter().filter(|c| !c.violations.is_empty());
        broken.cloned().collect()
    }

    /// The messages in `channel_id`, oldest first, as they stand after edits (ephemeral
    /// interaction responses included: see [`Message::ephemeral`]).
    pub fn messages(&self, channel_id: &str) -> Vec<Message> {
        let state = self.shared.lock();
        let here = state.messages.iter().filter(|m| m.channel_id == channel_id);
        here.cloned().collect()
    }

    /// Every message in every channel, oldest first, as they stand after edits.
    pub fn all_messages(&self) -> Vec<Message> {
        self.shared.lock().messages.clone()
    }

    /// One message as it stands now.
    pub fn message(&self, channel_id: &str, message_id: &str) -> Option<Message> {
        self.shared.lock().message(channel_id, message_id).cloned()
    }

    /// The bodies of the successful edits of a message, oldest first (channel PATCHes,
    /// UPDATE_MESSAGE callbacks and `@original` edits alike).
    pub fn edits(&self, channel_id: &str, message_id: &str) -> Vec<Value> {
        let state = self.shared.lock();
        let message = state.message(channel_id, message_id);
        message.map(|m| m.edits.clone()).unwrap_or_default()
    }

    /// The global commands as last bulk-overwritten, as Discord stores them (with ids).
    pub fn commands(&self) -> Vec<Value> {
        self.shared.lock().global_commands.clone()
    }

    /// The commands of one guild as last bulk-overwritten.
    pub fn guild_commands(&self, guild_id: &str) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .guild_commands
            .get(guild_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Registers an interaction without sending it, for HTTP-mode tests that POST
    /// [`Sent::body`] to the adapter themselves (signed with [`sign`]). Its 3-second window
    /// starts now.
    pub fn prepare(&self, builder: Interaction) -> Sent {
        let now = Instant::now();
        self.shared.lock().register(builder, now)
    }

    /// Builds the interaction, registers its id and token (so its callback is answered), and
    /// dispatches it as INTERACTION_CREATE on the identified gateway connection, waiting for
    /// one first.
    pub async fn interaction(&self, builder: Interaction) -> Sent {
        self.wait_identified().await;
        let mut state = self.shared.lock();
        let sent = state.register(builder, Instant::now());
        state.dispatch("INTERACTION_CREATE", sent.body.clone());
        sent
    }

    /// The body of the interaction's first accepted callback (`{"type": 4, "data": …}`),
    /// waiting for it (10 s at most).
    pub async fn callback(&self, interaction_id: &str) -> Value {
        let what = format!("the callback of interaction {interaction_id}");
        self.shared
            .wait_for(&what, |state| {
                let record = state.interactions.get(interaction_id)?;
                record.callback.clone()
            })
            .await
    }

    /// The follow-up messages sent with the interaction's token, oldest first, as they stand.
    pub fn followups(&self, token: &str) -> Vec<Message> {
        let state = self.shared.lock();
        let Some(record) = state.by_token(token) else {
            return Vec::new();
        };
        let ids = record.followups.clone();
        let found = ids.iter().filter_map(|id| state.message_by_id(id));
        found.cloned().collect()
    }

    /// The interaction's original response message as it stands (after `@original` edits),
    /// once a callback created or chose it.
    pub fn original(&self, token: &str) -> Option<Message> {
        let state = self.shared.lock();
        let id = state.by_token(token)?.original.clone()?;
        state.message_by_id(&id).cloned()
    }

    /// Waits until a gateway connection is identified (or resumed) and live.
    pub async fn wait_identified(&self) {
        self.shared
            .wait_for("an identified gateway client", |state| {
                state.gateway.live_session().map(|_| ())
            })
            .await
    }

    /// Waits until the gateway has accepted `n` connections in all.
    pub async fn wait_connections(&self, n: usize) {
        let what = format!("{n} gateway connection(s)");
        self.shared
            .wait_for(&what, |state| {
                (state.gateway.connections >= n).then_some(())
            })
            .await
    }

    /// Waits until `n` RESUMEs have been accepted in all.
    pub async fn wait_resumes(&self, n: usize) {
        let what = format!("{n} gateway resume(s)");
        self.shared
            .wait_for(&what, |state| (state.gateway.resumes >= n).then_some(()))
            .await
    }

    /// Waits until the client has sent `n` heartbeats in all.
    pub async fn wait_heartbeats(&self, n: usize) {
        let what = format!("{n} heartbeat(s)");
        self.shared
            .wait_for(&what, |state| (state.gateway.heartbeats >= n).then_some(()))
            .await
    }

    /// Gateway connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().gateway.connections
    }

    /// The IDENTIFY payloads (`d`) accepted so far, token removed; `["intents"]` is what the
    /// client asked for.
    pub fn identifies(&self) -> Vec<Value> {
        self.shared.lock().gateway.identifies.clone()
    }

    /// RESUMEs accepted so far.
    pub fn resumes(&self) -> usize {
        self.shared.lock().gateway.resumes
    }

    /// Heartbeats (op 1) received so far.
    pub fn heartbeats(&self) -> usize {
        self.shared.lock().gateway.heartbeats
    }

    /// Gateway protocol problems so far (bad IDENTIFY, unknown opcode, …): tests want it empty.
    pub fn gateway_violations(&self) -> Vec<String> {
        self.shared.lock().gateway.violations.clone()
    }

    /// The heartbeat interval HELLO announces to later connections (41.25 s unless set).
    pub fn set_heartbeat_interval(&self, interval: Duration) {
        self.shared.lock().gateway.heartbeat_interval = interval;
    }

    /// Sends op 7 RECONNECT on the current connection, as Discord does before it moves a
    /// session; the client should reconnect and RESUME.
    pub fn reconnect(&self) {
        self.shared
            .lock()
            .gateway
            .send_current(gateway::Command::Send(
                json!({"op": 7, "d": null, "s": null, "t": null}),
            ));
    }

    /// Sends op 9 INVALID_SESSION (`d` = `resumable`) on the current connection.
    pub fn invalidate_session(&self, resumable: bool) {
        self.shared
            .lock()
            .gateway
            .send_current(gateway::Command::Send(
                json!({"op": 9, "d": resumable, "s": null, "t": null}),
            ));
    }

    /// Cuts the current gateway connection without a close frame.
    pub fn drop_connection(&self) {
        let mut state = self.shared.lock();
        state.gateway.send_current(gateway::Command::Drop);
    }

    /// Closes the current gateway connection with `code` (4000 unknown error, 4009 session
    /// timed out, …).
    pub fn close_connection(&self, code: u16) {
        let mut state = self.shared.lock();
        state.gateway.send_current(gateway::Command::Close(code));
    }

    /// While `refusing`, every new gateway connection's handshake is answered 503, as in an
    /// outage; connections already open stay.
    pub fn refuse_connections(&self, refusing: bool) {
        self.shared.lock().gateway.refusing = refusing;
    }

    /// Waits (10 s at most) until `n` handshakes were refused in all.
    pub async fn wait_refused(&self, n: usize) {
        self.shared
            .wait_for(&format!("{n} refused handshakes"), |s| {
                (s.gateway.refused >= n).then_some(())
            })
            .await
    }

    /// Waits (10 s at most) until connection `n` has ended; how.
    pub async fn wait_ended(&self, n: usize) -> gateway::Ended {
        self.shared
            .wait_for(&format!("connection {n} to end"), |s| {
                s.gateway
                    .ended
                    .iter()
                    .find(|(id, _)| *id == n)
                    .map(|(_, ended)| ended.clone())
            })
            .await
    }
}

impl Drop for FakeDiscord {
    /// With `FAKE_DISCORD_LOG=<path>` set, appends every call as a JSON line
    /// (`{"method", "path", "body", "status", "violations"}`) to that file, so the conformance
    /// kit's `discord_validate.py` can give its second opinion on the same calls.
    fn drop(&mut self) {
        if let Some(path) = std::env::var_os("FAKE_DISCORD_LOG") {
            let lines: String = self
                .calls()
                .iter()
                .map(|c| {
                    let line = json!({"method": c.method, "path": c.path, "body": c.body,
                                      "status": c.status, "violations": c.violations});
                    format!("{line}\n")
                })
                .collect();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            let _ = file.and_then(|mut f| std::io::Write::write_all(&mut f, lines.as_bytes()));
        }
        self.server.abort();
        for task in self.shared.lock().gateway.tasks.drain(..) {
            task.abort();
        }
    }
}
