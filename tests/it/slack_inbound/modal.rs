//! The modal flow, the typeahead and the Events API: `/access` alone opens the request
//! modal, its submission asks (or says under which input what to fix), Reject opens a modal
//! whose reason rejects, and opening the Home tab publishes it.

use super::*;
use crate::fake_slack::Call;

impl Slack {
    async fn interact(&self, path: &str, payload: Value) -> (StatusCode, Value) {
        let body = format!("payload={}", encode(&payload.to_string()));
        self.post(path, &body).await
    }

    /// The calls to `method`, once there are at least `count`.
    async fn calls_eventually(&self, method: &str, count: usize) -> Vec<Call> {
        eventually(&format!("{count} call(s) to {method}"), || {
            let calls = self.fake.calls_to(method);
            std::future::ready(if calls.len() >= count {
                Ok(calls)
            } else {
                Err(format!("the calls so far: {:#?}", self.fake.calls()))
            })
        })
        .await
    }
}

fn submission(user: &str, callback_id: &str, metadata: &str, values: Value) -> Value {
    json!({
        "type": "view_submission",
        "user": {"id": user},
        "trigger_id": trigger(),
        "view": {"id": "V0001", "callback_id": callback_id, "private_metadata": metadata,
                 "state": {"values": values}},
    })
}

fn request_form(duration: &str) -> Value {
    let chosen = |v: &str| json!({"type": "static_select", "selected_option": {"value": v}});
    let typed = |v: &str| json!({"type": "plain_text_input", "value": v});
    json!({
        "resource": {"request.resource": chosen("prod-db")},
        "role": {"request.role": chosen("read")},
        "duration": {"request.duration": typed(duration)},
        "justification": {"request.justification": typed("fixing replica lag")},
    })
}

#[tokio::test]
async fn the_request_modal_opens_asks_and_points_at_what_to_fix() {
    let slack = start().await;
    let (status, body) = slack.command(ALICE, "").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String(String::new()))
    );
    let opened = slack.calls_eventually("views.open", 1).await;
    assert_eq!(opened[0].args["view"]["callback_id"], "gatehouse.request");
    assert!(opened[0].ok(), "{:?}", opened[0].response);

    let too_long = submission(ALICE, "gatehouse.request", "{}", request_form("9h"));
    let (status, body) = slack.interact("/slack/interactions", too_long).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response_action"], "errors", "{body}");
    assert!(
        body["errors"]["duration"]
            .as_str()
            .unwrap()
            .contains("at most 8h"),
        "{body}"
    );

    let fine = submission(ALICE, "gatehouse.request", "{}", request_form("2h"));
    let (status, body) = slack.interact("/slack/interactions", fine).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String(String::new()))
    );
    assert_eq!(slack.request("AR-1").await["duration"], "2h");
    let dm = slack.calls_eventually("chat.postMessage", 1).await;
    let told: Vec<_> = dm.iter().filter(|c| c.args["channel"] == ALICE).collect();
    assert!(told[0].args["text"].as_str().unwrap().starts_with("AR-1:"));
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

#[tokio::test]
async fn reject_opens_a_modal_whose_reason_rejects_the_request() {
    let slack = start().await;
    slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert_eq!(
        slack.click(BOB, "gatehouse.reject", "AR-1").await,
        StatusCode::OK
    );
    let opened = slack.calls_eventually("views.open", 1).await;
    let view = &opened[0].args["view"];
    assert_eq!(
        (&view["callback_id"], &view["private_metadata"]),
        (&json!("gatehouse.reject"), &json!("AR-1"))
    );

    let empty = json!({"reason": {"reject.reason": {"type": "plain_text_input", "value": ""}}});
    let (_, body) = slack
        .interact(
            "/slack/interactions",
            submission(BOB, "gatehouse.reject", "AR-1", empty),
        )
        .await;
    assert!(body["errors"]["reason"].is_string(), "{body}");

    let reason =
        json!({"reason": {"reject.reason": {"type": "plain_text_input", "value": "no ticket"}}});
    let (status, _) = slack
        .interact(
            "/slack/interactions",
            submission(BOB, "gatehouse.reject", "AR-1", reason),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slack.request("AR-1").await["state"]["state"], "rejected");
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

#[tokio::test]
async fn the_resource_typeahead_offers_what_the_person_may_ask_for() {
    let slack = start().await;
    let suggest = |user: &str, typed: &str| {
        json!({"type": "block_suggestion", "user": {"id": user},
               "action_id": "request.resource", "value": typed})
    };
    let (status, body) = slack.interact("/slack/options", suggest(ALICE, "db")).await;
    assert_eq!(status, StatusCode::OK);
    let values: Vec<&str> = body["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["staging-db", "prod-db"]);
    // Finn is in finance: prod-db is for engineering only.
    let (_, body) = slack
        .interact("/slack/options", suggest("U0FINN", "db"))
        .await;
    assert_eq!(body["options"], json!([]));
}

#[tokio::test]
async fn url_verification_is_echoed_and_opening_home_publishes_it() {
    let slack = start().await;
    let challenge = json!({"type": "url_verification", "challenge": "c-123", "token": "x"});
    let (status, body) = slack.post("/slack/events", &challenge.to_string()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"challenge": "c-123"}))
    );

    let opened = json!({
        "type": "event_callback", "event_id": "Ev001", "team_id": "T0FAKE",
        "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"},
    });
    let (status, _) = slack.post("/slack/events", &opened.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    slack.calls_eventually("views.publish", 1).await;
    let home = slack.fake.home_view(ALICE).expect("a published Home tab");
    assert_eq!(home["type"], "home");
}

#[tokio::test]
async fn a_request_made_in_the_modal_becomes_an_active_grant_after_two_stages() {
    let slack = start().await;
    let fine = submission(ALICE, "gatehouse.request", "{}", request_form("2h"));
    let (status, _) = slack.interact("/slack/interactions", fine).await;
    assert_eq!(status, StatusCode::OK);
    for approver in [BOB, CAROL] {
        assert_eq!(
            slack.click(approver, "gatehouse.approve", "AR-1").await,
            StatusCode::OK
        );
    }
    let request = slack.request("AR-1").await;
    let grant = request["state"]["grant"].as_str().unwrap().to_owned();
    assert_eq!(slack.grant_state_becomes(&grant, "active").await, "active");
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

fn changes_form(duration: &str) -> Value {
    json!({"duration": {"changes.duration": {"type": "plain_text_input", "value": duration}}})
}

#[tokio::test]
async fn approve_with_changes_opens_a_modal_that_approves_a_shorter_duration_only() {
    let slack = start().await;
    slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    assert_eq!(
        slack.click(BOB, "gatehouse.approve", "AR-1").await,
        StatusCode::OK
    );
    assert_eq!(
        slack
            .click(CAROL, "gatehouse.approve_with_changes", "AR-1")
            .await,
        StatusCode::OK
    );
    let opened = slack.calls_eventually("views.open", 1).await;
    let view = &opened[0].args["view"];
    assert_eq!(
        (&view["callback_id"], &view["private_metadata"]),
        (&json!("gatehouse.changes"), &json!("AR-1"))
    );
    assert!(opened[0].ok(), "{:?}", opened[0].response);

    let longer = submission(CAROL, "gatehouse.changes", "AR-1", changes_form("3h"));
    let (status, body) = slack.interact("/slack/interactions", longer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response_action"], "errors", "{body}");
    let said = body["errors"]["duration"].as_str().unwrap_or_default();
    assert!(said.contains("2h"), "{body}");
    assert_eq!(slack.request("AR-1").await["duration"], "2h");

    let shorter = submission(CAROL, "gatehouse.changes", "AR-1", changes_form("1h"));
    let (status, body) = slack.interact("/slack/interactions", shorter).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String(String::new()))
    );
    let request = slack.request("AR-1").await;
    assert_eq!(request["duration"], "1h", "{request}");
    assert_eq!(request["state"]["state"], "approved", "{request}");

    // Sent again: a refusal of the whole form, not a mistake in its duration.
    let again = submission(CAROL, "gatehouse.changes", "AR-1", changes_form("30m"));
    let (status, body) = slack.interact("/slack/interactions", again).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String(String::new())),
        "the modal closes: there is nothing to correct in it"
    );
    let refusal = "You already approved AR-1; it is approved";
    eventually("carol told why", || {
        let told = slack.fake.calls_to("chat.postMessage");
        std::future::ready(
            if told.iter().any(|c| c.args.to_string().contains(refusal)) {
                Ok(())
            } else {
                Err(format!("the messages so far: {told:#?}"))
            },
        )
    })
    .await;
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}

fn extend_form(duration: &str, reason: &str) -> Value {
    let typed = |v: &str| json!({"type": "plain_text_input", "value": v});
    json!({
        "duration": {"extend.duration": typed(duration)},
        "reason": {"extend.reason": typed(reason)},
    })
}

#[tokio::test]
async fn extend_asks_how_much_longer_and_why_then_asks_for_that() {
    let slack = start().await;
    slack
        .command(ALICE, "request prod-db read for 2h fixing replica lag")
        .await;
    for approver in [BOB, CAROL] {
        assert_eq!(
            slack.click(approver, "gatehouse.approve", "AR-1").await,
            StatusCode::OK
        );
    }
    let grant = slack.request("AR-1").await["state"]["grant"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        slack.click(BOB, "gatehouse.extend", &grant).await,
        StatusCode::OK
    );
    let told = slack.ephemerals_to(BOB, 2).await;
    assert!(told.iter().any(|t| t.contains("not yours")), "{told:?}");

    assert_eq!(
        slack.click(ALICE, "gatehouse.extend", &grant).await,
        StatusCode::OK
    );
    let opened = slack.calls_eventually("views.open", 1).await;
    let view = &opened[0].args["view"];
    assert_eq!(
        (&view["callback_id"], &view["private_metadata"]),
        (&json!("gatehouse.extend"), &json!(grant))
    );
    assert!(view.to_string().contains("at most 8h"), "{view}");
    assert!(opened[0].ok(), "{:?}", opened[0].response);

    let too_long = submission(
        ALICE,
        "gatehouse.extend",
        &grant,
        extend_form("9h", "the migration is slow"),
    );
    let (status, body) = slack.interact("/slack/interactions", too_long).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response_action"], "errors", "{body}");
    assert!(
        body["errors"]["duration"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 8h"),
        "{body}"
    );

    let fine = submission(
        ALICE,
        "gatehouse.extend",
        &grant,
        extend_form("1h", "the migration is slow"),
    );
    let (status, body) = slack.interact("/slack/interactions", fine).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Value::String(String::new()))
    );
    let extension = slack.request("AR-2").await;
    assert_eq!(extension["duration"], "1h", "{extension}");
    assert_eq!(
        extension["justification"], "the migration is slow",
        "{extension}"
    );
    assert!(
        slack.fake.violations().is_empty(),
        "{:#?}",
        slack.fake.violations()
    );
}
