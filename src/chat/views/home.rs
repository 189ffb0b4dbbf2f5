//! The view of a person's App Home: their requests, their grants, and the requests waiting
//! for their approval.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GrantView, PersonView, RequestView};
use crate::domain::directory::Directory;
use crate::domain::grant::Grant;
use crate::domain::ids::PersonId;
use crate::domain::policy::Policy;
use crate::domain::request::AccessRequest;

/// The App Home of one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HomeView {
    pub person: PersonView,
    pub requests: Vec<RequestView>,
    pub grants: Vec<GrantView>,
    /// Requests whose current stage waits for this person.
    pub approvals: Vec<RequestView>,
}

impl HomeView {
    pub fn new(
        person: &PersonId,
        requests: &[AccessRequest],
        grants: &[Grant],
        approvals: &[AccessRequest],
        directory: &Directory,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let request = |r: &AccessRequest| RequestView::new(r, directory, policy);
        HomeView {
            person: PersonView::new(person, directory),
            requests: requests.iter().map(request).collect(),
            grants: grants
                .iter()
                .map(|g| GrantView::new(g, directory, policy, now))
                .collect(),
            approvals: approvals.iter().map(request).collect(),
        }
    }
}
