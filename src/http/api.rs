//! The admin API's bodies and answers: what the CLI sends and reads, and what the server
//! reads and sends, as one set of types so that the two cannot drift apart. A body names
//! who acts with `as` (for a token that may act for others); unknown fields are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::duration::Duration;
use crate::domain::grant::Grant;
use crate::domain::ids::{GrantId, PersonId, RoleId};
use crate::domain::request::AccessRequest;
use crate::engine::ReloadReport;

/// `POST /requests`: ask for access (or emergency access).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
    pub resource: String,
    pub role: String,
    pub duration: Option<Duration>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub emergency: bool,
}

/// `POST /requests/{id}/approve`, with changes when `duration` or `role` is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
    pub duration: Option<Duration>,
    pub role: Option<RoleId>,
}

/// `POST /requests/{id}/reject` and `POST /grants/{id}/revoke`: who, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
    #[serde(default)]
    pub reason: String,
}

/// `POST /grants/{id}/extend`: more time on a grant, asked like any request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
    pub duration: Duration,
    #[serde(default)]
    pub reason: String,
}

/// A command that needs only who acts: cancel, end early, offboard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
}

/// A request, and the grant it made when it made one (submit, approve, extend).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAndGrant {
    pub request: AccessRequest,
    #[serde(default)]
    pub grant: Option<Grant>,
}

/// One request (show, reject, cancel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneRequest {
    pub request: AccessRequest,
}

/// One grant (show, revoke, end early).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneGrant {
    pub grant: Grant,
}

/// Requests, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requests {
    pub requests: Vec<AccessRequest>,
}

/// Grants, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub grants: Vec<Grant>,
}

/// What offboarding `person` did: the grants being revoked, how many requests cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarded {
    pub person: PersonId,
    pub grants: Vec<GrantId>,
    pub requests: usize,
}

/// `POST /reload`: what is in force now, the checks' warnings, and what the directory
/// change did to people's access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    pub ok: bool,
    pub people: usize,
    pub resources: usize,
    pub workflows: usize,
    pub reviews: usize,
    pub admin_tokens: usize,
    pub warnings: Vec<String>,
    #[serde(default)]
    pub access: ReloadReport,
}
