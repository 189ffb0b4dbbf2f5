//! A web portal session: who signed in, when, when they were last seen, and the token
//! their forms carry against cross-site request forgery. The rules of when a session ends
//! live here; the portal keeps the session's secret in a cookie and the store keeps this
//! record under a hash of it (see `crate::web::session`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::directory::Directory;
use super::ids::PersonId;

/// How long a session may go unseen between two writes of `last_seen`: a page view does
/// not write to the store each time, only once this much has passed.
pub const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub person: PersonId,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Sent back with every form; compared in constant time.
    pub csrf: String,
}

/// How long sessions last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: TimeDelta,
    pub absolute: TimeDelta,
}

/// Why a session no longer lets anyone in. The `Display` is what the person reads on the
/// sign-in page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    #[error("Your session ended after a while without use; sign in again.")]
    Idle,
    #[error("Your session reached its time limit; sign in again.")]
    Absolute,
    #[error("Your account is no longer active in Gatehouse's directory.")]
    Left,
}

impl Session {
    pub fn new(person: PersonId, csrf: String, now: DateTime<Utc>) -> Self {
        Self {
            person,
            created_at: now,
            last_seen: now,
            csrf,
        }
    }

    /// Whether the session still lets its person in at `now`: within both timeouts, and the
    /// person still active in `directory` (a leaver's session ends with the leaver).
    pub fn check(
        &self,
        now: DateTime<Utc>,
        timeouts: Timeouts,
        directory: &Directory,
    ) -> Result<(), Ended> {
        if now >= self.created_at + timeouts.absolute {
            return Err(Ended::Absolute);
        }
        if now >= self.last_seen + timeouts.idle {
            return Err(Ended::Idle);
        }
        if directory.active_person(&self.person).is_none() {
            return Err(Ended::Left);
        }
        Ok(())
    }

    /// The session seen at `now`, when `last_seen` is worth writing again.
    pub fn touched(&self, now: DateTime<Utc>) -> Option<Session> {
        (now >= self.last_seen + TOUCH_EVERY).then(|| Session {
            last_seen: now,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::directory::Person;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    const TIMEOUTS: Timeouts = Timeouts {
        idle: TimeDelta::minutes(30),
        absolute: TimeDelta::hours(12),
    };

    fn directory(active: bool) -> Directory {
        Directory::from_people([Person {
            id: "alice".into(),
            name: "Alice".into(),
            email: None,
            manager: None,
            department: None,
            title: None,
            groups: Default::default(),
            slack: None,
            discord: None,
            notify: Vec::new(),
            accounts: Default::default(),
            active,
        }])
    }

    fn session() -> Session {
        Session::new("alice".into(), "csrf".into(), start())
    }

    #[test]
    fn a_session_in_use_lasts_until_its_absolute_timeout() {
        let mut session = session();
        let mut now = start();
        while now < start() + TimeDelta::hours(12) {
            assert_eq!(session.check(now, TIMEOUTS, &directory(true)), Ok(()));
            session = session.touched(now).unwrap_or(session);
            now += TimeDelta::minutes(20);
        }
        assert_eq!(
            session.check(now, TIMEOUTS, &directory(true)),
            Err(Ended::Absolute)
        );
    }

    #[test]
    fn a_session_left_alone_ends_at_its_idle_timeout() {
        let session = session();
        let active = directory(true);
        let almost = start() + TimeDelta::minutes(29);
        assert_eq!(session.check(almost, TIMEOUTS, &active), Ok(()));
        let idle = start() + TimeDelta::minutes(30);
        assert_eq!(session.check(idle, TIMEOUTS, &active), Err(Ended::Idle));
    }

    #[test]
    fn a_leavers_session_ends_with_the_leaver() {
        let now = start() + TimeDelta::minutes(1);
        assert_eq!(
            session().check(now, TIMEOUTS, &directory(false)),
            Err(Ended::Left)
        );
        let nobody = Directory::from_people([]);
        assert_eq!(session().check(now, TIMEOUTS, &nobody), Err(Ended::Left));
    }

    #[test]
    fn a_page_view_writes_last_seen_at_most_once_a_minute() {
        let session = session();
        assert_eq!(session.touched(start() + TimeDelta::seconds(59)), None);
        let later = start() + TimeDelta::seconds(60);
        assert_eq!(session.touched(later).unwrap().last_seen, later);
    }
}
