//! slack-morphism, built by `gatehouse::slack::client::client`, against the fake: the path the
//! Slack adapter takes. Each call below must reach the fake clean (no violations) and the
//! fake's answers must decode into slack-morphism's response types.

use std::time::Duration;

use gatehouse::slack::client::client;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::{APP_TOKEN, BOT_TOKEN, FakeSlack, Fault};

fn token(value: &str) -> SlackApiToken {
    SlackApiToken::new(value.to_owned().into())
}

fn card(text: &str, with_buttons: bool) -> Vec<SlackBlock> {
    let approve = SlackBlockButtonElement::new(pt!("Approve"))
        .with_action_id("approve".into())
        .with_value("AR-12".into())
        .with_style(SlackBlockButtonStyle::Primary);
    slack_blocks![
        some_into(SlackSectionBlock::new().with_text(md!(text))),
        optionally(with_buttons => SlackActionsBlock::new(slack_blocks![some_into(approve)]))
    ]
}

#[tokio::test]
async fn slack_morphism_posts_and_updates_a_card_through_the_fake() {
    let fake = FakeSlack::start().await;
    let client = client(&fake.api_url()).unwrap();
    let bot = token(BOT_TOKEN);
    let session = client.open_session(&bot);

    let me = session.auth_test().await.unwrap();
    assert_eq!(me.user_id.to_string(), "U0FAKEBOT");
    let dm = session
        .conversations_open(&SlackApiConversationsOpenRequest::new().with_users(vec!["U1".into()]))
        .await
        .unwrap();
    let channel = dm.channel.id;
    assert_eq!(channel.to_string(), FakeSlack::dm_channel("U1"));

    let content = SlackMessageContent::new()
        .with_text("AR-12: bob asks for prod-db admin".into())
        .with_blocks(card("*AR-12* prod-db admin for 2h", true));
    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            channel.clone(),
            content,
        ))
        .await
        .unwrap();
    let decided = SlackMessageContent::new()
        .with_text("AR-12 approved".into())
        .with_blocks(card("*AR-12* approved by <@U2>", false));
    let updated = session
        .chat_update(&SlackApiChatUpdateRequest::new(
            channel.clone(),
            decided,
            posted.ts.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(updated.ts, posted.ts);

    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let update = &fake.calls_to("chat.update")[0];
    assert_eq!(update.args["ts"], posted.ts.to_string());
    assert_eq!(update.args["blocks"].as_array().unwrap().len(), 1);
    let messages = fake.messages_in(channel.as_ref());
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].text.as_deref(), messages[0].edits),
        (Some("AR-12 approved"), 1)
    );

    let unknown = SlackApiChatUpdateRequest::new(
        channel,
        SlackMessageContent::new().with_text("x".into()),
        "1.000000".into(),
    );
    match session.chat_update(&unknown).await {
        Err(SlackClientError::ApiError(error)) => assert_eq!(error.code, "message_not_found"),
        other => panic!("expected message_not_found, got {other:?}"),
    }
}

#[tokio::test]
async fn slack_morphism_reports_a_429_with_its_retry_after() {
    let fake = FakeSlack::start().await;
    fake.fail_next(
        "chat.postMessage",
        1,
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    let client = client(&fake.api_url()).unwrap();
    let bot = token(BOT_TOKEN);
    let request = SlackApiChatPostMessageRequest::new(
        "D1".into(),
        SlackMessageContent::new().with_text("x".into()),
    );
    match client.open_session(&bot).chat_post_message(&request).await {
        Err(SlackClientError::RateLimitError(limited)) => {
            assert_eq!(limited.retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected a rate limit error, got {other:?}"),
    }
    let retried = client.open_session(&bot).chat_post_message(&request).await;
    assert!(retried.is_ok(), "{retried:?}");
}

#[tokio::test]
async fn slack_morphism_decodes_views_users_and_socket_mode_answers() {
    let fake = FakeSlack::start().await;
    fake.add_user(serde_json::json!({"id": "U1", "name": "alice",
        "profile": {"email": "alice@example.com"}}));
    fake.set_socket_url("ws://127.0.0.1:9/link");
    let client = client(&fake.api_url()).unwrap();
    let bot = token(BOT_TOKEN);
    let session = client.open_session(&bot);

    let why = SlackInputBlock::new(
        pt!("Why?"),
        SlackBlockPlainTextInputElement::new()
            .with_action_id("why".into())
            .into(),
    );
    let modal = SlackModalView::new(pt!("Request access"), slack_blocks![some_into(why)])
        .with_submit(pt!("Ask"))
        .with_callback_id("request".into());
    let opened = session
        .views_open(&SlackApiViewsOpenRequest::new(
            "1.2.3".into(),
            SlackView::Modal(modal),
        ))
        .await
        .unwrap();
    let home = SlackHomeView::new(card("Nothing waiting for you", false));
    let published = session
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U1".into(),
            SlackView::Home(home),
        ))
        .await
        .unwrap();
    assert_ne!(opened.view.state_params.id, published.view.state_params.id);

    let alice = session
        .users_info(&SlackApiUsersInfoRequest::new("U1".into()))
        .await
        .unwrap();
    let email = alice
        .user
        .profile
        .and_then(|p| p.email)
        .map(|e| e.to_string());
    assert_eq!(email.as_deref(), Some("alice@example.com"));

    let app = token(APP_TOKEN);
    let socket = client
        .open_session(&app)
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await
        .unwrap();
    assert_eq!(socket.url.0.as_str(), "ws://127.0.0.1:9/link");
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
