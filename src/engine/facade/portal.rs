//! What the web portal reads and writes beyond the other front ends: its sessions (kept in
//! the store, so that they survive a restart and can be ended from anywhere), and the
//! records a request page shows together.

use super::Facade;
use crate::domain::grant::Grant;
use crate::domain::ids::{PersonId, RequestId};
use crate::domain::request::{AccessRequest, RequestState};
use crate::domain::session::{Session, Timeouts};
use crate::engine::EngineError;

impl Facade {
    /// The session stored under `key`, if any (whether it still lets anyone in is the
    /// caller's to check, with [`Session::check`]).
    pub async fn session(&self, key: String) -> Result<Option<Session>, EngineError> {
        self.call(move |engine| Ok(engine.store.session(&key)?))
            .await
    }

    /// Stores a new session, durably, and forgets every session that has ended by now:
    /// sign-ins are rare, sessions few, and this keeps abandoned ones from piling up.
    pub async fn open_session(
        &self,
        key: String,
        session: Session,
        timeouts: Timeouts,
    ) -> Result<(), EngineError> {
        self.call(move |engine| {
            let world = engine.world();
            let now = engine.now();
            for (old, stored) in engine.store.sessions()? {
                if stored.check(now, timeouts, &world.directory).is_err() {
                    engine.store.end_session(&old)?;
                }
            }
            Ok(engine.store.put_session(&key, &session, true)?)
        })
        .await
    }

    /// Writes a session's new `last_seen` (not flushed on its own: losing it to a crash
    /// only makes a session end sooner).
    pub async fn touch_session(&self, key: String, session: Session) -> Result<(), EngineError> {
        self.call(move |engine| Ok(engine.store.put_session(&key, &session, false)?))
            .await
    }

    /// Ends one session (sign-out, or one found ended); whether there was one.
    pub async fn end_session(&self, key: String) -> Result<bool, EngineError> {
        self.call(move |engine| Ok(engine.store.end_session(&key)?))
            .await
    }

    /// Ends every session of `person`; how many.
    pub async fn end_sessions_of(&self, person: PersonId) -> Result<usize, EngineError> {
        self.call(move |engine| {
            let mut ended = 0;
            for (key, session) in engine.store.sessions()? {
                if session.person == person && engine.store.end_session(&key)? {
                    ended += 1;
                }
            }
            Ok(ended)
        })
        .await
    }

    /// A request and, once approved, its grant, read together for the request page.
    pub async fn request_with_grant(
        &self,
        id: RequestId,
    ) -> Result<(AccessRequest, Option<Grant>), EngineError> {
        self.call(move |engine| {
            let request = engine.load_request(id)?.value;
            let grant = match &request.state {
                RequestState::Approved { grant, .. } => {
                    engine.store.grant(*grant)?.map(|g| g.value)
                }
                _ => None,
            };
            Ok((request, grant))
        })
        .await
    }
}
