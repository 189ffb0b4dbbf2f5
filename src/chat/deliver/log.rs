//! The chat port when no platform is enabled: every card, DM and alert is rendered as Slack
//! would show it and written to the log as plain text ([`slack_plain_text`]), addressed to the
//! person (by directory id) or the security channel. Someone trying Gatehouse without Slack
//! reads there what approvers and requesters would read.
//!
//! It is the shared [`CardPort`] over a [`Transport`] that writes instead of posting, so what
//! goes to whom, and when a card is no longer worth sending, are decided exactly as for Slack.
//! Nothing is recorded as posted: there is no message to update later, and a platform enabled
//! afterwards starts with no stale cards to bring up to date.

use std::sync::Arc;

use super::{CardPort, Delivery, Transport};
use crate::chat::render::{Templates, slack_plain_text};
use crate::connector::BoxFuture;
use crate::domain::directory::Platform;
use crate::domain::effect::Effect;
use crate::engine::Facade;
use crate::outbox::{ChatError, ChatPort, Posted};

/// Where alerts are said to go in the log.
const SECURITY_CHANNEL: &str = "the security channel";

/// Writes messages to the log, as text.
pub struct LogTransport {
    templates: Arc<Templates>,
}

impl LogTransport {
    pub fn new(templates: Arc<Templates>) -> Self {
        Self { templates }
    }
}

/// `message` as the log line's text: its lines, indented under the line that says where it
/// went.
fn text(message: &serde_json::Value) -> String {
    slack_plain_text(message)
        .lines()
        .map(|line| format!("\n    {line}"))
        .collect()
}

impl Transport for LogTransport {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn template_dir(&self) -> &'static str {
        "slack"
    }

    fn templates(&self) -> &Templates {
        &self.templates
    }

    fn security_channel(&self) -> Option<&str> {
        Some(SECURITY_CHANNEL)
    }

    fn reaches_everyone(&self) -> bool {
        true
    }

    fn dm<'a>(
        &'a self,
        user: &'a str,
        _template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<(String, String), ChatError>> {
        Box::pin(async move {
            tracing::info!(
                "chat message to {user} (no chat platform enabled):{}",
                text(&message)
            );
            Ok((format!("log:{user}"), delivery.key.to_owned()))
        })
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        _template: &'a str,
        message: serde_json::Value,
        delivery: Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(async move {
            tracing::info!(
                "chat message in {channel} (no chat platform enabled):{}",
                text(&message)
            );
            Ok(delivery.key.to_owned())
        })
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        id: &'a str,
        _key: &'a str,
        _template: &'a str,
        message: serde_json::Value,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            tracing::info!(
                "chat message {id} to {channel} updated (no chat platform enabled):{}",
                text(&message)
            );
            Ok(())
        })
    }
}

/// The outbox's chat port when no platform is enabled: [`LogTransport`] behind the shared
/// [`CardPort`], recording nothing as posted.
pub struct LogPort {
    cards: CardPort<LogTransport>,
}

impl LogPort {
    pub fn new(facade: Facade, templates: Arc<Templates>) -> Self {
        let transport = Arc::new(LogTransport::new(templates));
        Self {
            cards: CardPort::new(transport, facade),
        }
    }
}

impl ChatPort for LogPort {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        key: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        Box::pin(async move {
            self.cards.deliver(effect, key, attempt).await?;
            Ok(Vec::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::effect::Notice;
    use crate::engine::testing::{ask, engine_sharing, who};
    use crate::store::{SledStore, Store};

    /// What a test's log subscriber wrote.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Written {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[tokio::test]
    async fn without_a_chat_platform_the_log_shows_each_message_as_people_would_read_it() {
        let written = Written::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let written = written.clone();
                move || written.clone()
            })
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let store = Arc::new(SledStore::temporary().unwrap());
        let (engine, _clock) = engine_sharing(store.clone());
        let alice = engine
            .submit(&who("alice"), ask("alice", "prod-db", "read", "2h"))
            .unwrap()
            .request
            .id;
        // Dan is only on Discord: the log still shows what he is sent.
        let dan = engine
            .submit(&who("dan"), ask("dan", "prod-db", "read", "1h"))
            .unwrap()
            .request
            .id;
        let templates = Arc::new(Templates::builtin().unwrap());
        let port = LogPort::new(Facade::new(engine.clone()), templates);

        let card = Effect::ApprovalCard {
            request: alice,
            approver: "bob".into(),
            stage: 0,
        };
        let posted = port.deliver(&card, "card:AR-1:0:bob", 1).await.unwrap();
        assert!(posted.is_empty(), "nothing is recorded as posted");
        let notice = Effect::Notify {
            to: "dan".into(),
            notice: Notice::Submitted { request: dan },
        };
        port.deliver(&notice, "effect:9", 1).await.unwrap();

        let log = written.text();
        assert!(
            log.contains(
                "chat message to bob (no chat platform enabled):\n    🔑 Access request AR-1\n    \
                 *Alice Ng* asks for *read* on *Production PostgreSQL*.\n    Who: Alice Ng (`alice`)\n"
            ),
            "{log}"
        );
        assert!(
            log.contains("\n    [Approve] [Reject] [Approve with changes]\n"),
            "{log}"
        );
        assert!(
            log.contains(
                "chat message to dan (no chat platform enabled):\n    📥 Your request *AR-2* for \
                 *read* on *Production PostgreSQL* for 1h is with its approvers."
            ),
            "{log}"
        );
        assert!(
            !log.contains("ApprovalCard {") && !log.contains("RequestId("),
            "{log}"
        );
        let about = crate::domain::card::CardKey::Request { request: alice };
        assert!(store.cards(&about).unwrap().is_empty());
    }
}
