//! The gateway: the protocol seen from a raw websocket (HELLO, IDENTIFY checks and their close
//! codes, heartbeats, RESUME), serenity riding out a RECONNECT and a cut connection, and how
//! serenity leaves the connections it moves away from.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use serenity::all::Interaction as SerenityInteraction;
use tokio_tungstenite::tungstenite::Message;

use super::tests_serenity::connect;
use super::{BOT_TOKEN, Ended, FakeDiscord, Interaction};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(fake: &FakeDiscord, query: &str) -> Socket {
    let url = format!("{}/?{query}", fake.ws_url());
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next text frame as JSON, or the close code.
async fn next(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap();
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(text.as_str()).unwrap());
            }
            Some(Ok(Message::Close(Some(close)))) => return Err(u16::from(close.code)),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

async fn say(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

fn identify(token: &str, intents: u64) -> Value {
    json!({"op": 2, "d": {"token": token, "intents": intents, "shard": [0, 1],
        "properties": {"os": "linux", "browser": "test", "device": "test"}}})
}

#[tokio::test]
async fn a_raw_client_identifies_heartbeats_and_resumes_with_replay() {
    let fake = FakeDiscord::start().await;
    let mut socket = open(&fake, "v=10&encoding=json").await;
    let hello = next(&mut socket).await.unwrap();
    assert_eq!(
        (
            hello["op"].as_u64(),
            hello["d"]["heartbeat_interval"].as_u64()
        ),
        (Some(10), Some(41_250))
    );
    say(&mut socket, identify(BOT_TOKEN, 1)).await;
    let ready = next(&mut socket).await.unwrap();
    assert_eq!(
        (ready["t"].as_str(), ready["s"].as_u64()),
        (Some("READY"), Some(1))
    );
    let ready_model: serenity::model::gateway::Ready =
        serde_json::from_value(ready["d"].clone()).unwrap();
    assert_eq!(ready_model.version, 10);
    let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
    say(&mut socket, json!({"op": 1, "d": 1})).await;
    assert_eq!(next(&mut socket).await.unwrap()["op"], 11);
    assert_eq!(fake.identifies()[0]["intents"], 1);
    assert!(fake.identifies()[0].get("token").is_none());

    let sent = fake
        .interaction(Interaction::command("111", "list", &[]))
        .await;
    let event = next(&mut socket).await.unwrap();
    assert_eq!(
        (event["t"].as_str(), event["s"].as_u64()),
        (Some("INTERACTION_CREATE"), Some(2))
    );
    assert_eq!(event["d"]["id"], sent.id);
    drop(socket);

    // A new connection resumes from seq 1: the interaction is replayed, then RESUMED.
    let mut socket = open(&fake, "v=10").await;
    next(&mut socket).await.unwrap();
    say(&mut socket, json!({"op": 6, "d": {"token": format!("Bot {BOT_TOKEN}"), "session_id": session, "seq": 1}})).await;
    assert_eq!(next(&mut socket).await.unwrap()["d"]["id"], sent.id);
    assert_eq!(next(&mut socket).await.unwrap()["t"], "RESUMED");
    say(
        &mut socket,
        json!({"op": 6, "d": {"token": BOT_TOKEN, "session_id": "nope", "seq": 1}}),
    )
    .await;
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({"op": 9, "d": false, "s": null, "t": null})
    );
    assert_eq!(
        (fake.connections(), fake.resumes(), fake.heartbeats()),
        (2, 1, 1)
    );
    assert!(
        fake.gateway_violations().is_empty(),
        "{:?}",
        fake.gateway_violations()
    );
}

#[tokio::test]
async fn wrong_identifies_are_closed_with_discords_codes() {
    let fake = FakeDiscord::start().await;
    let cases = [
        ("v=10", identify("Bot nope", 0), 4004),
        ("v=10", identify(BOT_TOKEN, 1 << 15), 4014),
        ("v=10", identify(BOT_TOKEN, 1 << 30), 4013),
        ("v=10", json!({"op": 2, "d": {"token": BOT_TOKEN}}), 4002),
        ("v=10", json!({"op": 3, "d": {}}), 4003),
        ("v=10", json!({"op": 42, "d": null}), 4001),
        ("v=9", identify(BOT_TOKEN, 0), 4012),
    ];
    for (query, frame, code) in cases {
        let mut socket = open(&fake, query).await;
        let hello = next(&mut socket).await;
        if let Err(closed) = hello {
            assert_eq!(closed, code, "{query}");
            continue;
        }
        say(&mut socket, frame.clone()).await;
        assert_eq!(next(&mut socket).await, Err(code), "{frame}");
    }
    let mut socket = open(&fake, "v=10").await;
    next(&mut socket).await.unwrap();
    say(&mut socket, identify(BOT_TOKEN, 0)).await;
    next(&mut socket).await.unwrap();
    say(&mut socket, identify(BOT_TOKEN, 0)).await;
    assert_eq!(next(&mut socket).await, Err(4005), "identifying twice");
}

#[tokio::test]
async fn serenity_heartbeats_at_the_announced_interval() {
    let fake = FakeDiscord::start().await;
    fake.set_heartbeat_interval(Duration::from_millis(300));
    let client = connect(&fake).await;
    fake.wait_identified().await;
    fake.wait_heartbeats(2).await;
    client.stop().await;
    assert!(
        fake.gateway_violations().is_empty(),
        "{:?}",
        fake.gateway_violations()
    );
}

#[tokio::test]
async fn serenity_resumes_after_reconnect_and_after_a_cut_connection() {
    let fake = FakeDiscord::start().await;
    let mut client = connect(&fake).await;
    fake.wait_identified().await;

    fake.reconnect();
    fake.wait_resumes(1).await;
    fake.wait_identified().await;
    let sent = fake
        .interaction(Interaction::command("111", "list", &[]))
        .await;
    let SerenityInteraction::Command(got) = client.next_interaction().await else {
        panic!()
    };
    assert_eq!(got.id.to_string(), sent.id);

    fake.drop_connection();
    fake.wait_resumes(2).await;
    fake.wait_identified().await;
    let sent = fake
        .interaction(Interaction::button(
            "111",
            super::CHANNEL_ID,
            "99",
            "approve:AR-1",
        ))
        .await;
    let SerenityInteraction::Component(got) = client.next_interaction().await else {
        panic!()
    };
    assert_eq!(got.id.to_string(), sent.id);
    assert_eq!((fake.connections(), fake.identifies().len()), (3, 1));
    client.stop().await;
    assert!(
        fake.gateway_violations().is_empty(),
        "{:?}",
        fake.gateway_violations()
    );
}

#[tokio::test]
async fn serenity_identifies_again_after_a_session_is_invalidated_or_closed() {
    let fake = FakeDiscord::start().await;
    let mut client = connect(&fake).await;
    fake.wait_identified().await;
    fake.invalidate_session(false);
    identifies(&fake, 2).await;

    fake.close_connection(4000);
    fake.wait_connections(3).await;
    fake.wait_resumes(1).await;
    fake.wait_identified().await;
    let sent = fake
        .interaction(Interaction::command("111", "list", &[]))
        .await;
    let SerenityInteraction::Command(got) = client.next_interaction().await else {
        panic!()
    };
    assert_eq!(got.id.to_string(), sent.id);
    client.stop().await;
    assert!(
        fake.gateway_violations().is_empty(),
        "{:?}",
        fake.gateway_violations()
    );
}

/// Serenity 0.12 moves to a new connection on op 7 RECONNECT, and on a close Discord starts
/// (4000), without closing the old one: `Shard::resume` replaces its websocket, dropping the
/// old one and the close answer tungstenite had queued. Discord sees 1006 and keeps the
/// session resumable, which the RESUME needs; our own shutdown closes with a handshake.
/// src/discord/gateway.rs explains it; this test says when a serenity upgrade changes it.
#[tokio::test]
async fn serenity_leaves_the_connection_it_moves_from_without_a_close_frame() {
    let fake = FakeDiscord::start().await;
    let client = connect(&fake).await;
    fake.wait_identified().await;

    fake.reconnect();
    fake.wait_resumes(1).await;
    assert_eq!(fake.wait_ended(1).await, Ended::Cut, "after op 7");

    fake.wait_identified().await;
    fake.close_connection(4000);
    fake.wait_resumes(2).await;
    assert_eq!(
        fake.wait_ended(2).await,
        Ended::CloseUnanswered,
        "after close 4000"
    );

    fake.wait_identified().await;
    client.stop().await;
    assert_eq!(
        fake.wait_ended(3).await,
        Ended::ClientClosed(1000),
        "at shutdown"
    );
}

/// Waits until `n` IDENTIFYs were accepted.
async fn identifies(fake: &FakeDiscord, n: usize) {
    let what = format!("{n} identifies");
    crate::support::eventually(&what, || std::future::ready(fake.identifies().len() >= n)).await;
}
