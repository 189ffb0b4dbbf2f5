//! The one way a test waits for something the server does in the background: poll a check
//! until it holds, with a deadline in real time (so a paused tokio clock is not pushed on),
//! then fail naming what never happened and why the last look said no.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often a check is looked at again.
const EVERY: Duration = Duration::from_millis(25);
/// How long [`eventually`] waits before failing: long, since a loaded CI machine is slow and
/// a check that holds returns at once.
const PATIENCE: Duration = Duration::from_secs(30);

/// What a check returns: whether it holds, and what it found or why not.
pub trait Polled {
    type Found;
    fn found(self) -> Result<Self::Found, String>;
}

impl Polled for bool {
    type Found = ();
    fn found(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    }
}

impl<T> Polled for Option<T> {
    type Found = T;
    fn found(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

impl<T, E: Display> Polled for Result<T, E> {
    type Found = T;
    fn found(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `check` until it holds (true, `Some`, `Ok`), for at most [`PATIENCE`]; what it
/// found. A check that needs no waiting itself returns `std::future::ready(…)`.
pub async fn eventually<P: Polled, F: Future<Output = P>>(
    what: &str,
    check: impl FnMut() -> F,
) -> P::Found {
    eventually_within(what, PATIENCE, check).await
}

/// [`eventually`], failing after `patience` instead.
pub async fn eventually_within<P: Polled, F: Future<Output = P>>(
    what: &str,
    patience: Duration,
    mut check: impl FnMut() -> F,
) -> P::Found {
    let deadline = Instant::now() + patience;
    loop {
        match check().await.found() {
            Ok(found) => return found,
            Err(why) if Instant::now() >= deadline => {
                panic!("waited {patience:?} for {what}: {why}")
            }
            Err(_) => tokio::time::sleep(EVERY).await,
        }
    }
}
