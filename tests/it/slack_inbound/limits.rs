//! Slack's endpoints take bodies of the size Slack sends: a signed slash command far larger
//! than one is refused with 413 before anything reads it.

use super::*;

#[tokio::test]
async fn a_signed_command_larger_than_a_command_takes_is_refused_with_413() {
    let slack = start().await;
    let text = format!("request prod-db read for 2h {}", "x".repeat(100 * 1024));
    let (status, _) = slack.command(ALICE, &text).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, requests) = slack.app.get("/api/v1/requests").await;
    assert_eq!(requests["requests"], json!([]));
}
