//! Discord from the outside: the real server on 127.0.0.1:0 with `[discord]` enabled, its
//! real serenity client connected to the fake Discord's gateway and its REST calls going to
//! the fake's API. Covers a request through two stages to an active grant, the command's
//! registration and autocomplete, the request modal, clicks from people who may not decide,
//! and double clicks; HTTP mode, the cross-platform flow and readiness are in their own files.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_discord::{FakeDiscord, GUILD_ID, Interaction, Message, public_key_hex};
use crate::support::{Files, TestApp, spawn_app_with};

mod cross;
mod http_mode;
mod readiness;

pub const DAN: &str = "223344556677889900";
pub const BOB: &str = "200000000000000002";
pub const CAROL: &str = "300000000000000003";
pub const DORA: &str = "400000000000000004";

pub struct Rig {
    pub app: TestApp,
    pub fake: FakeDiscord,
}

/// Bob (dan's manager) and carol and dora (the dba owners of staging-db) on Discord only.
pub fn everyone_on_discord(files: &Files) {
    files.edit("directory.toml", |text| {
        text.replace(
            "id = \"bob\"\n",
            &format!("id = \"bob\"\ndiscord = \"{BOB}\"\nnotify = [\"discord\"]\n"),
        )
        .replace(
            "id = \"carol\"\n",
            &format!("id = \"carol\"\ndiscord = \"{CAROL}\"\nnotify = [\"discord\"]\n"),
        )
        .replace(
            "id = \"dora\"\n",
            &format!("id = \"dora\"\ndiscord = \"{DORA}\"\nnotify = [\"discord\"]\n"),
        )
    });
}

impl Rig {
    /// The server with Discord on in `mode`, the directory changed by `people`.
    pub async fn start(mode: &str, people: impl FnOnce(&Files)) -> Rig {
        let fake = FakeDiscord::start().await;
        let api_url = fake.api_url();
        let app = spawn_app_with(|files| {
            files.enable_discord(&api_url, mode, &public_key_hex());
            people(files);
        })
        .await;
        Rig { app, fake }
    }

    pub async fn gateway() -> Rig {
        let rig = Rig::start("gateway", everyone_on_discord).await;
        rig.fake.wait_identified().await;
        rig
    }

    /// Sends `interaction` over the gateway and waits for the callback it gets.
    pub async fn answer(&self, interaction: Interaction) -> Value {
        let sent = self.fake.interaction(interaction).await;
        self.fake.callback(&sent.id).await
    }

    /// The text of an ephemeral answer, checking that it is one.
    pub async fn say(&self, interaction: Interaction) -> String {
        let callback = self.answer(interaction).await;
        assert_eq!(callback["type"], 4, "{callback}");
        assert_eq!(
            callback["data"]["flags"], 64,
            "answers are ephemeral: {callback}"
        );
        callback["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The message in `user`'s DMs with a button whose custom_id is `custom_id`, once there.
    pub async fn card_with(&self, user: &str, custom_id: &str) -> Message {
        eventually(&format!("a card for {user} with {custom_id}"), || {
            let channel = self.fake.dm_channel_of(user)?;
            self.fake
                .messages(&channel)
                .into_iter()
                .find(|m| buttons(m).iter().any(|b| b == custom_id))
        })
        .await
    }

    /// `user`'s DMs, once one contains `text`.
    pub async fn dm_containing(&self, user: &str, text: &str) -> Vec<Message> {
        eventually(&format!("a DM to {user} with {text:?}"), || {
            let messages = self.fake.messages(&self.fake.dm_channel_of(user)?);
            messages
                .iter()
                .any(|m| shown(m).contains(text))
                .then_some(messages)
        })
        .await
    }

    pub async fn click(&self, user: &str, card: &Message, custom_id: &str) -> String {
        self.say(Interaction::button(
            user,
            &card.channel_id,
            &card.id,
            custom_id,
        ))
        .await
    }

    pub async fn request_state(&self, id: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["request"]["state"]["state"].clone()
    }

    pub async fn grant_state_becomes(&self, grant: &str, wanted: &str) {
        let what = format!("{grant} {wanted}");
        crate::support::eventually(&what, || async {
            let (_, body) = self.app.get(&format!("/api/v1/grants/{grant}")).await;
            let state = &body["grant"]["state"]["state"];
            (state == wanted)
                .then_some(())
                .ok_or(format!("{grant} is {state}"))
        })
        .await;
    }
}

/// [`crate::support::eventually`] for a check that looks at the fakes' records and needs no
/// waiting of its own.
pub async fn eventually<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    crate::support::eventually(what, || std::future::ready(find())).await
}

/// The custom_ids of a message's buttons, as it stands now.
pub fn buttons(message: &Message) -> Vec<String> {
    let current = message.edits.last();
    let components = current
        .and_then(|e| e.get("components"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| message.components.clone());
    components
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_owned))
        .collect()
}

/// Everything a message shows as it stands now: its content and embeds, as text.
pub fn shown(message: &Message) -> String {
    match message.edits.last() {
        Some(edit) => format!("{} {}", edit["content"], edit["embeds"]),
        None => format!("{} {}", message.content, json!(message.embeds)),
    }
}

fn request(resource: &str, role: &str, reason: &str) -> Interaction {
    Interaction::command(
        DAN,
        "request",
        &[
            ("resource", json!(resource)),
            ("role", json!(role)),
            ("duration", json!("2h")),
            ("reason", json!(reason)),
        ],
    )
}

#[tokio::test]
async fn a_request_typed_in_discord_passes_two_stages_to_an_active_grant() {
    let rig = Rig::gateway().await;
    let answer = rig
        .say(request("staging-db", "read", "checking a migration"))
        .await;
    assert!(
        answer.contains("AR-1") && answer.contains("sent to Bob Marsh"),
        "the requester hears who decides: {answer}"
    );

    let bobs = rig.card_with(BOB, "gatehouse.approve|AR-1").await;
    let said = rig.click(BOB, &bobs, "gatehouse.approve|AR-1").await;
    assert!(said.contains("You approved AR-1"), "{said}");

    let carols = rig.card_with(CAROL, "gatehouse.approve|AR-1").await;
    let doras = rig.card_with(DORA, "gatehouse.approve|AR-1").await;
    let said = rig.click(CAROL, &carols, "gatehouse.approve|AR-1").await;
    assert!(said.contains("You approved AR-1"), "{said}");
    rig.grant_state_becomes("G-1", "active").await;
    assert_eq!(rig.request_state("AR-1").await, "approved");

    // Every card shows the outcome and has no buttons left.
    for (user, card) in [(BOB, &bobs), (CAROL, &carols), (DORA, &doras)] {
        let closed = eventually(&format!("{user}'s card closed"), || {
            let now = rig.fake.message(&card.channel_id, &card.id)?;
            buttons(&now).is_empty().then_some(now)
        })
        .await;
        assert!(!closed.edits.is_empty(), "{user}'s card was edited");
    }
    rig.dm_containing(DAN, "G-1").await;
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn the_command_is_registered_in_the_guild_and_autocomplete_answers_from_the_policy() {
    let rig = Rig::gateway().await;
    let commands = eventually("the registered command", || {
        let commands = rig.fake.guild_commands(GUILD_ID);
        (!commands.is_empty()).then_some(commands)
    })
    .await;
    assert_eq!(commands[0]["name"], "access");
    let ready = rig.app.http.get(format!("{}/readyz", rig.app.base));
    crate::support::eventually("ready once the gateway session is up", || async {
        let status = ready.try_clone().unwrap().send().await.unwrap().status();
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("/readyz answers {status}"))
        }
    })
    .await;
    let (_, metrics) = crate::support::read(
        rig.app
            .http
            .get(format!("{}/metrics", rig.app.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("platform=\"discord\""),
        "Discord's calls are counted: {metrics}"
    );

    let typed =
        Interaction::autocomplete(DAN, "request", &[("resource", json!("stag"))], "resource");
    let callback = rig.answer(typed).await;
    assert_eq!(callback["type"], 8, "{callback}");
    let choices = callback["data"]["choices"].as_array().unwrap();
    let values: Vec<&str> = choices.iter().filter_map(|c| c["value"].as_str()).collect();
    assert_eq!(values, ["staging-db"]);

    let roles = Interaction::autocomplete(
        DAN,
        "request",
        &[("resource", json!("staging-db")), ("role", json!(""))],
        "role",
    );
    let callback = rig.answer(roles).await;
    let values: Vec<String> = callback["data"]["choices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["value"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(values, ["read", "write"]);
}

#[tokio::test]
async fn a_request_without_options_opens_the_form_and_the_form_asks() {
    let rig = Rig::gateway().await;
    let callback = rig.answer(Interaction::command(DAN, "request", &[])).await;
    assert_eq!(callback["type"], 9, "a modal: {callback}");
    let modal = &callback["data"];
    let custom_id = modal["custom_id"].as_str().unwrap().to_owned();

    let sent = Interaction::modal_submit(
        DAN,
        &custom_id,
        &[
            ("request.resource", "staging-db"),
            ("request.role", "read"),
            ("request.duration", "1h"),
            ("request.justification", "a form-made request"),
        ],
    );
    let said = rig.say(sent).await;
    assert!(said.contains("AR-1"), "{said}");
    rig.card_with(BOB, "gatehouse.approve|AR-1").await;

    let wrong = Interaction::modal_submit(
        DAN,
        &custom_id,
        &[
            ("request.resource", "staging-db"),
            ("request.role", "read"),
            ("request.duration", "a while"),
            ("request.justification", "x"),
        ],
    );
    let said = rig.say(wrong).await;
    assert!(said.contains("duration"), "the mistake is named: {said}");
    assert!(
        said.contains("`a while`") && !said.contains("\\`"),
        "code shows as code, without backslashes: {said}"
    );
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn clicks_from_the_requester_or_a_stranger_are_refused_and_a_double_click_decides_once() {
    let rig = Rig::gateway().await;
    rig.say(request("staging-db", "read", "checking a migration"))
        .await;
    let card = rig.card_with(BOB, "gatehouse.approve|AR-1").await;

    let by_dan = rig.click(DAN, &card, "gatehouse.approve|AR-1").await;
    assert!(by_dan.contains("you cannot approve"), "{by_dan}");
    let by_dora = rig.click(DORA, &card, "gatehouse.approve|AR-1").await;
    assert!(!by_dora.contains("You approved"), "{by_dora}");
    let state = rig.request_state("AR-1").await;
    assert_eq!(state, "pending", "nothing changed");

    // Bob clicks twice, at once.
    let (first, second) = tokio::join!(
        rig.click(BOB, &card, "gatehouse.approve|AR-1"),
        rig.click(BOB, &card, "gatehouse.approve|AR-1"),
    );
    let approvals = [&first, &second]
        .iter()
        .filter(|s| s.contains("You approved"))
        .count();
    assert_eq!(approvals, 1, "{first} / {second}");
    assert!(
        [&first, &second]
            .iter()
            .any(|s| s.contains("You already approved AR-1; it is now with Owner approval")),
        "the second click says where the request is: {first} / {second}"
    );
    let (_, body) = rig.app.get("/api/v1/requests/AR-1").await;
    let stages = &body["request"]["plan"]["stages"];
    assert_eq!(
        stages[0]["approvals"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
}

#[tokio::test]
async fn a_discord_user_gatehouse_does_not_know_is_told_how_to_get_mapped() {
    let rig = Rig::gateway().await;
    let said = rig
        .say(Interaction::command("999999999999999999", "list", &[]))
        .await;
    assert!(
        said.contains("999999999999999999") && said.contains("directory"),
        "{said}"
    );
    let help = rig.answer(Interaction::command(DAN, "help", &[])).await;
    assert_eq!(help["type"], 4, "{help}");
}

#[tokio::test]
async fn approve_with_changes_opens_a_form_and_approves_for_less_time() {
    let rig = Rig::gateway().await;
    rig.say(request("staging-db", "write", "a schema change"))
        .await;
    let changes = "gatehouse.approve_with_changes|AR-1";
    let card = rig.card_with(BOB, changes).await;
    let sent = Interaction::button(BOB, &card.channel_id, &card.id, changes);
    let callback = rig.answer(sent).await;
    assert_eq!(callback["type"], 9, "a modal: {callback}");
    let custom_id = callback["data"]["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(custom_id, "gatehouse.changes|AR-1");

    let typo = Interaction::modal_submit(BOB, &custom_id, &[("changes.duration", "an hour")]);
    let said = rig.say(typo).await;
    assert!(said.contains("Nothing was sent"), "{said}");
    let fixed = Interaction::modal_submit(
        BOB,
        &custom_id,
        &[
            ("changes.duration", "1h"),
            ("changes.reason", "an hour is enough for a schema change"),
        ],
    );
    let said = rig.say(fixed).await;
    assert!(said.contains("You approved AR-1"), "{said}");
    let (_, body) = rig.app.get("/api/v1/requests/AR-1").await;
    assert_eq!(body["request"]["duration"], "1h", "{body}");

    // Dan hears of it at once, in Discord where he is: who, what, from what to what, why.
    let told = rig
        .dm_containing(DAN, "Bob Marsh shortened the duration from 2h to 1h")
        .await;
    let change = told
        .iter()
        .find(|m| m.content == "AR-1 changed by Bob Marsh")
        .unwrap_or_else(|| panic!("{told:#?}"));
    assert!(
        shown(change).contains("an hour is enough for a schema change"),
        "{}",
        shown(change)
    );

    // Dan may not use a form meant for approvers: refused as a whole, not as a typo.
    let by_dan = Interaction::modal_submit(DAN, &custom_id, &[("changes.duration", "30m")]);
    let said = rig.say(by_dan).await;
    assert!(!said.contains("You approved"), "{said}");
    assert!(
        !said.contains("fix this") && said.contains("you cannot approve"),
        "{said}"
    );
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}

#[tokio::test]
async fn emergency_access_is_granted_at_once_alerted_and_flagged_by_a_reviewer_in_discord() {
    const SAM: &str = "334455667788990011";
    let rig = Rig::gateway().await;
    let asked = Interaction::command(
        DAN,
        "emergency",
        &[
            ("resource", json!("prod-db")),
            ("role", json!("read")),
            ("reason", json!("INC-4300 primary down")),
            ("duration", json!("1h")),
        ],
    );
    let said = rig.say(asked).await;
    assert!(said.contains("G-1"), "{said}");
    rig.grant_state_becomes("G-1", "active").await;

    let alert = eventually("the alert in the security channel", || {
        let posted = rig.fake.messages(crate::fake_discord::CHANNEL_ID);
        posted.into_iter().find(|m| shown(m).contains("G-1"))
    })
    .await;
    assert!(
        shown(&alert).to_lowercase().contains("emergency"),
        "{}",
        shown(&alert)
    );

    let review = rig.card_with(SAM, "gatehouse.flag|G-1").await;
    let said = rig.click(SAM, &review, "gatehouse.flag|G-1").await;
    assert!(said.contains("You flagged G-1"), "{said}");
    rig.grant_state_becomes("G-1", "revoked").await;
    eventually("the review card closed", || {
        let now = rig.fake.message(&review.channel_id, &review.id)?;
        buttons(&now).is_empty().then_some(())
    })
    .await;
    assert_eq!(
        rig.fake.violations().len(),
        0,
        "{:?}",
        rig.fake.violations()
    );
}
