use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn socket_like() -> Backoff {
    Backoff::new(SECOND, Duration::from_secs(30)).jitter(0.0, 0.25)
}

#[test]
fn the_base_doubles_from_the_first_wait_and_stops_at_the_longest() {
    let policy = Backoff::new(SECOND, Duration::from_secs(30));
    let bases: Vec<u64> = (0..8).map(|n| policy.base(n).as_secs()).collect();
    assert_eq!(bases, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(
        policy.base(u32::MAX),
        Duration::from_secs(30),
        "no overflow"
    );
}

#[test]
fn without_jitter_every_wait_is_its_base() {
    let policy = Backoff::new(SECOND, Duration::from_secs(300));
    for n in 0..12 {
        assert_eq!(policy.delay(n), policy.base(n));
    }
}

#[test]
fn delays_double_from_one_second_up_to_thirty_with_at_most_a_quarter_more() {
    let mut retries = Retries::new(socket_like());
    let delays: Vec<Duration> = (0..8).map(|_| retries.next_delay()).collect();
    let bases = [1, 2, 4, 8, 16, 30, 30, 30];
    for (delay, base) in delays.iter().zip(bases) {
        let base = Duration::from_secs(base);
        assert!(
            *delay >= base && *delay <= (base * 5 / 4).min(Duration::from_secs(30)),
            "{delays:?}"
        );
    }
}

#[test]
fn the_longest_wait_caps_every_delay_jitter_included() {
    let policy = Backoff::new(SECOND, SECOND).jitter(-0.5, 0.5);
    for n in 0..40 {
        let delay = policy.delay_salted(n, 7u64);
        assert!(delay >= SECOND / 2 && delay <= SECOND, "{n}: {delay:?}");
    }
}

#[test]
fn jitter_spreads_the_waits_of_callers_that_failed_together() {
    let policy = Backoff::new(Duration::from_secs(60), Duration::from_secs(600)).jitter(-0.5, 0.5);
    let waits: std::collections::BTreeSet<Duration> =
        (0..64u64).map(|seq| policy.delay_salted(3, seq)).collect();
    assert!(
        waits.len() > 32,
        "64 effects, {} distinct waits",
        waits.len()
    );
    let (least, most) = (waits.first().unwrap(), waits.last().unwrap());
    assert!(*least >= Duration::from_secs(240), "{least:?}");
    assert!(*most <= Duration::from_secs(600), "capped: {most:?}");
}

#[test]
fn a_success_brings_the_first_wait_back() {
    let mut retries = Retries::new(socket_like());
    for _ in 0..6 {
        retries.next_delay();
    }
    assert!(retries.next_delay() >= Duration::from_secs(30));
    retries.reset();
    assert!(retries.next_delay() < Duration::from_millis(1250));
}

#[test]
fn a_draw_stays_in_zero_to_one() {
    assert!(
        (0..1000u32)
            .map(random_unit)
            .all(|j| (0.0..1.0).contains(&j))
    );
}
