//! The fake's own tests over plain HTTP with reqwest: it keeps state like Discord (messages,
//! edits, DM channels, nonces, commands), refuses what Discord refuses, records everything and
//! serves the faults a test scripts.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};

use super::{APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, DmRefusal, FakeDiscord, Fault, Route};

pub(super) fn http(timeout: Duration) -> reqwest::Client {
    gatehouse::app::install_tls_provider();
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// Sends `body` (none when `Null`) with the bot token unless `token` says otherwise; the status,
/// headers and decoded answer (`Null` for an empty one).
pub(super) async fn send_with(
    fake: &FakeDiscord,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("{}/api/v10{path}", fake.api_url());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    // One client per test thread (each test has its own thread and runtime): building one
    // loads the system's root certificates, which is slow.
    thread_local! {
        static CLIENT: reqwest::Client = http(Duration::from_secs(5));
    }
    let mut request = CLIENT.with(|client| client.request(method, url));
    if !body.is_null() {
        request = request.json(&body);
    }
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, answer)
}

/// Sends with `Authorization: Bot <BOT_TOKEN>`: the status and the answer.
pub(super) async fn send(
    fake: &FakeDiscord,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let token = format!("Bot {BOT_TOKEN}");
    let (status, _, answer) = send_with(fake, Some(&token), method, path, body).await;
    (status, answer)
}

pub(super) fn card(request: &str) -> Value {
    json!({
        "content": format!("{request}: bob asks for prod-db admin for 2h"),
        "embeds": [{"title": request, "description": "prod-db / admin", "color": 0x5865F2,
                    "fields": [{"name": "Duration", "value": "2h", "inline": true}]}],
        "components": [{"type": 1, "components": [
            {"type": 2, "style": 3, "label": "Approve", "custom_id": format!("approve:{request}")},
            {"type": 2, "style": 4, "label": "Reject", "custom_id": format!("reject:{request}")},
            {"type": 2, "style": 5, "label": "Policy", "url": "https://example.com/policy"}]}],
    })
}

#[tokio::test]
async fn a_posted_message_can_be_edited_and_reads_back_edited() {
    let fake = FakeDiscord::start().await;
    let path = format!("/channels/{CHANNEL_ID}/messages");
    let (status, posted) = send(&fake, "POST", &path, card("AR-12")).await;
    assert_eq!(status, 200, "{posted}");
    let id = posted["id"].as_str().unwrap();
    assert_eq!(posted["channel_id"], CHANNEL_ID);
    assert_eq!(posted["author"]["id"], APPLICATION_ID);
    assert_eq!(
        posted["components"][0]["components"][0]["custom_id"],
        "approve:AR-12"
    );
    let message: serenity::model::channel::Message =
        serde_json::from_value(posted.clone()).unwrap();
    assert_eq!(message.id.to_string(), id);

    let edit = json!({"content": "AR-12 approved by <@2>", "components": []});
    let (status, edited) = send(&fake, "PATCH", &format!("{path}/{id}"), edit.clone()).await;
    assert_eq!(status, 200, "{edited}");
    assert!(edited["edited_timestamp"].is_string());
    let stored = fake.message(CHANNEL_ID, id).unwrap();
    assert_eq!(stored.content, "AR-12 approved by <@2>");
    assert!(stored.components.is_empty());
    assert_eq!(stored.embeds.len(), 1, "embeds left out of an edit stay");
    assert_eq!(fake.edits(CHANNEL_ID, id), [edit]);
    assert_eq!(fake.messages(CHANNEL_ID).len(), 1);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn unknown_channels_and_messages_get_discords_errors() {
    let fake = FakeDiscord::start().await;
    let body = json!({"content": "x"});
    let (status, answer) = send(&fake, "POST", "/channels/42/messages", body.clone()).await;
    assert_eq!(
        (status, answer),
        (404, json!({"message": "Unknown Channel", "code": 10003}))
    );
    let path = format!("/channels/{CHANNEL_ID}/messages/42");
    let (status, answer) = send(&fake, "PATCH", &path, body).await;
    assert_eq!(
        (status, answer),
        (404, json!({"message": "Unknown Message", "code": 10008}))
    );
    assert_eq!(fake.calls()[1].code(), Some(10008));
}

#[tokio::test]
async fn the_same_nonce_with_enforce_nonce_returns_the_first_message() {
    let fake = FakeDiscord::start().await;
    let path = format!("/channels/{CHANNEL_ID}/messages");
    let mut body = card("AR-7");
    body["nonce"] = json!("effect-123");
    body["enforce_nonce"] = json!(true);
    let (_, first) = send(&fake, "POST", &path, body.clone()).await;
    let (_, again) = send(&fake, "POST", &path, body.clone()).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["nonce"], "effect-123");
    assert_eq!(fake.messages(CHANNEL_ID).len(), 1);

    // Without enforce_nonce, or in another channel, or with another nonce: a new message.
    body["enforce_nonce"] = json!(false);
    let (_, unenforced) = send(&fake, "POST", &path, body.clone()).await;
    assert_ne!(unenforced["id"], first["id"]);
    body["enforce_nonce"] = json!(true);
    body["nonce"] = json!(124);
    let (_, other) = send(&fake, "POST", &path, body).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(fake.messages(CHANNEL_ID).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_nonce_is_forgotten_after_a_few_minutes() {
    let fake = FakeDiscord::start().await;
    let path = format!("/channels/{CHANNEL_ID}/messages");
    let body = json!({"content": "x", "nonce": "n1", "enforce_nonce": true});
    let (_, first) = send(&fake, "POST", &path, body.clone()).await;
    tokio::time::advance(Duration::from_secs(6 * 60)).await;
    let (_, later) = send(&fake, "POST", &path, body).await;
    assert_ne!(first["id"], later["id"]);
}

#[tokio::test]
async fn dm_channels_are_stable_per_recipient_and_can_be_refused() {
    let fake = FakeDiscord::start().await;
    let open = |user: &str| json!({"recipient_id": user});
    let (status, dm) = send(&fake, "POST", "/users/@me/channels", open("111")).await;
    assert_eq!((status, dm["type"].as_u64()), (200, Some(1)), "{dm}");
    let _: serenity::model::channel::PrivateChannel = serde_json::from_value(dm.clone()).unwrap();
    let (_, again) = send(&fake, "POST", "/users/@me/channels", open("111")).await;
    assert_eq!(dm["id"], again["id"]);
    assert_eq!(fake.dm_channel_of("111").as_deref(), dm["id"].as_str());

    fake.refuse_dms("222", DmRefusal::OnOpen);
    let (status, answer) = send(&fake, "POST", "/users/@me/channels", open("222")).await;
    assert_eq!((status, answer["code"].as_u64()), (403, Some(50007)));
    fake.refuse_dms("333", DmRefusal::OnSend);
    let (status, dm) = send(&fake, "POST", "/users/@me/channels", open("333")).await;
    assert_eq!(status, 200);
    let path = format!("/channels/{}/messages", dm["id"].as_str().unwrap());
    let (status, answer) = send(&fake, "POST", &path, json!({"content": "hi"})).await;
    assert_eq!(
        answer,
        json!({"message": "Cannot send messages to this user", "code": 50007})
    );
    assert_eq!(status, 403);

    let (status, answer) = send(&fake, "POST", "/users/@me/channels", open("bob")).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(50035)));
    assert_eq!(
        answer["errors"]["recipient_id"]["_errors"][0]["code"],
        "NUMBER_TYPE_COERCE"
    );
}

#[tokio::test]
async fn calls_without_the_bot_token_are_refused_with_401() {
    let fake = FakeDiscord::start().await;
    let path = format!("/channels/{CHANNEL_ID}/messages");
    for token in [None, Some("Bot wrong"), Some(BOT_TOKEN), Some("Bearer x")] {
        let (status, _, answer) =
            send_with(&fake, token, "POST", &path, json!({"content": "x"})).await;
        assert_eq!(
            (status, answer),
            (401, json!({"message": "401: Unauthorized", "code": 0}))
        );
    }
    assert!(fake.messages(CHANNEL_ID).is_empty());
    assert_eq!(fake.violations().len(), 4);
}

#[tokio::test]
async fn gateway_discovery_and_the_bot_user_are_served() {
    let fake = FakeDiscord::start().await;
    let (_, gateway) = send(&fake, "GET", "/gateway", Value::Null).await;
    assert_eq!(gateway["url"], fake.ws_url());
    let (_, bot) = send(&fake, "GET", "/gateway/bot", Value::Null).await;
    assert_eq!(
        (bot["url"].as_str(), bot["shards"].as_u64()),
        (Some(fake.ws_url().as_str()), Some(1))
    );
    let _: serenity::model::gateway::BotGateway = serde_json::from_value(bot).unwrap();
    let (_, me) = send(&fake, "GET", "/users/@me", Value::Null).await;
    let me: serenity::model::user::CurrentUser = serde_json::from_value(me).unwrap();
    assert_eq!(me.id.to_string(), APPLICATION_ID);
    let (_, app) = send(&fake, "GET", "/oauth2/applications/@me", Value::Null).await;
    assert_eq!(app["id"], APPLICATION_ID);
    let (status, _) = send(&fake, "GET", "/nothing/here", Value::Null).await;
    assert_eq!(status, 404);
    assert_eq!(fake.violations().len(), 1);
}

#[tokio::test]
async fn a_rate_limited_call_gets_429_with_retry_after_then_succeeds() {
    let fake = FakeDiscord::start().await;
    let limited = Fault::RateLimited {
        retry_after: Duration::from_millis(1500),
    };
    fake.fail_next(Route::CreateMessage, limited.clone());
    let path = format!("/channels/{CHANNEL_ID}/messages");
    let token = format!("Bot {BOT_TOKEN}");
    let (status, headers, body) =
        send_with(&fake, Some(&token), "POST", &path, json!({"content": "x"})).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(
        body,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
    );
    let (status, _) = send(&fake, "POST", &path, json!({"content": "x"})).await;
    assert_eq!(status, 200);
    let seen: Vec<_> = fake
        .calls()
        .into_iter()
        .map(|c| (c.fault, c.status))
        .collect();
    assert_eq!(seen, [(Some(limited), 429), (None, 200)]);
    assert_eq!(
        fake.messages(CHANNEL_ID).len(),
        1,
        "a refused call posts nothing"
    );
}

#[tokio::test]
async fn server_errors_timeouts_drops_and_lost_responses_are_served() {
    let fake = FakeDiscord::start().await;
    for fault in [
        Fault::ServerError,
        Fault::Timeout,
        Fault::Drop,
        Fault::LostResponse,
    ] {
        fake.fail_next(Route::CreateMessage, fault);
    }
    fake.set_slow_delay(Duration::from_secs(5));
    let client = http(Duration::from_millis(400));
    let post = || {
        client
            .post(format!(
                "{}/api/v10/channels/{CHANNEL_ID}/messages",
                fake.api_url()
            ))
            .header(AUTHORIZATION, format!("Bot {BOT_TOKEN}"))
            .json(&json!({"content": "x"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 500);
    assert!(post().await.unwrap_err().is_timeout());
    let dropped = post().await.unwrap_err();
    assert!(
        dropped.is_request() && dropped.status().is_none(),
        "{dropped:?}"
    );
    let lost = post().await.unwrap_err();
    assert!(lost.is_request() && lost.status().is_none(), "{lost:?}");
    assert_eq!(post().await.unwrap().status(), 200);
    let seen: Vec<_> = fake
        .calls()
        .into_iter()
        .map(|c| (c.fault, c.status))
        .collect();
    let expected = [
        (Some(Fault::ServerError), 500),
        (Some(Fault::Timeout), 504),
        (Some(Fault::Drop), 0),
        (Some(Fault::LostResponse), 0),
        (None, 200),
    ];
    assert_eq!(seen, expected);
    assert_eq!(
        fake.messages(CHANNEL_ID).len(),
        2,
        "the lost post was applied"
    );
}

#[tokio::test]
async fn random_faults_follow_the_seed() {
    let run = |seed| async move {
        let fake = FakeDiscord::start().await;
        fake.fail_at_random(seed, 30, &[Fault::ServerError]);
        let path = format!("/channels/{CHANNEL_ID}/messages");
        for _ in 0..40 {
            send(&fake, "POST", &path, json!({"content": "x"})).await;
        }
        send(&fake, "GET", "/users/@me", Value::Null).await;
        fake.stop_failing_at_random();
        for _ in 0..5 {
            let (status, _) = send(&fake, "POST", &path, json!({"content": "x"})).await;
            assert_eq!(status, 200);
        }
        fake.calls().iter().map(|c| c.status).collect::<Vec<_>>()
    };
    let (first, again, other) = (run(7).await, run(7).await, run(8).await);
    assert_eq!(first, again);
    assert_ne!(first, other);
    let failed = first.iter().filter(|s| **s == 500).count();
    assert!((4..=20).contains(&failed), "{failed} of 40 failed");
    assert_eq!(first[40], 200, "reads are not failed at random");
}

#[tokio::test]
async fn calls_are_recorded_with_route_method_path_and_body() {
    let fake = FakeDiscord::start().await;
    fake.add_channel("777");
    let body = json!({"content": "hello"});
    let (status, _) = send(&fake, "POST", "/channels/777/messages", body.clone()).await;
    assert_eq!(status, 200);
    send(&fake, "GET", "/users/@me", Value::Null).await;
    let posts = fake.calls_to(Route::CreateMessage);
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/api/v10/channels/777/messages")
    );
    assert_eq!(
        (&post.body, post.status, post.fault.clone()),
        (&body, 200, None)
    );
    assert_eq!(post.response["channel_id"], "777");
    assert!(post.at <= fake.calls()[1].at);
    assert_eq!(fake.calls()[1].route, Route::GetMyUser);
    assert_eq!(fake.messages("777")[0].content, "hello");
}
