//! A fake Slack Web API for adapter tests: an axum server on 127.0.0.1:0 that answers
//! `/api/{method}` the way Slack does for the methods Gatehouse uses, stateful (message `ts`
//! and view ids are consistent; `chat.update` of an unknown message fails), strict (bearer
//! token, required arguments, Block Kit limits, checked in [`blocks`]) and recording every call
//! so a test can assert on what was sent. Faults are scripted per method with
//! [`FakeSlack::fail_next`]. This is our own fake; the shared conformance kit stays the
//! independent second opinion.
//!
//! The one fake Slack: the benches include this module too (`#[path]` in benches/support),
//! start it on a thread of its own and note card arrivals with [`FakeSlack::tap`].

mod blocks;
pub mod killable;
mod methods;
mod server;
pub mod socket;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// The bot token the fake accepts (any `xoxb-` token is accepted; this one is handy).
pub const BOT_TOKEN: &str = "xoxb-fake-bot-token";
/// The app-level token `apps.connections.open` wants (any `xapp-` token).
pub const APP_TOKEN: &str = "xapp-fake-app-token";

/// What the next call(s) to a method meet instead of Slack. A faulted call is recorded (with
/// its fault) and has no effect, but for [`Fault::LostResponse`], which has its effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// 500 with `{"ok":false,"error":"internal_error"}`.
    ServerError,
    /// No answer for [`FakeSlack::set_slow_delay`] (30 s unless set): longer than the client's
    /// timeout. Then a 504, which nobody is waiting for any more.
    Timeout,
    /// The connection is closed without an answer.
    Drop,
    /// The call is applied (a message is stored, as Slack would have), then the connection
    /// is closed without an answer: the caller cannot tell it from [`Fault::Drop`].
    LostResponse,
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The arguments, JSON or form alike; `blocks`/`view`/`attachments` sent as JSON text are
    /// parsed, so a test reads them as JSON.
    pub args: Value,
    /// Time since the fake started (tokio time, so it follows a paused clock).
    pub at: Duration,
    pub fault: Option<Fault>,
    /// Slack-style messages (`[ERROR] … [json-pointer:/blocks/0]`); empty for a clean call.
    pub violations: Vec<String>,
    pub status: u16,
    pub response: Value,
}

impl Call {
    /// Whether Slack would have said `"ok": true`.
    pub fn ok(&self) -> bool {
        self.response["ok"] == Value::Bool(true)
    }

    /// The `error` of a refused call.
    pub fn error(&self) -> Option<&str> {
        self.response["error"].as_str()
    }
}

/// A message as it stands in a channel now.
#[derive(Clone, Debug)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// The message metadata it was posted with (`event_type`, `event_payload`).
    pub metadata: Option<Value>,
    /// How many successful `chat.update`s it has had.
    pub edits: u32,
}

/// The fake's state; handlers and the test both reach it through the one lock.
#[derive(Default)]
struct State {
    calls: Vec<Call>,
    messages: Vec<Message>,
    faults: HashMap<String, VecDeque<Fault>>,
    users: HashMap<String, Value>,
    socket_url: Option<String>,
    slow_delay: Option<Duration>,
    /// View id → the view as last opened, updated or published.
    views: HashMap<String, Value>,
    /// User id → id of their published App Home view.
    homes: HashMap<String, String>,
    counter: u64,
    random: Option<RandomFaults>,
    tap: Option<Tap>,
}

/// Sees every call as it is recorded (see [`FakeSlack::tap`]).
type Tap = Box<dyn Fn(&Call) + Send>;

/// Faults drawn for any call from a seeded generator (see [`FakeSlack::fail_at_random`]).
struct RandomFaults {
    seed: u64,
    percent: u32,
    faults: Vec<Fault>,
}

impl State {
    /// Keeps `call`, after showing it to the tap.
    fn record(&mut self, call: Call) {
        if let Some(tap) = &self.tap {
            tap(&call);
        }
        self.calls.push(call);
    }

    /// The fault a call to `method` meets: a queued one first, else maybe a random one.
    fn next_fault(&mut self, method: &str) -> Option<Fault> {
        if let Some(fault) = self.faults.get_mut(method).and_then(|q| q.pop_front()) {
            return Some(fault);
        }
        let random = self.random.as_mut()?;
        // splitmix64, as the fake Discord draws its faults.
        random.seed = random.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = random.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let draw = z ^ (z >> 31);
        let hit = (draw % 100) < u64::from(random.percent);
        let faults = &random.faults;
        hit.then(|| faults[((draw >> 32) % faults.len() as u64) as usize].clone())
    }
}

struct Shared {
    state: Mutex<State>,
    started: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep serving the rest.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake; the server stops when this is dropped.
pub struct FakeSlack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: AbortHandle,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            started: Instant::now(),
        });
        let server = tokio::spawn(server::serve(listener, shared.clone())).abort_handle();
        FakeSlack {
            shared,
            addr,
            server,
        }
    }

    /// [`FakeSlack::start`] on a thread and runtime of its own, for a caller without a runtime
    /// (a bench) or one that must not share its runtime with the fake.
    pub fn start_on_own_thread() -> FakeSlack {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let fake = FakeSlack::start().await;
                let running = (fake.shared.clone(), fake.addr, fake.server.clone());
                std::mem::forget(fake);
                tx.send(running).unwrap();
                std::future::pending::<()>().await
            });
        });
        let (shared, addr, server) = rx.recv().unwrap();
        FakeSlack {
            shared,
            addr,
            server,
        }
    }

    /// When the fake started: a call arrived at `started() + call.at`.
    pub fn started(&self) -> std::time::Instant {
        self.shared.started.into_std()
    }

    /// Shows every call from now on to `tap` as it is recorded (under the fake's lock: keep
    /// it short). A bench notes arrivals this way rather than reading every call back.
    pub fn tap(&self, tap: impl Fn(&Call) + Send + 'static) {
        self.shared.lock().tap = Some(Box::new(tap));
    }

    /// Forgets the calls recorded so far (a bench's, between its runs).
    pub fn forget_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// `http://127.0.0.1:PORT/api`, what `slack.api_url` should be set to.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The DM channel `conversations.open` gives for `user` (and where `chat.postMessage` to a
    /// user id lands).
    pub fn dm_channel(user: &str) -> String {
        format!("D{user}")
    }

    /// The next `n` calls to `method` meet `fault` instead of Slack (after faults queued before).
    pub fn fail_next(&self, method: &str, n: usize, fault: Fault) {
        let mut state = self.shared.lock();
        let queue = state.faults.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// From now on each call (to any method) fails with probability `percent`/100 with one of
    /// `faults`, drawn from a generator seeded with `seed` so a failing run can be replayed.
    /// Queued [`FakeSlack::fail_next`] faults go first.
    pub fn fail_at_random(&self, seed: u64, percent: u32, faults: &[Fault]) {
        assert!(!faults.is_empty() && percent <= 100);
        self.shared.lock().random = Some(RandomFaults {
            seed,
            percent,
            faults: faults.to_vec(),
        });
    }

    /// How long a [`Fault::Timeout`] keeps the caller waiting.
    pub fn set_slow_delay(&self, delay: Duration) {
        self.shared.lock().slow_delay = Some(delay);
    }

    /// Makes `users.info` know a user: a Slack user object with at least `id`, e.g.
    /// `{"id":"U1","name":"alice","profile":{"email":"alice@example.com"}}`.
    pub fn add_user(&self, user: Value) {
        let id = user["id"].as_str().unwrap().to_owned();
        self.shared.lock().users.insert(id, user);
    }

    /// The websocket URL `apps.connections.open` hands out (refused until set).
    pub fn set_socket_url(&self, url: &str) {
        self.shared.lock().socket_url = Some(url.to_owned());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let state = self.shared.lock();
        state
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Every call that broke a platform rule: the list a conformance assertion wants empty.
    pub fn violations(&self) -> Vec<Call> {
        let state = self.shared.lock();
        let broken = state.calls.iter().filter(|c| !c.violations.is_empty());
        broken.cloned().collect()
    }

    /// The messages in `channel`, oldest first, as they stand after updates.
    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        let state = self.shared.lock();
        let here = state.messages.iter().filter(|m| m.channel == channel);
        here.cloned().collect()
    }

    /// Every message in every channel, oldest first, as they stand after updates.
    pub fn all_messages(&self) -> Vec<Message> {
        self.shared.lock().messages.clone()
    }

    /// The App Home view last published for `user`.
    pub fn home_view(&self, user: &str) -> Option<Value> {
        let state = self.shared.lock();
        let id = state.homes.get(user)?;
        state.views.get(id).cloned()
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An argument as a non-empty string.
fn arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name)?.as_str().filter(|s| !s.is_empty())
}
