//! The series behind [`super::Metrics`], kept by `prometheus-client`, and their exposition
//! in the Prometheus text format (version 0.0.4, `prometheus_client::encoding::prometheus_text`).
//!
//! Each family is declared once, as a [`Family`] (name, help, kind) that [`super::FAMILIES`]
//! lists and docs/operations.md names; what it counts lives in [`Live`], typed by its labels.
//! A scrape writes every family in that order, with its `# HELP` and `# TYPE` even before
//! anything was counted, the values read at scrape time (the store's gauges) beside the live
//! ones.

use std::fmt::Write;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What kind of numbers a family holds.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    /// Upper bounds of the buckets, in increasing order; `+Inf` is implied.
    Histogram(&'static [f64]),
}

/// One metric family: its name, what it means, and its kind.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

impl Family {
    fn metric_type(&self) -> MetricType {
        match self.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram(_) => MetricType::Histogram,
        }
    }

    /// The name the encoder is given: it adds `_total` to a counter's itself.
    fn base_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            _ => self.name,
        }
    }

    fn bounds(&self) -> &'static [f64] {
        match self.kind {
            Kind::Histogram(bounds) => bounds,
            _ => &[],
        }
    }
}

/// `gatehouse_requests_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub r#type: &'static str,
    pub outcome: &'static str,
}

/// The labels of a family labelled by outcome alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub outcome: &'static str,
}

/// No labels: one series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct NoLabels {}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EffectLabels {
    pub effect: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PlatformCallLabels {
    pub platform: &'static str,
    pub method: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ConnectorCallLabels {
    pub connector: String,
    pub action: &'static str,
    pub outcome: &'static str,
}

type Histograms<L> = Series<L, Histogram, fn() -> Histogram>;

/// Every series counted as things happen (clones share their numbers).
#[derive(Clone, Debug)]
pub(super) struct Live {
    pub requests: Series<RequestLabels, Counter>,
    pub decisions: Histograms<OutcomeLabels>,
    pub revocation_lags: Histograms<NoLabels>,
    pub outbox_retries: Series<EffectLabels, Counter>,
    pub platform_calls: Series<PlatformCallLabels, Counter>,
    pub connector_calls: Series<ConnectorCallLabels, Counter>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            requests: Series::default(),
            decisions: Series::new_with_constructor(|| {
                Histogram::new(super::DECISION_SECONDS.bounds().iter().copied())
            }),
            revocation_lags: Series::new_with_constructor(|| {
                Histogram::new(super::REVOCATION_LAG_SECONDS.bounds().iter().copied())
            }),
            outbox_retries: Series::default(),
            platform_calls: Series::default(),
            connector_calls: Series::default(),
        }
    }
}

impl Live {
    /// The live series of `family`, if it has any (a gauge's are read at scrape time).
    fn series(&self, family: &Family) -> Option<&dyn EncodeMetric> {
        let series: &dyn EncodeMetric = match family.name {
            n if n == super::REQUESTS.name => &self.requests,
            n if n == super::DECISION_SECONDS.name => &self.decisions,
            n if n == super::REVOCATION_LAG_SECONDS.name => &self.revocation_lags,
            n if n == super::OUTBOX_RETRIES.name => &self.outbox_retries,
            n if n == super::PLATFORM_CALLS.name => &self.platform_calls,
            n if n == super::CONNECTOR_CALLS.name => &self.connector_calls,
            _ => return None,
        };
        Some(series)
    }
}

/// A number read at scrape time: a count is written as an integer, seconds as they are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Number {
    Count(u64),
    Seconds(f64),
}

/// A value read at scrape time, with its labels as `(name, value)` pairs.
pub(super) type Reading = (Vec<(&'static str, String)>, Number);

/// One scrape: the live series and what was read now, written family by family.
#[derive(Debug)]
struct Scrape {
    families: &'static [Family],
    live: Live,
    /// Per family (in `families` order), the values read now.
    now: Vec<Vec<Reading>>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (family, now) in self.families.iter().zip(&self.now) {
            let mut metric = encoder.encode_descriptor(
                family.base_name(),
                family.help,
                None,
                family.metric_type(),
            )?;
            if let Some(series) = self.live.series(family) {
                series.encode(metric)?;
                continue;
            }
            for (labels, value) in now {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let one = metric.encode_family(&labels)?;
                match (family.kind, *value) {
                    (Kind::Counter, Number::Count(n)) => ConstCounter::new(n).encode(one)?,
                    (Kind::Counter, Number::Seconds(s)) => ConstCounter::new(s).encode(one)?,
                    (_, Number::Count(n)) => {
                        ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(one)?
                    }
                    (_, Number::Seconds(s)) => ConstGauge::new(s).encode(one)?,
                }
            }
        }
        Ok(())
    }
}

/// `families` in the text format: `# HELP`, `# TYPE`, then the samples of `live` and of
/// `now` (per family, in the same order).
pub(super) fn exposition(
    families: &'static [Family],
    live: &Live,
    now: Vec<Vec<Reading>>,
) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        families,
        live: live.clone(),
        now,
    }));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The value of the sample `name{labels}` in `text`, an exposition, if it is there.
pub(super) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted = name.to_owned();
    if !labels.is_empty() {
        wanted.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                wanted.push(',');
            }
            let _ = write!(wanted, "{key}=\"{}\"", escape(value));
        }
        wanted.push('}');
    }
    wanted.push(' ');
    text.lines()
        .find_map(|line| line.strip_prefix(wanted.as_str()))
        .and_then(|value| value.trim().parse().ok())
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLS: Family = Family {
        name: "t_calls_total",
        help: "Calls.",
        kind: Kind::Counter,
    };
    const LAG: Family = Family {
        name: "t_lag_seconds",
        help: "Lag.",
        kind: Kind::Histogram(&[1.0, 10.0]),
    };

    #[test]
    fn counters_are_written_with_help_type_and_escaped_labels() {
        let now = vec![vec![
            (
                vec![("method", "chat.postMessage".to_owned())],
                Number::Count(2),
            ),
            (
                vec![("method", "say \"hi\"\\\n".to_owned())],
                Number::Count(1),
            ),
        ]];
        let text = exposition(&[CALLS], &Live::default(), now);
        assert_eq!(
            text,
            "# HELP t_calls_total Calls.\n# TYPE t_calls_total counter\n\
             t_calls_total{method=\"chat.postMessage\"} 2\n\
             t_calls_total{method=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
        );
        assert_eq!(
            sample(&text, "t_calls_total", &[("method", "say \"hi\"\\\n")]),
            Some(1.0)
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let lag = Histogram::new(LAG.bounds().iter().copied());
        for value in [0.5, 5.0, 5.0, 60.0] {
            lag.observe(value);
        }
        let mut registry = Registry::default();
        registry.register(LAG.name, "Lag", lag);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("t_lag_seconds_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_lag_seconds_bucket{le=\"10\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("t_lag_seconds_bucket{le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("t_lag_seconds_sum 70.5\n"), "{text}");
        assert!(text.contains("t_lag_seconds_count 4\n"), "{text}");
    }

    #[test]
    fn a_sample_of_another_family_with_a_longer_name_is_not_taken() {
        let text = "t_calls_total_x 1\nt_calls_total 7\n";
        assert_eq!(sample(text, "t_calls_total", &[]), Some(7.0));
        assert_eq!(sample(text, "t_calls", &[]), None);
    }
}
