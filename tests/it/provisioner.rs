//! A provisioning target for tests: an axum server on 127.0.0.1:0 that receives the `webhook`
//! connector's calls, refuses any whose signature [`gatehouse::connector::verify`] does not
//! accept, and records the rest. It can fail calls at random (seeded, like the fake Slack's
//! and Discord's random faults), including by applying a call and losing its answer. What a
//! test wants from it is [`Provisioner::effects`]: per grant, the distinct grants and revokes
//! it applied, counted by idempotency key, so that a retried call is not a second effect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::fake_slack::killable::{KillSwitch, KillableListener};

/// The secret the test configuration gives the `webhook` connector.
pub const SECRET: &str = "provisioner-test-secret-0123456789";

/// How one call is failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: 1`.
    RateLimited,
    /// 500.
    ServerError,
    /// No answer until after the connector's timeout (see [`Provisioner::start`]); not applied.
    Timeout,
    /// The connection is closed without an answer; not applied.
    Drop,
    /// Applied, then the connection is closed without an answer.
    LostResponse,
}

pub const ALL_FAULTS: &[Fault] = &[
    Fault::RateLimited,
    Fault::ServerError,
    Fault::Timeout,
    Fault::Drop,
    Fault::LostResponse,
];

/// One call that was applied: it changed the target.
#[derive(Clone, Debug)]
pub struct Applied {
    pub action: String,
    pub grant: String,
    pub key: String,
}

#[derive(Default)]
struct Inner {
    applied: Vec<Applied>,
    refused: Vec<String>,
    calls: usize,
    random: Option<(u64, u32, Vec<Fault>)>,
}

struct Shared {
    inner: Mutex<Inner>,
    slow: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a grant went through at the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Distinct idempotency keys of the grant calls applied.
    pub grants: Vec<String>,
    /// Distinct idempotency keys of the revoke calls applied.
    pub revokes: Vec<String>,
    /// Whether the last applied call was a grant: the access is held there now.
    pub held: bool,
    /// Whether a revoke was applied before the first grant.
    pub revoked_before_granted: bool,
}

pub struct Provisioner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Provisioner {
    /// Starts the receiver; a [`Fault::Timeout`] keeps the caller waiting `slow` (make it
    /// longer than the connector's `timeout`).
    pub async fn start(slow: Duration) -> Provisioner {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            slow,
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        let service = app.into_make_service_with_connect_info::<KillSwitch>();
        let server = tokio::spawn(async move {
            axum::serve(KillableListener(listener), service)
                .await
                .unwrap();
        });
        Provisioner {
            shared,
            addr,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The `[[connectors]]` entry of gatehouse.toml for this receiver, as `id`.
    pub fn connector_toml(&self, id: &str, timeout: &str) -> String {
        format!(
            "\n[[connectors]]\nid = \"{id}\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout = \"{timeout}\"\n",
            self.url()
        )
    }

    /// From now on each call fails with probability `percent`/100 with one of `faults`.
    pub fn fail_at_random(&self, seed: u64, percent: u32, faults: &[Fault]) {
        self.shared.lock().random = Some((seed, percent, faults.to_vec()));
    }

    /// Every applied call, in order.
    pub fn applied(&self) -> Vec<Applied> {
        self.shared.lock().applied.clone()
    }

    /// Calls refused for a bad signature or body: a test wants none.
    pub fn refused(&self) -> Vec<String> {
        self.shared.lock().refused.clone()
    }

    /// Every call received, faulted or not.
    pub fn calls(&self) -> usize {
        self.shared.lock().calls
    }

    /// Per grant id, what was applied there.
    pub fn effects(&self) -> BTreeMap<String, Effects> {
        let mut effects: BTreeMap<String, Effects> = BTreeMap::new();
        for call in self.applied() {
            let entry = effects.entry(call.grant.clone()).or_default();
            let granting = call.action == "grant";
            if !granting && entry.grants.is_empty() {
                entry.revoked_before_granted = true;
            }
            let keys = if granting {
                &mut entry.grants
            } else {
                &mut entry.revokes
            };
            if !keys.contains(&call.key) {
                keys.push(call.key.clone());
            }
            entry.held = granting;
        }
        effects
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn draw(random: &mut (u64, u32, Vec<Fault>)) -> Option<Fault> {
    let (seed, percent, faults) = random;
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let z = z ^ (z >> 31);
    ((z % 100) < u64::from(*percent)).then(|| faults[((z >> 32) % faults.len() as u64) as usize])
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(switch): ConnectInfo<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get(gatehouse::connector::webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let verified = gatehouse::connector::verify(SECRET.as_bytes(), signature, &body, now, 300);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let header_key = headers
        .get(gatehouse::connector::webhook::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = {
        let mut inner = shared.lock();
        inner.calls += 1;
        let call = match (verified, &parsed) {
            (Err(why), _) => Err(why.to_owned()),
            (Ok(()), None) => Err("the body is not JSON".to_owned()),
            (Ok(()), Some(body)) => applied(body, header_key.as_deref()),
        };
        let call = match call {
            Ok(call) => call,
            Err(why) => {
                inner.refused.push(why.clone());
                return (StatusCode::UNAUTHORIZED, why).into_response();
            }
        };
        let fault = inner.random.as_mut().and_then(draw);
        if matches!(fault, None | Some(Fault::LostResponse)) {
            inner.applied.push(call);
        }
        fault
    };
    match fault {
        None => (StatusCode::OK, "done").into_response(),
        Some(Fault::RateLimited) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response(),
        Some(Fault::ServerError) => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        Some(Fault::Timeout) => {
            tokio::time::sleep(shared.slow).await;
            (StatusCode::GATEWAY_TIMEOUT, "too late").into_response()
        }
        Some(Fault::Drop | Fault::LostResponse) => {
            switch.kill();
            StatusCode::OK.into_response()
        }
    }
}

/// The call a verified body asks for, or why it is malformed.
fn applied(body: &Value, header_key: Option<&str>) -> Result<Applied, String> {
    let text = |name: &str| body[name].as_str().map(str::to_owned);
    let key = text("idempotency_key").ok_or("no idempotency_key")?;
    if header_key != Some(key.as_str()) {
        return Err(format!(
            "Idempotency-Key {header_key:?} is not the body's {key}"
        ));
    }
    let action = text("action").ok_or("no action")?;
    if action != "grant" && action != "revoke" {
        return Err(format!("unknown action {action}"));
    }
    Ok(Applied {
        action,
        grant: text("grant").ok_or("no grant")?,
        key,
    })
}
