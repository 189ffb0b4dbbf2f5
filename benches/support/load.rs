//! An open-loop load generator: request `i` is sent at `start + i / rate` whether or not
//! earlier ones were answered, and its latency is measured from that scheduled moment, so a
//! slow server cannot slow the generator down and hide its own slowness (no coordinated
//! omission).

use std::time::{Duration, Instant};

/// One request's fate.
pub struct Outcome {
    /// When it was meant to be sent.
    pub scheduled: Instant,
    /// From `scheduled` to the whole answer read.
    pub latency: Duration,
    pub ok: bool,
    pub body: String,
}

/// A request to send: body and headers.
pub type Make = dyn Fn(u64) -> (String, Vec<(&'static str, String)>) + Send + Sync;

/// Sends `rate × duration` POSTs to `url` on schedule; every outcome, in order.
pub fn open_loop(url: &str, rate: f64, duration: Duration, make: &Make) -> Vec<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let count = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let start = tokio::time::Instant::now() + Duration::from_millis(20);
        let mut handles = Vec::with_capacity(count as usize);
        for i in 0..count {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at).await;
            let (body, headers) = make(i);
            let mut request = client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            handles.push(tokio::spawn(async move {
                let (ok, body) = match request.send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        (ok, response.text().await.unwrap_or_default())
                    }
                    Err(error) => (false, error.to_string()),
                };
                Outcome {
                    scheduled: at.into_std(),
                    latency: at.elapsed(),
                    ok,
                    body,
                }
            }));
        }
        let mut outcomes = Vec::with_capacity(handles.len());
        for handle in handles {
            outcomes.push(handle.await.unwrap());
        }
        outcomes
    })
}

/// p50, p99 and max of the latencies, and how many failed.
pub struct Summary {
    pub sent: usize,
    pub failed: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// CPU the whole process used per request while they were sent and answered (the
    /// generator, the server, and what runs beside it), when measured.
    pub cpu_per_request: Option<Duration>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
        latencies.sort();
        Summary {
            sent: outcomes.len(),
            failed: outcomes.iter().filter(|o| !o.ok).count(),
            p50: super::percentile(&latencies, 50.0),
            p99: super::percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
            cpu_per_request: None,
        }
    }

    /// The same, with `cpu` (used while the requests were sent and answered) per request.
    pub fn with_cpu(mut self, cpu: Duration) -> Summary {
        self.cpu_per_request = Some(cpu / self.sent.max(1) as u32);
        self
    }

    /// Sustained: every request answered, p99 under 100 ms.
    pub fn sustained(&self) -> bool {
        self.failed == 0 && self.p99 < Duration::from_millis(100)
    }
}
