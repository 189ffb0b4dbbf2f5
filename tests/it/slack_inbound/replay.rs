//! A captured, signed request counts once, whatever its unsigned headers say: replayed with
//! another `Content-Type` it is refused (415) and acts on nothing; replayed with the right type
//! dressed differently it is refused as a replay (401). Slack's own retries still pass.

use super::*;

/// One signed request as it went over the wire, to be sent again.
struct Captured {
    path: &'static str,
    body: String,
    at: i64,
    signature: String,
}

impl Captured {
    fn new(path: &'static str, body: String) -> Self {
        let at = now();
        let signature = sign(SECRET.as_bytes(), at, body.as_bytes());
        Captured {
            path,
            body,
            at,
            signature,
        }
    }
}

impl Slack {
    /// Sends `captured` exactly as signed, declaring `content_type` (none when `None`).
    async fn send(&self, captured: &Captured, content_type: Option<&str>) -> StatusCode {
        let mut request = self
            .app
            .http
            .post(format!("{}{}", self.app.base, captured.path))
            .header("x-slack-request-timestamp", captured.at.to_string())
            .header("x-slack-signature", &captured.signature)
            .body(captured.body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.unwrap().status()
    }

    async fn requests(&self) -> Vec<Value> {
        let (_, body) = self.app.get("/api/v1/requests").await;
        body["requests"].as_array().unwrap().clone()
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn a_cancelled_command_replayed_with_another_content_type_creates_nothing() {
    let slack = start().await;
    let captured = Captured::new(
        "/slack/commands",
        command_body(ALICE, "request prod-db read for 2h fixing replica lag"),
    );
    assert_eq!(slack.send(&captured, Some(FORM)).await, StatusCode::OK);
    let (status, body) = slack.command(ALICE, "cancel AR-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(slack.request("AR-1").await["state"]["state"], "cancelled");

    for other in ["application/json", "text/plain", "multipart/form-data"] {
        assert_eq!(
            slack.send(&captured, Some(other)).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{other}"
        );
    }
    assert_eq!(
        slack.send(&captured, None).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let dressed = "Application/X-WWW-Form-Urlencoded; charset=utf-8";
    assert_eq!(
        slack.send(&captured, Some(dressed)).await,
        StatusCode::UNAUTHORIZED,
        "the right type written differently is still the same request"
    );
    assert_eq!(slack.requests().await.len(), 1, "only AR-1 exists");
}

#[tokio::test]
async fn a_cancelled_modal_submission_replayed_as_json_creates_nothing() {
    let slack = start().await;
    let chosen = |v: &str| json!({"type": "static_select", "selected_option": {"value": v}});
    let typed = |v: &str| json!({"type": "plain_text_input", "value": v});
    let submission = json!({
        "type": "view_submission",
        "user": {"id": ALICE},
        "trigger_id": trigger(),
        "view": {"id": "V0001", "callback_id": "gatehouse.request", "private_metadata": "{}",
                 "state": {"values": {
                    "resource": {"request.resource": chosen("prod-db")},
                    "role": {"request.role": chosen("read")},
                    "duration": {"request.duration": typed("2h")},
                    "justification": {"request.justification": typed("fixing replica lag")},
                 }}},
    });
    let captured = Captured::new(
        "/slack/interactions",
        format!("payload={}", encode(&submission.to_string())),
    );
    assert_eq!(slack.send(&captured, Some(FORM)).await, StatusCode::OK);
    assert_eq!(slack.request("AR-1").await["duration"], "2h");
    let (status, body) = slack.command(ALICE, "cancel AR-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    assert_eq!(
        slack.send(&captured, Some("application/json")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        slack.send(&captured, Some(FORM)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(slack.requests().await.len(), 1, "only AR-1 exists");
}

#[tokio::test]
async fn an_event_replayed_as_a_form_or_text_publishes_home_only_once() {
    let slack = start().await;
    let opened = json!({
        "type": "event_callback", "event_id": "Ev0REPLAY", "team_id": "T0FAKE",
        "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"},
    });
    let captured = Captured::new("/slack/events", opened.to_string());
    assert_eq!(
        slack.send(&captured, Some("application/json")).await,
        StatusCode::OK
    );
    for other in [FORM, "text/plain"] {
        assert_eq!(
            slack.send(&captured, Some(other)).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{other}"
        );
    }
    assert_eq!(
        slack
            .send(&captured, Some("application/json; charset=utf-8"))
            .await,
        StatusCode::UNAUTHORIZED
    );
    // The replays were refused before any acknowledgement: once the first delivery's
    // publish is there, nothing else will come.
    eventually("the Home tab published", || {
        std::future::ready(!slack.fake.calls_to("views.publish").is_empty())
    })
    .await;
    assert_eq!(slack.fake.calls_to("views.publish").len(), 1);
}
