//! Gateway mode: serenity's client keeps a websocket to Discord (no public URL needed) and
//! hands us each INTERACTION_CREATE, which is read into the same [`Incoming`] as HTTP mode,
//! answered by the same [`Responder`], and acknowledged through the callback endpoint.
//! Serenity's HTTP client goes through `discord.api_url` (its proxy setting, with its rate
//! limiter off as that requires), so the gateway URL it is given comes from there too.
//! Serenity resumes and reconnects by itself; if its client stops altogether (a network
//! outage it gave up on), it is started again with backoff until shutdown.
//!
//! **What `/readyz` is told.** Discord counts as connected only while serenity's shard is in
//! its `Connected` stage: READY or RESUMED received, and no reconnect under way. Serenity
//! reconnects inside its shard runner without ever returning from `Client::start`, so the
//! stage is read from where serenity's shard manager records it (`ShardManager::runners`):
//! at every stage change serenity reports (`EventHandler::shard_stage_update`, READY,
//! RESUMED) and every [`LOOK_EVERY`], since a resume that fails and the restart that follows
//! change the record without an event. A shard being restarted is not in the record at all:
//! not connected either. What serenity does not record is not seen: a resume under way still
//! counts as connected until it succeeds or fails (at once when Discord refuses it; a
//! connection attempt that hangs fails only with the system's TCP timeout, as serenity gives
//! its websocket connect no deadline of its own).
//!
//! **What Discord sees when serenity moves to a new connection.** On op 7 RECONNECT, and on a
//! close Discord starts (4000 and the other resumable codes), serenity 0.12's
//! `Shard::resume` replaces its websocket (`self.client = self.initialize().await?`) without
//! closing the old one, and the close frame tungstenite queued in answer to Discord's is
//! dropped with it, unsent: Discord sees that connection end without a close handshake (1006).
//! Nothing here can reach that socket (serenity's `ShardRunner` owns it). It is harmless:
//! Discord keeps a session whose connection ended with any code but 1000 or 1001 resumable,
//! which is what the RESUME on the new connection needs, and reaps the old TCP connection by
//! itself. Gatehouse's own shutdown does close with a handshake (serenity's `shutdown_all`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ClientBuilder, ConnectionStage, Context, EventHandler, GatewayIntents, HttpBuilder,
    Interaction, Ready, ResumedEvent, ShardId, ShardRunnerInfo, ShardStageUpdateEvent,
};
use serenity::async_trait;
use tokio::sync::{Mutex, Notify, watch};

use super::interaction::Incoming;
use super::respond::{Responder, Seen};
use crate::backoff::{Backoff, Retries};
use crate::metrics::Readiness;

/// The platform's name in metrics and readiness.
const PLATFORM: &str = "discord";

/// Waits before starting a stopped client again: 1 s, doubling up to a minute, each up to a
/// quarter longer. A client that stopped cleanly starts them over.
pub const RESTART: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).jitter(0.0, 0.25);

/// How often the shard's stage is read when serenity reports nothing.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

struct Handler {
    responder: Arc<Responder>,
    /// Woken whenever serenity reports the session changing: the stage is read again.
    changed: Arc<Notify>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, ready: Ready) {
        self.changed.notify_one();
        tracing::info!(user = %ready.user.name, "connected to the Discord gateway");
    }

    async fn resume(&self, _: Context, _: ResumedEvent) {
        self.changed.notify_one();
        tracing::info!("resumed the Discord gateway session");
    }

    async fn shard_stage_update(&self, _: Context, event: ShardStageUpdateEvent) {
        self.changed.notify_one();
        tracing::debug!(old = ?event.old, new = ?event.new, "Discord gateway stage");
    }

    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let incoming = Incoming::from(interaction);
        if incoming.id.is_empty() {
            return;
        }
        let responder = match self.responder.seen(&incoming.id).await {
            Ok(Seen::First(responder)) => responder,
            Ok(Seen::Again) => {
                tracing::info!(interaction = %incoming.id, "an interaction delivered twice is answered once");
                return;
            }
            Err(error) => {
                // Answering is better than dropping: a double delivery is rare, a lost
                // answer is what the person sees.
                tracing::warn!(%error, "cannot record a Discord interaction; answering it anyway");
                self.responder.clone()
            }
        };
        let (id, token) = (incoming.id.clone(), incoming.token.clone());
        let body = responder.callback(incoming).await;
        if responder.facade().is_repeat() {
            tracing::info!(interaction = %id, "another replica answered an interaction delivered to both");
            return;
        }
        let path = format!("/interactions/{id}/{token}/callback");
        if let Err(error) = responder.discord().rest.post(&path, &body).await {
            tracing::warn!(%error, interaction = %id, "a Discord interaction could not be answered");
        }
    }
}

/// Runs the gateway client until `stop`. The caller registers Discord with
/// [`Readiness::expect`] before serving, so that `/readyz` counts it from the start; this
/// marks it connected and disconnected as the session comes and goes.
pub async fn run(responder: Arc<Responder>, mut stop: watch::Receiver<bool>) {
    let metrics = responder.facade().metrics().clone();
    let readiness = metrics.readiness();
    let mut restarts = Retries::new(RESTART);
    loop {
        let discord = responder.discord().clone();
        let changed = Arc::new(Notify::new());
        let handler = Handler {
            responder: responder.clone(),
            changed: changed.clone(),
        };
        // Serenity's own HTTP client has no deadline; the REST client's has, so a `GET
        // /gateway` that is never answered cannot hold the start up.
        let http = HttpBuilder::new(discord.bot_token.expose())
            .client(discord.rest.client())
            .proxy(discord.api_url.clone())
            .ratelimiter_disabled(true)
            .build();
        let built = ClientBuilder::new_with_http(http, GatewayIntents::empty())
            .event_handler(handler)
            .await;
        let outcome = match built {
            Ok(mut client) => {
                let shards = client.shard_manager.clone();
                let session = follow_session(shards.runners.clone(), &changed, readiness);
                tokio::select! {
                    outcome = client.start() => Some(outcome),
                    never = session => match never {},
                    () = stopped(&mut stop) => {
                        shards.shutdown_all().await;
                        None
                    }
                }
            }
            Err(error) => Some(Err(error)),
        };
        readiness.disconnected(PLATFORM);
        match outcome {
            None => {
                tracing::info!("Discord gateway client stopped");
                return;
            }
            Some(Ok(())) => restarts.reset(),
            Some(Err(error)) => {
                tracing::error!(%error, "the Discord gateway client stopped; starting it again");
            }
        }
        let wait = restarts.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Serenity's record of its shards: each one's stage, as its runner last reported it.
type Runners = Arc<Mutex<HashMap<ShardId, ShardRunnerInfo>>>;

/// Keeps `readiness` on what serenity records of the session, read again whenever
/// `changed` is notified and every [`LOOK_EVERY`]. Never ends.
async fn follow_session(
    runners: Runners,
    changed: &Notify,
    readiness: &Readiness,
) -> std::convert::Infallible {
    let mut was = None;
    loop {
        let up = connected(&*runners.lock().await);
        if was != Some(up) {
            if up {
                readiness.connected(PLATFORM);
            } else {
                readiness.disconnected(PLATFORM);
                if was.is_some() {
                    tracing::warn!("the Discord gateway session is down; serenity is reconnecting");
                }
            }
            was = Some(up);
        }
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

/// Whether serenity runs shards and every one of them is connected.
fn connected(runners: &HashMap<ShardId, ShardRunnerInfo>) -> bool {
    !runners.is_empty()
        && runners
            .values()
            .all(|runner| runner.stage == ConnectionStage::Connected)
}

/// Until shutdown is asked for, or nobody can ask any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; it must not live across an await.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}
