//! What the engine's tests (and the outbox's) share: an engine on a real sled store with the
//! example policy and a fake clock, and short ways to say who asks for what.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::{Engine, FakeClock};
use crate::domain::audit::Actor;
use crate::domain::policy::tests::{example_directory, example_policy};
use crate::domain::validation::Ask;
use crate::store::SledStore;

/// The moment every test starts at: 09:00 UTC on a Thursday.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()
}

/// An engine on `store` with the example policy and directory, and its clock.
pub fn engine_on(store: SledStore) -> (Arc<Engine>, Arc<FakeClock>) {
    engine_sharing(Arc::new(store))
}

/// [`engine_on`] a store the test keeps a handle on, to reach what only sled has.
pub fn engine_sharing(store: Arc<SledStore>) -> (Arc<Engine>, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::at(start()));
    let engine = Engine::new(store, example_policy(), example_directory(), clock.clone());
    (Arc::new(engine), clock)
}

/// A person acting in chat.
pub fn who(id: &str) -> Actor {
    Actor::person(&id.into())
}

/// `who` asks for `resource/role` for `duration`, with a reason.
pub fn ask(who: &str, resource: &str, role: &str, duration: &str) -> Ask {
    Ask {
        requester: who.into(),
        resource: resource.into(),
        role: role.into(),
        duration: Some(duration.parse().unwrap()),
        justification: "fixing replica lag".into(),
        ..Ask::default()
    }
}
