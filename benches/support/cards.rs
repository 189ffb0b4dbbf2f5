//! The benches' view of the one fake Slack (tests/it/fake_slack, included by `#[path]`): it runs
//! on a thread of its own, and each approval card's arrival — the first chat.postMessage to a
//! manager's DM naming `AR-n` — is noted as it is recorded, not read back from every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::fake_slack::FakeSlack;

pub struct CardWatch {
    /// `slack.api_url` for the generated gatehouse.toml.
    pub api_url: String,
    /// Request number → when its approval card arrived.
    cards: Arc<Mutex<HashMap<u64, Instant>>>,
    fake: FakeSlack,
}

impl CardWatch {
    pub fn start() -> CardWatch {
        let fake = FakeSlack::start_on_own_thread();
        let cards = Arc::new(Mutex::new(HashMap::new()));
        let (noted, started) = (cards.clone(), fake.started());
        fake.tap(move |call| {
            let to_manager = call.args["channel"]
                .as_str()
                .is_some_and(|channel| channel.starts_with("DUM"));
            if call.method == "chat.postMessage"
                && call.ok()
                && to_manager
                && let Some(number) = request_number(&call.args.to_string())
            {
                noted
                    .lock()
                    .unwrap()
                    .entry(number)
                    .or_insert(started + call.at);
            }
        });
        CardWatch {
            api_url: fake.api_url(),
            cards,
            fake,
        }
    }

    pub fn cards(&self) -> HashMap<u64, Instant> {
        self.cards.lock().unwrap().clone()
    }

    /// Forgets the cards and the calls so far, between two runs.
    pub fn clear(&self) {
        self.cards.lock().unwrap().clear();
        self.fake.forget_calls();
    }
}

/// The number after the first `AR-` in `text`.
pub fn request_number(text: &str) -> Option<u64> {
    let at = text.find("AR-")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
