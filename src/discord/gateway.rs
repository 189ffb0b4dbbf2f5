//! Gateway mode: serenity's client keeps a websocket to Discord (no public URL needed) and
//! hands us each INTERACTION_CREATE, which is read into the same [`Incoming`] as HTTP mode,
//! answered by the same [`Responder`], and acknowledged through the callback endpoint.
//! Serenity's HTTP client goes through `discord.api_url` (its proxy setting, with its rate
//! limiter off as that requires), so the gateway URL it is given comes from there too.
//! Serenity resumes and reconnects by itself; if its client stops altogether (a network
//! outage it gave up on), it is started again with backoff until shutdown.

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, HttpBuilder, Interaction, Ready,
};
use serenity::async_trait;
use tokio::sync::watch;

use super::interaction::Incoming;
use super::respond::{Responder, Seen};
use crate::store::Store;

/// Waits before starting a stopped client again, doubling up to the last.
const RESTART_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(60),
];

struct Handler<S> {
    responder: Arc<Responder<S>>,
}

#[async_trait]
impl<S: Store> EventHandler for Handler<S> {
    async fn ready(&self, _: Context, ready: Ready) {
        let readiness = self.responder.engine().metrics().readiness();
        readiness.connected("discord");
        tracing::info!(user = %ready.user.name, "connected to the Discord gateway");
    }

    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let incoming = Incoming::from(interaction);
        if incoming.id.is_empty() {
            return;
        }
        match self.responder.seen(&incoming.id).await {
            Ok(Seen::First) => {}
            Ok(Seen::Again) => {
                tracing::info!(interaction = %incoming.id, "an interaction delivered twice is answered once");
                return;
            }
            Err(error) => {
                // Answering is better than dropping: a double delivery is rare, a lost
                // answer is what the person sees.
                tracing::warn!(%error, "cannot record a Discord interaction; answering it anyway");
            }
        }
        let (id, token) = (incoming.id.clone(), incoming.token.clone());
        let body = self.responder.callback(incoming).await;
        let path = format!("/interactions/{id}/{token}/callback");
        if let Err(error) = self.responder.discord().rest.post(&path, &body).await {
            tracing::warn!(%error, interaction = %id, "a Discord interaction could not be answered");
        }
    }
}

/// Runs the gateway client until `stop`.
/// `/readyz` counts Discord as ready only while the session is up (READY received).
pub async fn run<S: Store>(responder: Arc<Responder<S>>, mut stop: watch::Receiver<bool>) {
    let readiness = responder.engine().metrics().clone();
    readiness.readiness().expect("discord");
    let mut failures = 0usize;
    loop {
        let discord = responder.discord().clone();
        let http = HttpBuilder::new(discord.bot_token.expose())
            .proxy(discord.api_url.clone())
            .ratelimiter_disabled(true)
            .build();
        let handler = Handler {
            responder: responder.clone(),
        };
        let built = ClientBuilder::new_with_http(http, GatewayIntents::empty())
            .event_handler(handler)
            .await;
        let outcome = match built {
            Ok(mut client) => {
                let shards = client.shard_manager.clone();
                tokio::select! {
                    outcome = client.start() => Some(outcome),
                    _ = stop.changed() => {
                        shards.shutdown_all().await;
                        None
                    }
                }
            }
            Err(error) => Some(Err(error)),
        };
        readiness.readiness().disconnected("discord");
        match outcome {
            None => {
                tracing::info!("Discord gateway client stopped");
                return;
            }
            Some(Ok(())) => failures = 0,
            Some(Err(error)) => {
                tracing::error!(%error, "the Discord gateway client stopped; starting it again");
                failures += 1;
            }
        }
        let wait = RESTART_BACKOFF[failures.min(RESTART_BACKOFF.len() - 1)];
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
