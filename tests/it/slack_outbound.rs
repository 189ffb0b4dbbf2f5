//! The outbound half of Slack against the fake Slack: the real engine on a temporary store
//! with the example policy and directory, the outbox worker, and `SlackChat` delivering its
//! effects. A request goes through three stages and a quorum of two; every card is posted
//! once, updated without buttons when decided, and nothing breaks a platform rule, even when
//! Slack answers 429 and 500.

use std::path::Path;
use std::sync::Arc;

use chrono::{DurationRound, TimeDelta, Utc};
use gatehouse::chat::render::Templates;
use gatehouse::config::{Secret, SlackConfig};
use gatehouse::connector::Connectors;
use gatehouse::domain::audit::Actor;
use gatehouse::domain::card::CardKey;
use gatehouse::domain::ids::RequestId;
use gatehouse::domain::request::Changes;
use gatehouse::domain::validation::Ask;
use gatehouse::engine::{Engine, Facade, FakeClock};
use gatehouse::outbox::Worker;
use gatehouse::slack::Slack;
use gatehouse::slack::port::SlackChat;
use gatehouse::store::{SledStore, Store};
use serde_json::Value;

use crate::fake_slack::{BOT_TOKEN, FakeSlack, Fault, Message};

mod changes;
mod retries;

const SECURITY: &str = "C0SECURITY";

struct Rig {
    fake: FakeSlack,
    engine: Arc<Engine>,
    /// The engine's store, for what the tests check there.
    store: Arc<SledStore>,
    clock: Arc<FakeClock>,
    chat: Arc<SlackChat>,
    worker: Worker,
}

async fn rig() -> Rig {
    gatehouse::app::install_tls_provider();
    let fake = FakeSlack::start().await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/gatehouse.toml");
    let loaded = gatehouse::app::load(&config).unwrap();
    let now = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    let clock = Arc::new(FakeClock::at(now));
    let store = Arc::new(SledStore::temporary().unwrap());
    let engine = Arc::new(Engine::new(
        store.clone(),
        loaded.policy,
        loaded.directory,
        clock.clone(),
    ));
    let slack_config = SlackConfig {
        enabled: true,
        bot_token: Some(Secret::new(BOT_TOKEN)),
        api_url: fake.api_url(),
        security_channel: Some(SECURITY.to_owned()),
        ..SlackConfig::default()
    };
    let templates = Arc::new(Templates::builtin().unwrap());
    let slack = Arc::new(Slack::from_config(&slack_config, templates).unwrap());
    let chat = Arc::new(SlackChat::new(slack, Facade::new(engine.clone())));
    let connectors = Connectors::from_config(&loaded.config.connectors).unwrap();
    let worker = Worker::new(engine.clone(), connectors, chat.clone());
    Rig {
        fake,
        engine,
        store,
        clock,
        chat,
        worker,
    }
}

impl Rig {
    /// Runs the outbox until nothing more is due now.
    async fn drain(&self) {
        while self.worker.run_due().await.unwrap() > 0 {}
    }

    fn dm(&self, user: &str) -> Vec<Message> {
        self.fake.messages_in(&FakeSlack::dm_channel(user))
    }

    fn approve(&self, who: &str, id: RequestId) {
        let actor = Actor::person(&who.into());
        self.engine
            .approve(&actor, id, &Changes::default())
            .unwrap();
    }

    fn alice_asks_for_prod_db_admin(&self) -> RequestId {
        let ask = Ask {
            requester: "alice".into(),
            resource: "prod-db".into(),
            role: "admin".into(),
            duration: Some("2h".parse().unwrap()),
            justification: "fixing replica lag".into(),
            fields: [("ticket".to_owned(), "INC-4211".to_owned())].into(),
            ..Ask::default()
        };
        let actor = Actor::person(&"alice".into());
        self.engine.submit(&actor, ask).unwrap().request.id
    }
}

/// The action ids of every button in a message.
fn buttons(message: &Message) -> Vec<String> {
    let mut found = Vec::new();
    for block in message
        .blocks
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for element in block["elements"].as_array().into_iter().flatten() {
            if element["type"] == "button" {
                found.push(element["action_id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    found
}

fn shows(message: &Message, words: &str) -> bool {
    message
        .blocks
        .as_ref()
        .is_some_and(|b| b.to_string().contains(words))
}

/// The one card in `user`'s DMs.
fn only_card(rig: &Rig, user: &str) -> Message {
    let messages = rig.dm(user);
    assert_eq!(messages.len(), 1, "{user}: {messages:#?}");
    messages.into_iter().next().unwrap()
}

fn assert_open(rig: &Rig, user: &str) {
    let card = only_card(rig, user);
    assert_eq!(
        buttons(&card),
        [
            "gatehouse.approve",
            "gatehouse.reject",
            "gatehouse.approve_with_changes"
        ],
        "{user}"
    );
}

fn assert_closed(rig: &Rig, user: &str, words: &str) {
    let card = only_card(rig, user);
    assert!(
        buttons(&card).is_empty(),
        "{user} still has buttons: {card:#?}"
    );
    assert!(
        shows(&card, words),
        "{user}'s card lacks {words:?}: {card:#?}"
    );
    assert!(card.edits >= 1, "{user}'s card was never updated");
}

#[tokio::test]
async fn a_privileged_request_goes_through_three_stages_with_every_card_posted_once_and_closed() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    assert_open(&rig, "U0BOB");
    assert!(shows(&only_card(&rig, "U0BOB"), "INC-4211"));
    assert!(rig.dm("U0CAROL").is_empty() && rig.dm("U0SAM").is_empty());

    rig.approve("bob", id);
    rig.drain().await;
    assert_closed(&rig, "U0BOB", "Approved by Bob Marsh");
    assert_open(&rig, "U0CAROL");
    assert_open(&rig, "U0DORA");

    rig.approve("carol", id);
    rig.drain().await;
    assert_closed(&rig, "U0CAROL", "Approved by Carol Diaz");
    assert_closed(&rig, "U0DORA", "Approved by Carol Diaz");
    for user in ["U0SAM", "U0SUE", "U0SID"] {
        assert_open(&rig, user);
    }
    assert!(shows(
        &only_card(&rig, "U0SAM"),
        "Security review — 0 of 2 approvals"
    ));

    rig.approve("sam", id);
    rig.drain().await;
    assert_closed(
        &rig,
        "U0SAM",
        "waiting for Security review — 1 of 2 approvals",
    );
    assert_open(&rig, "U0SUE");
    assert!(shows(&only_card(&rig, "U0SUE"), "1 of 2 approvals"));

    rig.approve("sue", id);
    rig.drain().await;
    for user in ["U0BOB", "U0CAROL", "U0DORA", "U0SAM", "U0SUE", "U0SID"] {
        assert_closed(
            &rig,
            user,
            "Approved by Bob Marsh, Carol Diaz, Sam Patel and Sue Chen",
        );
    }
    let told = rig.dm("U01ALICE");
    assert!(
        told.iter()
            .any(|m| m.text.as_deref().is_some_and(|t| t.contains("approved"))),
        "alice was not told: {told:#?}"
    );
    let alerts = rig.fake.messages_in(SECURITY);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(
        shows(&alerts[0], "Privileged access granted")
            && shows(&alerts[0], "Production PostgreSQL"),
        "{alerts:#?}"
    );
    assert!(rig.store.outbox(10).unwrap().is_empty());
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn an_approval_an_admin_token_made_as_someone_else_is_alerted_in_the_security_channel() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    let as_bob = Actor::Operator {
        token: "ops".into(),
        for_person: "bob".into(),
        impersonated: true,
    };
    rig.engine
        .approve(&as_bob, id, &Changes::default())
        .unwrap();
    rig.drain().await;
    let alerts = rig.fake.messages_in(SECURITY);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(
        shows(&alerts[0], "An admin token acted as someone else")
            && shows(&alerts[0], "`ops`")
            && shows(&alerts[0], "Bob Marsh")
            && shows(&alerts[0], "stage approved on AR-1"),
        "{alerts:#?}"
    );
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn slack_answering_429_and_500_still_gets_every_card_exactly_once_after_retry_after() {
    let rig = rig().await;
    rig.fake.fail_next(
        "chat.postMessage",
        1,
        Fault::RateLimited {
            retry_after_secs: 2,
        },
    );
    rig.fake
        .fail_next("chat.postMessage", 1, Fault::ServerError);
    rig.fake.fail_next("chat.update", 1, Fault::ServerError);
    let id = rig.alice_asks_for_prod_db_admin();
    let before = rig.engine.now();
    rig.drain().await;

    let outbox = rig.store.outbox(10).unwrap();
    let limited = outbox.iter().find(|e| {
        e.last_error
            .as_deref()
            .is_some_and(|e| e.contains("rate limit"))
    });
    let limited = limited.unwrap_or_else(|| panic!("nothing was rate limited: {outbox:#?}"));
    assert!(
        limited.next_attempt_at - before >= TimeDelta::seconds(2),
        "retried before Retry-After: {limited:#?}"
    );

    for _ in 0..6 {
        rig.clock.advance(TimeDelta::seconds(30));
        rig.drain().await;
    }
    rig.approve("bob", id);
    for _ in 0..6 {
        rig.drain().await;
        rig.clock.advance(TimeDelta::seconds(30));
    }
    assert_closed(&rig, "U0BOB", "Approved by Bob Marsh");
    assert_open(&rig, "U0CAROL");
    assert_open(&rig, "U0DORA");
    let faults = rig
        .fake
        .calls()
        .iter()
        .filter(|c| c.fault.is_some())
        .count();
    assert_eq!(faults, 3, "every scripted fault was met");
    assert!(rig.store.outbox(10).unwrap().is_empty());
    let metrics = rig.engine.metrics();
    let calls = |method, outcome| {
        let labels = [
            ("platform", "slack"),
            ("method", method),
            ("outcome", outcome),
        ];
        metrics.counter(&gatehouse::metrics::PLATFORM_CALLS, &labels)
    };
    assert_eq!(calls("chat.postMessage", "rate_limited"), 1, "the 429");
    assert_eq!(calls("chat.postMessage", "transient_error"), 1, "the 500");
    assert_eq!(calls("chat.update", "transient_error"), 1);
    assert!(calls("chat.postMessage", "ok") >= 3, "every card posted");
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn app_home_lists_the_approvals_waiting_for_the_person() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.chat.publish_home("U0BOB", &"bob".into()).await.unwrap();
    let home = rig.fake.home_view("U0BOB").unwrap();
    assert!(home.to_string().contains(&id.to_string()), "{home:#}");
    assert!(home.to_string().contains("gatehouse.approve"));
    rig.chat
        .publish_home("U01ALICE", &"alice".into())
        .await
        .unwrap();
    let home = rig.fake.home_view("U01ALICE").unwrap();
    assert!(
        !home.to_string().contains("gatehouse.approve\""),
        "{home:#}"
    );
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

/// The access-review card in `user`'s DMs.
fn review_card(rig: &Rig, user: &str) -> Message {
    let cards: Vec<Message> = rig
        .dm(user)
        .into_iter()
        .filter(|m| shows(m, "Access review"))
        .collect();
    assert_eq!(cards.len(), 1, "{user}: {cards:#?}");
    cards.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_review_card_loses_its_buttons_once_a_reviewer_decided() {
    let rig = rig().await;
    let ask = Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "read".into(),
        duration: Some("2h".parse().unwrap()),
        justification: "fixing replica lag".into(),
        ..Ask::default()
    };
    let id = rig
        .engine
        .submit(&Actor::person(&"alice".into()), ask)
        .unwrap()
        .request
        .id;
    rig.approve("bob", id);
    rig.approve("carol", id);
    rig.drain().await;
    let grant = rig.store.request(id).unwrap().unwrap().value;
    let grant = match grant.state {
        gatehouse::domain::request::RequestState::Approved { grant, .. } => grant,
        other => panic!("{id} is {other:?}"),
    };

    // The quarterly review of prod-db comes round; its owners review alice's grant.
    rig.engine.start_due_campaigns().unwrap();
    let campaign = loop {
        let next = rig.engine.next_review_moment().unwrap().unwrap();
        rig.clock.set(next);
        rig.engine.start_due_campaigns().unwrap();
        let open = rig.store.campaigns(true).unwrap();
        if let Some(c) = open
            .into_iter()
            .find(|c| c.value.review == "quarterly-prod")
        {
            break c.value.id;
        }
    };
    rig.drain().await;
    for user in ["U0CAROL", "U0DORA"] {
        let card = review_card(&rig, user);
        assert_eq!(
            buttons(&card),
            ["gatehouse.keep", "gatehouse.revoke"],
            "{user}"
        );
    }

    rig.engine
        .decide_review(&Actor::person(&"carol".into()), campaign, grant, true)
        .unwrap();
    rig.drain().await;
    for user in ["U0CAROL", "U0DORA"] {
        let card = review_card(&rig, user);
        assert!(buttons(&card).is_empty(), "{user}: {card:#?}");
        assert!(shows(&card, "Kept by Carol Diaz"), "{user}: {card:#?}");
        assert!(card.edits >= 1, "{user}'s card was never updated");
    }
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

/// Runs the outbox through a few minutes of retries.
async fn retry_for_a_while(rig: &Rig) {
    for _ in 0..6 {
        rig.drain().await;
        rig.clock.advance(TimeDelta::seconds(30));
    }
    rig.drain().await;
}

/// The one call that met `fault`.
fn faulted(rig: &Rig, fault: Fault) -> crate::fake_slack::Call {
    let met: Vec<_> = rig
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.fault.as_ref() == Some(&fault))
        .collect();
    assert_eq!(met.len(), 1, "{met:#?}");
    met.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_card_whose_post_arrived_but_whose_answer_was_lost_is_posted_once_and_updated() {
    let rig = rig().await;
    rig.fake
        .fail_next("chat.postMessage", 1, Fault::LostResponse);
    let id = rig.alice_asks_for_prod_db_admin();
    retry_for_a_while(&rig).await;

    let lost = faulted(&rig, Fault::LostResponse);
    assert_eq!(
        lost.args["channel"],
        FakeSlack::dm_channel("U0BOB"),
        "{lost:#?}"
    );
    assert_open(&rig, "U0BOB");
    let card = only_card(&rig, "U0BOB");
    let looked = rig.fake.calls_to("conversations.history");
    assert_eq!(looked.len(), 1, "only the retry looks: {looked:#?}");
    assert_eq!(looked[0].args["channel"], FakeSlack::dm_channel("U0BOB"));
    let recorded = rig.store.cards(&CardKey::Request { request: id });
    let mut recorded = recorded.unwrap();
    // alice's notice (with its Cancel button) is recorded too.
    recorded.retain(|c| c.effect_key.starts_with("card:"));
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(
        (recorded[0].channel.as_str(), recorded[0].message.as_str()),
        (card.channel.as_str(), card.ts.as_str())
    );

    rig.approve("bob", id);
    retry_for_a_while(&rig).await;
    assert_closed(&rig, "U0BOB", "Approved by Bob Marsh");
    let updates = rig.fake.calls_to("chat.update");
    assert!(
        updates
            .iter()
            .any(|u| u.ok() && u.args["ts"] == card.ts.as_str()),
        "{updates:#?}"
    );
    assert!(rig.store.outbox(10).unwrap().is_empty());
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn a_notice_whose_post_arrived_but_whose_answer_was_lost_is_dmed_once() {
    let rig = rig().await;
    let id = rig.alice_asks_for_prod_db_admin();
    rig.drain().await;
    let before = rig.dm("U01ALICE").len();
    rig.fake
        .fail_next("chat.postMessage", 1, Fault::LostResponse);
    rig.engine
        .reject(&Actor::person(&"bob".into()), id, "not during the freeze")
        .unwrap();
    retry_for_a_while(&rig).await;

    let lost = faulted(&rig, Fault::LostResponse);
    assert_eq!(lost.args["channel"], FakeSlack::dm_channel("U01ALICE"));
    let told = rig.dm("U01ALICE");
    assert_eq!(told.len(), before + 1, "{told:#?}");
    // The notice says why; her first message only says it is rejected, without Cancel.
    let rejected = told.iter().filter(|m| shows(m, "not during the freeze"));
    assert_eq!(rejected.count(), 1, "{told:#?}");
    assert!(
        shows(&told[0], "*rejected*") && buttons(&told[0]).is_empty(),
        "{told:#?}"
    );
    let notices = told
        .iter()
        .filter(|m| m.text.as_deref() == Some("AR-1 rejected"));
    assert_eq!(notices.count(), 1, "{told:#?}");
    assert_eq!(rig.fake.calls_to("conversations.history").len(), 1);
    assert!(rig.store.outbox(10).unwrap().is_empty());
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}

/// The audit head a message publishes (`Audit log head: `12:9f86…``).
fn published_head(message: &Message) -> gatehouse::domain::anchor::PublishedHead {
    let blocks = message.blocks.as_ref().unwrap().to_string();
    let (_, after) = blocks
        .split_once("Audit log head: `")
        .unwrap_or_else(|| panic!("no audit head in {blocks}"));
    after.split('`').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn security_alerts_and_the_daily_digest_publish_the_audit_chains_head() {
    let rig = rig().await;
    let ask = Ask {
        requester: "alice".into(),
        resource: "prod-db".into(),
        role: "admin".into(),
        duration: Some("1h".parse().unwrap()),
        justification: "database down".into(),
        fields: [("ticket".to_owned(), "INC-4211".to_owned())].into(),
        emergency: true,
        ..Ask::default()
    };
    rig.engine
        .submit(&Actor::person(&"alice".into()), ask)
        .unwrap();
    let granted = rig.store.chain_head().unwrap().unwrap();
    rig.drain().await;
    let alerts = rig.fake.messages_in(SECURITY);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(shows(&alerts[0], "Emergency access granted"));
    let head = published_head(&alerts[0]);
    assert_eq!(head.hash.len(), 16, "alerts show the short form: {head}");
    assert!(
        head.seq >= granted.seq,
        "{head} is older than the emergency grant"
    );
    let store = &rig.store;
    let found = store
        .verify_audit_against(std::slice::from_ref(&head))
        .unwrap();
    assert_eq!(found.published, [head.to_string()]);

    let schedule: cron::Schedule = "0 0 9 * * *".parse().unwrap();
    assert!(!rig.engine.send_digest_if_due(&schedule).unwrap());
    rig.clock.advance(TimeDelta::days(1));
    assert!(rig.engine.send_digest_if_due(&schedule).unwrap());
    rig.drain().await;
    let digest = rig
        .fake
        .messages_in(SECURITY)
        .into_iter()
        .find(|m| shows(m, "Gatehouse daily digest"))
        .expect("a digest");
    let head = published_head(&digest);
    assert_eq!(
        head.hash.len(),
        64,
        "the digest shows the whole hash: {head}"
    );
    assert_eq!(
        head.to_string(),
        store.chain_head().unwrap().unwrap().to_string()
    );
    assert!(
        rig.fake.violations().is_empty(),
        "{:#?}",
        rig.fake.violations()
    );
}
