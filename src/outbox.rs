//! The outbox worker: executes the effects the engine committed, after the commit, and
//! writes their results back. An effect leaves the outbox only together with its result,
//! so a crash at any point leaves it there to be done again on start.
//!
//! This is the first version: chat effects go to a [`ChatPort`] (here one that logs, until
//! the Slack and Discord adapters implement it), and the `log` connector provisions. Other
//! connector kinds wait in the outbox, retried with backoff, until their connectors exist.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{Config, ConnectorConfig, ConnectorKind};
use crate::domain::effect::Effect;
use crate::domain::grant::Grant;
use crate::engine::{Engine, EngineError};
use crate::store::{Commit, OutboxEntry, SledStore, Store};

/// Where chat effects go. Error contract: `Err` means "not delivered, try again later";
/// the worker retries with backoff, so an implementation must not retry by itself forever.
pub trait ChatPort: Send + Sync + 'static {
    fn deliver(&self, effect: &Effect) -> Result<(), String>;
}

/// A chat port that writes what it would send to the log.
#[derive(Debug, Default)]
pub struct LogChat;

impl ChatPort for LogChat {
    fn deliver(&self, effect: &Effect) -> Result<(), String> {
        tracing::info!(effect = ?effect, "chat message (no chat platform enabled)");
        Ok(())
    }
}

/// How long to wait before trying a failed effect again: 2^attempts seconds, at most 10 min.
pub fn backoff(attempts: u32) -> TimeDelta {
    TimeDelta::seconds(1_i64 << attempts.min(9)).min(TimeDelta::minutes(10))
}

pub struct Worker<S> {
    engine: Arc<Engine<S>>,
    connectors: Vec<ConnectorConfig>,
    chat: Arc<dyn ChatPort>,
}

impl<S: Store> Worker<S> {
    pub fn new(
        engine: Arc<Engine<S>>,
        connectors: Vec<ConnectorConfig>,
        chat: Arc<dyn ChatPort>,
    ) -> Self {
        Self {
            engine,
            connectors,
            chat,
        }
    }

    /// Runs every effect due now; returns how many were completed.
    pub fn run_due(&self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let mut completed = 0;
        for entry in self.engine.store().due_effects(now, 256)? {
            match self.execute(&entry) {
                Ok(then) => {
                    self.engine.store().complete_effect(entry.seq, then)?;
                    completed += 1;
                }
                Err(error) => {
                    tracing::warn!(key = %entry.key, attempts = entry.attempts + 1, %error, "effect failed; will retry");
                    self.engine.store().retry_effect(
                        entry.seq,
                        now + backoff(entry.attempts),
                        &error,
                    )?;
                }
            }
        }
        Ok(completed)
    }

    /// Does one effect; the commit to apply with its removal from the outbox.
    fn execute(&self, entry: &OutboxEntry) -> Result<Commit, String> {
        let mut then = Commit::default();
        match &entry.effect {
            Effect::Provision { grant } => {
                let grant = self.grant(*grant)?;
                self.connector_call(&grant, "grant")?;
                self.engine
                    .provisioned(grant.id, &mut then)
                    .map_err(|e| e.to_string())?;
            }
            Effect::Deprovision { grant } => {
                let grant = self.grant(*grant)?;
                self.connector_call(&grant, "revoke")?;
                self.engine
                    .deprovisioned(grant.id, &mut then)
                    .map_err(|e| e.to_string())?;
            }
            chat => self.chat.deliver(chat)?,
        }
        Ok(then)
    }

    fn grant(&self, id: crate::domain::ids::GrantId) -> Result<Grant, String> {
        match self.engine.store().grant(id) {
            Ok(Some(g)) => Ok(g.value),
            Ok(None) => Err(format!("grant {id} does not exist")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn connector_call(&self, grant: &Grant, action: &str) -> Result<(), String> {
        let world = self.engine.world();
        let connector_id = world
            .policy
            .resource(&grant.resource)
            .and_then(|r| r.connector.clone());
        let Some(connector_id) = connector_id else {
            tracing::info!(grant = %grant.id, "{} has no connector: nothing to {action}", grant.resource);
            return Ok(());
        };
        let connector = self
            .connectors
            .iter()
            .find(|c| c.id == connector_id)
            .ok_or_else(|| {
                format!("connector `{connector_id}` is not declared in gatehouse.toml")
            })?;
        match connector.kind {
            ConnectorKind::Log => {
                tracing::info!(
                    connector = %connector.id, grant = %grant.id, person = %grant.person,
                    resource = %grant.resource, role = %grant.role, expires_at = ?grant.expires_at,
                    "log connector: would {action} access"
                );
                Ok(())
            }
            kind => Err(format!(
                "connector kind {kind:?} is not available in this build yet"
            )),
        }
    }
}

/// Runs the worker (and, until the scheduler exists, the expiry pass) until shutdown.
pub fn spawn(
    engine: Arc<Engine<SledStore>>,
    config: &Config,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let worker = Arc::new(Worker::new(
        engine.clone(),
        config.connectors.clone(),
        Arc::new(LogChat),
    ));
    tokio::spawn(async move {
        loop {
            let (w, e) = (worker.clone(), engine.clone());
            let pass = tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
                e.revoke_expired_grants(1024)?;
                w.run_due(e.now())?;
                Ok(())
            })
            .await;
            match pass {
                Ok(Err(e)) => tracing::error!(error = %e, "outbox pass failed"),
                Err(e) => tracing::error!(error = %e, "outbox pass panicked"),
                Ok(Ok(())) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_millis(500)) => {}
                _ = shutdown.changed() => break,
            }
        }
    })
}
