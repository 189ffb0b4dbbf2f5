//! One chat port over several platforms: every effect goes to each running platform, which
//! delivers what concerns it (a Slack-only approver's card on Slack, an alert in each
//! security channel). When one platform fails for now and another succeeded, the retry goes
//! only to the one that failed, and the cards the other posted are kept until the effect
//! is complete, so the outbox records them all at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::connector::BoxFuture;
use crate::domain::effect::Effect;
use crate::outbox::{ChatError, ChatPort, Posted};

/// How many partly delivered effects are remembered; past this, the oldest is forgotten and
/// its platforms rely on their own idempotency (they find their earlier post again).
const REMEMBERED: usize = 10_000;

/// Delivers each effect through every port it holds.
pub struct Fanout {
    ports: Vec<Arc<dyn ChatPort>>,
    /// Effect key → which ports already delivered it, and what they posted.
    partial: Mutex<HashMap<String, Partial>>,
}

#[derive(Default)]
struct Partial {
    done: Vec<bool>,
    posted: Posted,
}

impl Fanout {
    pub fn new(ports: Vec<Arc<dyn ChatPort>>) -> Self {
        Self {
            ports,
            partial: Mutex::new(HashMap::new()),
        }
    }

    fn partial(&self) -> std::sync::MutexGuard<'_, HashMap<String, Partial>> {
        self.partial.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn deliver_all(
        &self,
        effect: &Effect,
        key: &str,
        attempt: u32,
    ) -> Result<Posted, ChatError> {
        let done = self
            .partial()
            .get(key)
            .map(|p| p.done.clone())
            .unwrap_or_else(|| vec![false; self.ports.len()]);
        let mut failed: Option<ChatError> = None;
        let mut progress = Partial {
            done,
            posted: Vec::new(),
        };
        for (i, port) in self.ports.iter().enumerate() {
            if progress.done[i] {
                continue;
            }
            match port.deliver(effect, key, attempt).await {
                Ok(posted) => {
                    progress.done[i] = true;
                    progress.posted.extend(posted);
                }
                Err(error @ ChatError::Transient { .. }) => {
                    failed = Some(match failed {
                        Some(kept @ ChatError::Transient { .. }) => {
                            super::cards::later(Some(kept), error)
                        }
                        _ => error,
                    });
                }
                // Never deliverable there: logged by the outbox if it is the only failure;
                // the other platforms still get theirs.
                Err(error @ ChatError::Permanent(_)) => {
                    tracing::warn!(%key, %error, "an effect cannot be delivered on one platform");
                    progress.done[i] = true;
                    failed.get_or_insert(error);
                }
            }
        }
        let mut partial = self.partial();
        let remembered = partial.remove(key);
        let mut posted = remembered.map(|p| p.posted).unwrap_or_default();
        posted.extend(progress.posted);
        match failed {
            Some(error @ ChatError::Transient { .. }) => {
                if partial.len() >= REMEMBERED
                    && let Some(oldest) = partial.keys().next().cloned()
                {
                    partial.remove(&oldest);
                }
                partial.insert(
                    key.to_owned(),
                    Partial {
                        done: progress.done,
                        posted,
                    },
                );
                Err(error)
            }
            // Some platform can never take it: what the others posted is still recorded.
            Some(error) if posted.is_empty() && self.ports.len() == 1 => Err(error),
            _ => Ok(posted),
        }
    }
}

impl ChatPort for Fanout {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(self.deliver_all(effect, key, attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::effect::Alert;
    use crate::outbox::RecordingChat;

    fn effect() -> Effect {
        Effect::Alert {
            alert: Alert::Digest {
                pending_requests: 1,
                live_grants: 0,
                emergency_unreviewed: 0,
                revocations_failing: 0,
            },
        }
    }

    #[tokio::test]
    async fn a_retry_goes_only_to_the_platform_that_failed() {
        let (slack, discord) = (
            Arc::new(RecordingChat::default()),
            Arc::new(RecordingChat::default()),
        );
        discord.fail_next(1);
        let fanout = Fanout::new(vec![slack.clone(), discord.clone()]);
        assert!(matches!(
            fanout.deliver(&effect(), "k", 1).await,
            Err(ChatError::Transient { .. })
        ));
        assert!(fanout.deliver(&effect(), "k", 2).await.is_ok());
        assert_eq!(slack.attempts(), 1, "Slack already had it");
        assert_eq!(discord.attempts(), 2);
        assert_eq!(discord.delivered().len(), 1);
        assert!(fanout.partial().is_empty(), "nothing left to remember");
    }
}
