//! Bodies read under a route's limit, the body timeout and the shared memory budget.

use std::convert::Infallible;

use futures_util::stream;

use super::*;

fn chunks(parts: Vec<&'static [u8]>) -> Body {
    Body::from_stream(stream::iter(
        parts
            .into_iter()
            .map(|part| Ok::<_, Infallible>(Bytes::from_static(part))),
    ))
}

/// A body whose first chunk arrives and whose rest never does.
fn stalled_after(first: &'static [u8]) -> Body {
    let rest = stream::pending::<Result<Bytes, Infallible>>();
    Body::from_stream(stream::iter([Ok(Bytes::from_static(first))]).chain(rest))
}

fn declaring(length: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers
}

fn rules(memory: usize) -> BodyRules {
    BodyRules::new(Duration::from_secs(10), memory)
}

#[tokio::test]
async fn a_body_within_the_limit_is_read_whole_in_pieces() {
    let body = chunks(vec![b"token=x&", b"text=hello"]);
    let (bytes, held) = read(body, &HeaderMap::new(), BodyLimit(64), Some(&rules(1024)))
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"token=x&text=hello");
    assert!(
        held.bytes() >= bytes.len() && held.bytes() <= 64,
        "{held:?}"
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_anything_is_read() {
    let never = Body::from_stream(stream::pending::<Result<Bytes, Infallible>>());
    let refused = read(never, &declaring(65), BodyLimit(64), None).await;
    assert_eq!(refused.unwrap_err(), BodyRefusal::TooLarge(64));
}

#[tokio::test]
async fn an_undeclared_body_is_refused_once_it_passes_the_limit() {
    let body = chunks(vec![&[b'a'; 40], &[b'b'; 40], &[b'c'; 40]]);
    let refused = read(body, &HeaderMap::new(), BodyLimit(64), None).await;
    assert_eq!(refused.unwrap_err(), BodyRefusal::TooLarge(64));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_arriving_is_cut_off_at_the_body_timeout() {
    let refused = read(
        stalled_after(b"token=x&te"),
        &declaring(100),
        BodyLimit(1024),
        Some(&rules(4096)),
    )
    .await;
    assert_eq!(
        refused.unwrap_err(),
        BodyRefusal::TooSlow(Duration::from_secs(10))
    );
}

#[tokio::test]
async fn bodies_being_received_share_one_memory_budget_returned_when_done() {
    let rules = rules(4096);
    let (_, first) = read(
        chunks(vec![&[b'a'; 3000]]),
        &HeaderMap::new(),
        BodyLimit::kib(64),
        Some(&rules),
    )
    .await
    .unwrap();
    let second = read(
        chunks(vec![&[b'b'; 3000]]),
        &HeaderMap::new(),
        BodyLimit::kib(64),
        Some(&rules),
    )
    .await;
    assert_eq!(second.unwrap_err(), BodyRefusal::Busy);
    drop(first);
    let third = read(
        chunks(vec![&[b'c'; 3000]]),
        &HeaderMap::new(),
        BodyLimit::kib(64),
        Some(&rules),
    )
    .await;
    assert_eq!(third.unwrap().0.len(), 3000);
}

#[test]
fn each_refusal_says_what_to_do_with_its_status() {
    let cases = [
        (
            BodyRefusal::TooLarge(64 * 1024),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 64 KiB",
        ),
        (
            BodyRefusal::TooSlow(Duration::from_secs(10)),
            StatusCode::REQUEST_TIMEOUT,
            "within 10 s",
        ),
        (
            BodyRefusal::Busy,
            StatusCode::SERVICE_UNAVAILABLE,
            "try again",
        ),
    ];
    for (refusal, status, sentence) in cases {
        assert!(refusal.to_string().contains(sentence), "{refusal}");
        let response = refusal.into_response();
        assert_eq!(response.status(), status);
    }
}
