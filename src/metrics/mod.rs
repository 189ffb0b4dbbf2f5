//! Metrics for operators, served at `/metrics` in the Prometheus text format.
//!
//! One [`Metrics`] lives in each [`crate::engine::Engine`] (`engine.metrics()`), so everything
//! that holds the engine — the admin API, the outbox worker, the chat adapters — counts into
//! it, and two servers in one process (tests) never mix their numbers. There is no global.
//!
//! - What decisions do is counted from the commits themselves ([`Observed`]): the engine
//!   and the outbox worker hand every commit over after it is durable, so a use case needs
//!   no metrics code of its own.
//! - Adapters report their calls to a platform with [`Metrics::platform_call`] and their
//!   connection with [`Metrics::readiness`]; the outbox reports connector calls and retries.
//! - What the store holds now (pending requests, live grants, outbox depth) is read when
//!   `/metrics` is scraped ([`StoreGauges`]), so it is never out of date.
//!
//! Every family is listed in [`FAMILIES`], with its help text; docs/operations.md lists them too.

mod commits;
mod gauges;
mod readiness;
mod registry;

pub use commits::{Observed, request_type};
pub use gauges::StoreGauges;
pub use readiness::{Link, Readiness, Registration};
pub use registry::{Family, Kind};

use crate::domain::policy::RequestType;
use registry::{
    ConnectorCallLabels, EffectLabels, Live, NoLabels, Number, OutcomeLabels, PlatformCallLabels,
    Reading, RequestLabels,
};

/// Requests by type (standard, temporary, extension, emergency) and how they ended:
/// refused (by policy, never stored), approved, auto_approved, emergency (granted at
/// once), rejected, cancelled, expired.
pub const REQUESTS: Family = Family {
    name: "gatehouse_requests_total",
    help: "Access requests by type and outcome.",
    kind: Kind::Counter,
};
/// From submission to the decision of the last stage (approved) or a rejection.
pub const DECISION_SECONDS: Family = Family {
    name: "gatehouse_request_decision_seconds",
    help: "Time from submission to the final human decision, by outcome (approved, rejected).",
    kind: Kind::Histogram(&[
        60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0,
    ]),
};
pub const PENDING: Family = Family {
    name: "gatehouse_requests_pending",
    help: "Pending requests by the approval stage deciding now (1 is the first).",
    kind: Kind::Gauge,
};
pub const GRANTS_LIVE: Family = Family {
    name: "gatehouse_grants_live",
    help: "Grants that are held or being given or taken back, by state (provisioning, active, revoking).",
    kind: Kind::Gauge,
};
/// From a grant's `expires_at` to its revocation confirmed by the connector.
pub const REVOCATION_LAG_SECONDS: Family = Family {
    name: "gatehouse_revocation_lag_seconds",
    help: "Time from a grant's expiry to its confirmed revocation.",
    kind: Kind::Histogram(&[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0]),
};
pub const OUTBOX_DEPTH: Family = Family {
    name: "gatehouse_outbox_depth",
    help: "Effects waiting in the outbox (messages to send, connector calls to make).",
    kind: Kind::Gauge,
};
pub const OUTBOX_RETRYING: Family = Family {
    name: "gatehouse_outbox_retrying",
    help: "Effects in the outbox that failed at least once and wait for another attempt.",
    kind: Kind::Gauge,
};
pub const OUTBOX_RETRIES: Family = Family {
    name: "gatehouse_outbox_retries_total",
    help: "Failed attempts at an effect that will be tried again, by effect kind.",
    kind: Kind::Counter,
};
pub const PLATFORM_CALLS: Family = Family {
    name: "gatehouse_platform_calls_total",
    help: "Calls to a chat platform's API by platform, method and outcome (ok, rate_limited, transient_error, permanent_error).",
    kind: Kind::Counter,
};
pub const PLATFORM_CONNECTED: Family = Family {
    name: "gatehouse_platform_connected",
    help: "1 while a platform that keeps a connection (Slack Socket Mode, Discord gateway) is connected, else 0.",
    kind: Kind::Gauge,
};
pub const CONNECTOR_CALLS: Family = Family {
    name: "gatehouse_connector_calls_total",
    help: "Provisioning connector calls by connector, action (grant, revoke) and outcome (ok, transient_error, permanent_error).",
    kind: Kind::Counter,
};
/// The store's one writer (see [`crate::store::WriteStats`]): `busy` seconds per second near
/// 1 means the store, not the CPU or the disk, limits how many commits Gatehouse takes.
pub const STORE_COMMITS: Family = Family {
    name: "gatehouse_store_commits_total",
    help: "Writes the store applied (commits, outbox completions and retries).",
    kind: Kind::Counter,
};
pub const STORE_BATCHES: Family = Family {
    name: "gatehouse_store_batches_total",
    help: "Batches the store's single writer applied those writes in (writes arriving together share one).",
    kind: Kind::Counter,
};
pub const STORE_BUSY: Family = Family {
    name: "gatehouse_store_writer_busy_seconds_total",
    help: "Time the store's writer spent applying batches; near 1 a second means the store limits throughput (on sled, staging one batch and landing the one before it both count, so up to 2).",
    kind: Kind::Counter,
};
pub const STORE_FLUSHES: Family = Family {
    name: "gatehouse_store_flushes_total",
    help: "Flushes to disk, each making every write applied before it started durable.",
    kind: Kind::Counter,
};
pub const STORE_FLUSH_SECONDS: Family = Family {
    name: "gatehouse_store_flush_seconds_total",
    help: "Time spent flushing to disk.",
    kind: Kind::Counter,
};
pub const BUILD_INFO: Family = Family {
    name: "gatehouse_build_info",
    help: "Always 1; the version label says which Gatehouse is running.",
    kind: Kind::Gauge,
};

pub const LEADER: Family = Family {
    name: "gatehouse_leader",
    help: "1 while this replica runs the scheduler and the outbox (always, with sled), 0 while it stands by.",
    kind: Kind::Gauge,
};
pub const LEASE_AGE_SECONDS: Family = Family {
    name: "gatehouse_lease_age_seconds",
    help: "Seconds since the leader last renewed its lease in PostgreSQL (only on a leader that holds one).",
    kind: Kind::Gauge,
};

/// Every family `/metrics` writes, in order.
pub const FAMILIES: &[Family] = &[
    REQUESTS,
    DECISION_SECONDS,
    PENDING,
    GRANTS_LIVE,
    REVOCATION_LAG_SECONDS,
    OUTBOX_DEPTH,
    OUTBOX_RETRYING,
    OUTBOX_RETRIES,
    PLATFORM_CALLS,
    PLATFORM_CONNECTED,
    CONNECTOR_CALLS,
    STORE_COMMITS,
    STORE_BATCHES,
    STORE_BUSY,
    STORE_FLUSHES,
    STORE_FLUSH_SECONDS,
    LEADER,
    LEASE_AGE_SECONDS,
    BUILD_INFO,
];

/// How a call to a platform or a connector went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// Refused for now with a 429 (or the platform's equivalent); retried after its wait.
    RateLimited,
    /// Failed in a way that may pass: retried.
    TransientError,
    /// Failed for good: not retried.
    PermanentError,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::RateLimited => "rate_limited",
            CallOutcome::TransientError => "transient_error",
            CallOutcome::PermanentError => "permanent_error",
        }
    }
}

/// The counters, histograms and readiness of one running Gatehouse.
#[derive(Debug, Default)]
pub struct Metrics {
    live: Live,
    readiness: Readiness,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A chat adapter called `method` of `platform`'s API ("slack", "chat.postMessage").
    pub fn platform_call(&self, platform: &'static str, method: &str, outcome: CallOutcome) {
        let labels = PlatformCallLabels {
            platform,
            method: method.to_owned(),
            outcome: outcome.as_str(),
        };
        self.live.platform_calls.get_or_create(&labels).inc();
    }

    /// The outbox called `connector` to `action` ("grant" or "revoke") a grant.
    pub fn connector_call(&self, connector: &str, action: &'static str, outcome: CallOutcome) {
        let labels = ConnectorCallLabels {
            connector: connector.to_owned(),
            action,
            outcome: outcome.as_str(),
        };
        self.live.connector_calls.get_or_create(&labels).inc();
    }

    /// An attempt at an effect (`provision`, `approval_card`, …) failed and will be retried.
    pub fn outbox_retry(&self, effect: &'static str) {
        let labels = EffectLabels { effect };
        self.live.outbox_retries.get_or_create(&labels).inc();
    }

    /// A request was refused by policy at submission (it is never stored).
    pub fn request_refused(&self, kind: RequestType) {
        self.live
            .requests
            .get_or_create(&requests_labels(kind, "refused"))
            .inc();
    }

    /// Records what a commit did, once it is durable.
    pub fn record(&self, observed: Observed) {
        for (kind, outcome) in observed.outcomes {
            self.live
                .requests
                .get_or_create(&requests_labels(kind, outcome))
                .inc();
        }
        for (outcome, seconds) in observed.decisions {
            self.live
                .decisions
                .get_or_create(&OutcomeLabels { outcome })
                .observe(seconds);
        }
        for seconds in observed.revocation_lags {
            self.live
                .revocation_lags
                .get_or_create(&NoLabels {})
                .observe(seconds);
        }
    }

    /// Which platforms are connected; see [`Readiness`].
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The current value of a counter series (for tests and diagnostics), as a scrape shows it.
    pub fn counter(&self, family: &Family, labels: &[(&'static str, &str)]) -> u64 {
        let text = self.render(&StoreGauges::default());
        registry::sample(&text, family.name, labels).map_or(0, |n| n as u64)
    }

    /// How many values a histogram series has observed (for tests and diagnostics).
    pub fn observations(&self, family: &Family, labels: &[(&'static str, &str)]) -> u64 {
        let text = self.render(&StoreGauges::default());
        registry::sample(&text, &format!("{}_count", family.name), labels).map_or(0, |n| n as u64)
    }

    /// Everything, in the Prometheus text format, with the store's gauges as read now.
    pub fn render(&self, store: &StoreGauges) -> String {
        let connected: Vec<Reading> = self
            .readiness
            .connections()
            .into_iter()
            .map(|(platform, up)| (vec![("platform", platform)], Number::Count(u64::from(up))))
            .collect();
        let build = vec![(
            vec![("version", env!("CARGO_PKG_VERSION").to_owned())],
            Number::Count(1),
        )];
        let leadership = self.readiness.leadership();
        let now = FAMILIES
            .iter()
            .map(|family| match family.name {
                n if n == PENDING.name => store.pending(),
                n if n == GRANTS_LIVE.name => store.grants(),
                n if n == OUTBOX_DEPTH.name => one(Number::Count(store.outbox_depth)),
                n if n == OUTBOX_RETRYING.name => one(Number::Count(store.outbox_retrying)),
                n if n == PLATFORM_CONNECTED.name => connected.clone(),
                n if n == STORE_COMMITS.name => one(Number::Count(store.writes.commits)),
                n if n == STORE_BATCHES.name => one(Number::Count(store.writes.batches)),
                n if n == STORE_BUSY.name => one(Number::Seconds(store.writes.busy.as_secs_f64())),
                n if n == STORE_FLUSHES.name => one(Number::Count(store.writes.flushes)),
                n if n == STORE_FLUSH_SECONDS.name => {
                    one(Number::Seconds(store.writes.flushing.as_secs_f64()))
                }
                n if n == LEADER.name => leadership
                    .map(|(leads, _)| one(Number::Count(u64::from(leads))))
                    .unwrap_or_default(),
                n if n == LEASE_AGE_SECONDS.name => leadership
                    .and_then(|(_, age)| age)
                    .map(|age| one(Number::Seconds(age.as_secs_f64())))
                    .unwrap_or_default(),
                n if n == BUILD_INFO.name => build.clone(),
                _ => Vec::new(),
            })
            .collect();
        registry::exposition(FAMILIES, &self.live, now)
    }
}

/// A family's one unlabelled value.
fn one(value: Number) -> Vec<Reading> {
    vec![(Vec::new(), value)]
}

fn requests_labels(kind: RequestType, outcome: &'static str) -> RequestLabels {
    RequestLabels {
        r#type: type_name(kind),
        outcome,
    }
}

/// The `type` label: the words workflows' `request_type` uses.
pub fn type_name(kind: RequestType) -> &'static str {
    match kind {
        RequestType::Standard => "standard",
        RequestType::Temporary => "temporary",
        RequestType::Extension => "extension",
        RequestType::Emergency => "emergency",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_named_in_the_operations_doc() {
        let readme = include_str!("../../docs/operations.md");
        for family in FAMILIES {
            assert!(
                readme.contains(family.name),
                "docs/operations.md does not list {}",
                family.name
            );
        }
    }

    #[test]
    fn platform_calls_are_counted_by_platform_method_and_outcome() {
        let metrics = Metrics::new();
        metrics.platform_call("slack", "chat.postMessage", CallOutcome::Ok);
        metrics.platform_call("slack", "chat.postMessage", CallOutcome::RateLimited);
        metrics.platform_call("slack", "chat.postMessage", CallOutcome::RateLimited);
        let limited = [
            ("platform", "slack"),
            ("method", "chat.postMessage"),
            ("outcome", "rate_limited"),
        ];
        assert_eq!(metrics.counter(&PLATFORM_CALLS, &limited), 2);
        let text = metrics.render(&StoreGauges::default());
        assert!(
            text.contains(
                "gatehouse_platform_calls_total{platform=\"slack\",method=\"chat.postMessage\",outcome=\"rate_limited\"} 2\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_family_is_written_even_before_anything_happened() {
        let text = Metrics::new().render(&StoreGauges::default());
        for family in FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {} ", family.name)),
                "{}",
                family.name
            );
        }
        assert!(text.contains("gatehouse_outbox_depth 0\n"), "{text}");
        assert!(text.contains("gatehouse_build_info{version=\""), "{text}");
    }

    #[test]
    fn a_connected_platform_shows_as_one() {
        let metrics = Metrics::new();
        metrics.readiness().expect("discord");
        metrics.readiness().connected("slack");
        let text = metrics.render(&StoreGauges::default());
        assert!(text.contains("gatehouse_platform_connected{platform=\"discord\"} 0\n"));
        assert!(text.contains("gatehouse_platform_connected{platform=\"slack\"} 1\n"));
    }

    #[test]
    fn a_leader_shows_as_one_with_the_age_of_its_lease_and_a_standby_as_zero() {
        let metrics = Metrics::new();
        let renewed = std::time::Instant::now() - std::time::Duration::from_secs(2);
        metrics.readiness().leading(true, Some(renewed));
        let text = metrics.render(&StoreGauges::default());
        assert!(text.contains("\ngatehouse_leader 1\n"), "{text}");
        let age: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_lease_age_seconds "))
            .and_then(|v| v.parse().ok())
            .expect("the lease's age");
        assert!(age >= 2.0, "{age}");
        assert_eq!(metrics.readiness().role(), Some("leader"));

        metrics.readiness().leading(false, None);
        let text = metrics.render(&StoreGauges::default());
        assert!(text.contains("\ngatehouse_leader 0\n"), "{text}");
        assert!(!text.contains("\ngatehouse_lease_age_seconds "), "{text}");
        assert_eq!(metrics.readiness().role(), Some("standby"));
    }
}

#[cfg(test)]
mod lifecycle_tests;
