//! The `log` connector: a dry run for trying policies out. It writes what it would do to the
//! log, remembers the last `REMEMBERED` calls (so tests can assert on them, as a recording
//! fake, while a long dry run does not grow without end) and always succeeds.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::{Action, BoxFuture, Connector, ConnectorCall, ConnectorError, Outcome, check_action};
use crate::domain::ids::ConnectorId;

/// How many calls a log connector remembers.
pub const REMEMBERED: usize = 1000;

#[derive(Debug)]
pub struct LogConnector {
    id: ConnectorId,
    calls: Mutex<VecDeque<ConnectorCall>>,
}

impl LogConnector {
    pub fn new(id: ConnectorId) -> Self {
        Self {
            id,
            calls: Mutex::new(VecDeque::new()),
        }
    }

    /// The last `REMEMBERED` calls, oldest first.
    pub fn calls(&self) -> Vec<ConnectorCall> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        check_action(&self.id, call, method)?;
        tracing::info!(
            connector = %self.id, action = %call.action, grant = %call.grant,
            person = %call.person.id, resource = %call.resource, role = %call.role,
            expires_at = ?call.expires_at, key = %call.idempotency_key,
            "log connector: would {} access", call.action
        );
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if calls.len() == REMEMBERED {
            calls.pop_front();
        }
        calls.push_back(call.clone());
        drop(calls);
        Ok(Outcome {
            detail: format!(
                "dry run: would {} {} role {} on {}",
                call.action, call.person.id, call.role, call.resource
            ),
        })
    }
}

impl Connector for LogConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(async move { self.record(call, Action::Grant) })
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(async move { self.record(call, Action::Revoke) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::tests::sample_call;

    #[tokio::test]
    async fn the_log_connector_records_every_call_and_always_succeeds() {
        let connector = LogConnector::new("dry".into());
        let grant = sample_call(Action::Grant);
        let revoke = sample_call(Action::Revoke);

        let outcome = connector.grant(&grant).await.unwrap();
        assert_eq!(
            outcome.detail,
            "dry run: would grant alice role admin on prod-db"
        );
        connector.execute(&revoke).await.unwrap();

        assert_eq!(connector.calls(), [grant, revoke]);
    }

    #[tokio::test]
    async fn only_the_last_calls_are_remembered() {
        let connector = LogConnector::new("dry".into());
        for n in 0..REMEMBERED + 5 {
            let mut call = sample_call(Action::Grant);
            call.idempotency_key = format!("provision:G-{n}");
            connector.grant(&call).await.unwrap();
        }
        let calls = connector.calls();
        assert_eq!(calls.len(), REMEMBERED);
        assert_eq!(calls[0].idempotency_key, "provision:G-5");
        assert_eq!(
            calls[REMEMBERED - 1].idempotency_key,
            format!("provision:G-{}", REMEMBERED + 4)
        );
    }

    #[tokio::test]
    async fn a_call_whose_action_is_not_the_method_is_refused() {
        let connector = LogConnector::new("dry".into());
        let err = connector
            .grant(&sample_call(Action::Revoke))
            .await
            .unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(connector.calls().is_empty());
    }
}
