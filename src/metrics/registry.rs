//! The counters and histograms behind [`super::Metrics`], and the Prometheus text exposition
//! (version 0.0.4) they are written in. Written by hand: a dozen families do not need a crate.

use std::collections::BTreeMap;
use std::fmt::Write;

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

/// Label names and values of one series, in the order they are written.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Default)]
pub(super) struct Histogram {
    /// Per bucket (not cumulative), then the `+Inf` overflow.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let bucket = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }
}

/// Every counter and histogram series seen so far.
#[derive(Debug, Default)]
pub(super) struct Series {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

impl Series {
    pub fn add(&mut self, family: &Family, labels: Labels, by: u64) {
        *self.counters.entry((family.name, labels)).or_default() += by;
    }

    pub fn observe(&mut self, family: &Family, labels: Labels, value: f64) {
        if let Kind::Histogram(bounds) = family.kind {
            self.histograms
                .entry((family.name, labels))
                .or_default()
                .observe(bounds, value);
        }
    }

    pub fn counter(&self, family: &Family, labels: &Labels) -> u64 {
        self.counters
            .get(&(family.name, labels.clone()))
            .copied()
            .unwrap_or(0)
    }

    pub fn histogram_count(&self, family: &Family, labels: &Labels) -> u64 {
        self.histograms
            .get(&(family.name, labels.clone()))
            .map_or(0, |h| h.count)
    }
}

/// Writes families in the text format: `# HELP`, `# TYPE`, then the samples.
pub(super) struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self { out: String::new() }
    }

    /// Writes `family` with the recorded series of `series`, then `now` (label sets and
    /// values read now: a gauge's, or a counter kept elsewhere, such as the store's).
    pub fn family(&mut self, family: &Family, series: &Series, now: &[(Labels, f64)]) {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(self.out, "# TYPE {} {kind}", family.name);
        match family.kind {
            Kind::Counter => {
                for ((_, labels), value) in series.counters.range(range_of(family.name)) {
                    self.sample(family.name, labels, None, *value as f64);
                }
                for (labels, value) in now {
                    self.sample(family.name, labels, None, *value);
                }
            }
            Kind::Gauge => {
                for (labels, value) in now {
                    self.sample(family.name, labels, None, *value);
                }
            }
            Kind::Histogram(bounds) => {
                for ((_, labels), h) in series.histograms.range(range_of(family.name)) {
                    let bucket = format!("{}_bucket", family.name);
                    let mut cumulative = 0;
                    for (bound, count) in bounds.iter().zip(&h.counts) {
                        cumulative += count;
                        self.sample(&bucket, labels, Some(number(*bound)), cumulative as f64);
                    }
                    self.sample(&bucket, labels, Some("+Inf".to_owned()), h.count as f64);
                    self.sample(&format!("{}_sum", family.name), labels, None, h.sum);
                    self.sample(
                        &format!("{}_count", family.name),
                        labels,
                        None,
                        h.count as f64,
                    );
                }
            }
        }
    }

    fn sample(&mut self, name: &str, labels: &Labels, le: Option<String>, value: f64) {
        self.out.push_str(name);
        let le = le.map(|le| ("le", le));
        let all: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(le.as_ref().map(|(k, v)| (*k, v.as_str())))
            .collect();
        if !all.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in all.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The keys of one family in a map ordered by (family, labels).
fn range_of(name: &'static str) -> std::ops::RangeInclusive<(&'static str, Labels)> {
    // Labels sort after the empty list and before a list starting with a name past any real one.
    (name, Vec::new())..=(name, vec![("\u{10ffff}", String::new())])
}

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Integers without a fraction, other numbers as Rust prints them.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
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
        let mut series = Series::default();
        series.add(&CALLS, vec![("method", "chat.postMessage".into())], 2);
        series.add(&CALLS, vec![("method", "say \"hi\"\\\n".into())], 1);
        let mut out = Exposition::new();
        out.family(&CALLS, &series, &[]);
        assert_eq!(
            out.finish(),
            "# HELP t_calls_total Calls.\n# TYPE t_calls_total counter\n\
             t_calls_total{method=\"chat.postMessage\"} 2\n\
             t_calls_total{method=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut series = Series::default();
        for value in [0.5, 5.0, 5.0, 60.0] {
            series.observe(&LAG, vec![], value);
        }
        let mut out = Exposition::new();
        out.family(&LAG, &series, &[]);
        let text = out.finish();
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
    fn families_do_not_leak_into_each_other() {
        let other = Family {
            name: "t_calls_total_x",
            ..CALLS
        };
        let mut series = Series::default();
        series.add(&other, vec![], 1);
        series.add(&CALLS, vec![], 7);
        let mut out = Exposition::new();
        out.family(&CALLS, &series, &[]);
        let text = out.finish();
        assert!(text.contains("t_calls_total 7\n"), "{text}");
        assert!(!text.contains("t_calls_total_x"), "{text}");
    }
}
