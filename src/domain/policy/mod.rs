//! The policy: what can be asked for, by whom, for how long, and who decides.
//! `parse` turns policy.toml into these types and reports every problem it finds;
//! everything here is already checked, so the rest of the domain can trust it.

mod condition;
mod parse;
mod raw;
pub mod selector;
mod workflows;

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use condition::{Condition, RequestFacts};
pub use parse::{Checked, PolicyContext, accepted_tables, parse_policy};
pub use selector::{ApproverSelector, Subject};

use super::directory::Person;
use super::duration::Duration;
use super::ids::{ConnectorId, ResourceId, RoleId, TemplateId, WorkflowId};

/// How much harm misuse could do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        })
    }
}

/// What kind of request this is, as workflows' `request_type` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestType {
    /// Standing access, without an end.
    Standard,
    /// Time-bound (JIT) access.
    Temporary,
    /// More time on an existing grant.
    Extension,
    /// Break-glass: granted at once, reviewed after.
    Emergency,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub defaults: Defaults,
    pub templates: BTreeMap<TemplateId, RequestTemplate>,
    pub resources: Vec<Resource>,
    pub workflows: Vec<Workflow>,
    pub sod: Vec<SodRule>,
    pub emergency: Option<EmergencyPolicy>,
    pub reviews: Vec<ReviewCampaign>,
    pub bundles: Vec<Bundle>,
}

#[derive(Clone, Debug)]
pub struct Defaults {
    pub pending_ttl: Duration,
    pub remind_every: Duration,
    pub escalate_after: Duration,
    pub max_duration: Duration,
    pub distinct_approvers: bool,
    pub admins: Vec<Subject>,
    /// Who may read and export the whole audit log in the web portal (admins may too), and
    /// nothing more.
    pub auditors: Vec<Subject>,
    /// What happens to a mover's grants that their new department or groups no longer allow.
    pub on_mover: MoverAction,
}

/// `on_mover`: take the access away at once, or let its resource's owners decide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoverAction {
    #[default]
    Revoke,
    Review,
}

#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub id: TemplateId,
    pub fields: Vec<TemplateField>,
}

#[derive(Clone, Debug)]
pub struct TemplateField {
    pub id: String,
    pub label: String,
    pub pattern: Option<Regex>,
    pub required: bool,
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub id: ResourceId,
    pub name: String,
    pub kind: String,
    pub owners: Vec<Subject>,
    pub risk: Risk,
    pub connector: Option<ConnectorId>,
    /// Who may ask; empty means everyone in the directory.
    pub eligible: Vec<Subject>,
    /// Listed from least to most powerful: "a lesser role" is one listed earlier.
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub privileged: bool,
    /// The role's own risk, when it differs from its resource's.
    pub risk: Option<Risk>,
    pub max_duration: Option<Duration>,
    pub template: Option<TemplateId>,
    /// Whether the role may be held without an end date.
    pub standing: bool,
}

#[derive(Clone, Debug)]
pub struct Workflow {
    pub id: WorkflowId,
    pub when: Condition,
    pub auto_approve: bool,
    pub stages: Vec<StageSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSpec {
    pub name: String,
    pub approvers: Vec<ApproverSelector>,
    pub quorum: Quorum,
    pub escalate_to: Vec<ApproverSelector>,
}

/// How many approvals a stage needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quorum {
    Count(usize),
    All,
}

#[derive(Clone, Debug)]
pub struct SodRule {
    pub id: String,
    pub roles: Vec<(ResourceId, RoleId)>,
    pub action: SodAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SodAction {
    /// The request is refused.
    Block,
    /// The request gets an extra security review stage.
    Review,
}

#[derive(Clone, Debug)]
pub struct EmergencyPolicy {
    pub eligible: Vec<Subject>,
    pub max_duration: Duration,
    pub reviewers: Vec<ApproverSelector>,
    pub review_within: Duration,
}

#[derive(Clone, Debug)]
pub struct ReviewCampaign {
    pub id: String,
    pub schedule: cron::Schedule,
    pub resources: Vec<ResourceId>,
    pub reviewers: Vec<ApproverSelector>,
    pub deadline: Duration,
    pub on_timeout: OnTimeout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    Revoke,
    Keep,
    Escalate,
}

#[derive(Clone, Debug)]
pub struct Bundle {
    pub id: String,
    pub when: Condition,
    pub grants: Vec<(ResourceId, RoleId)>,
}

impl Policy {
    pub fn resource(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|r| &r.id == id)
    }

    pub fn resource_ids(&self) -> impl Iterator<Item = &str> {
        self.resources.iter().map(|r| r.id.as_str())
    }

    pub fn template(&self, id: &TemplateId) -> Option<&RequestTemplate> {
        self.templates.get(id)
    }

    /// The first workflow whose `when` holds: the route of a request.
    pub fn workflow_for(&self, facts: &RequestFacts<'_>) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.when.matches(facts))
    }

    /// Whether the person may run admin actions (revoke anything, offboard).
    pub fn is_admin(&self, person: &Person) -> bool {
        person.active && self.defaults.admins.iter().any(|s| s.includes(person))
    }

    /// Whether the person may read the whole audit log: an auditor or an admin.
    pub fn is_auditor(&self, person: &Person) -> bool {
        self.is_admin(person)
            || (person.active && self.defaults.auditors.iter().any(|s| s.includes(person)))
    }
}

impl EmergencyPolicy {
    /// The stage that reviews break-glass access after the fact: one of the reviewers.
    pub fn review_stage(&self) -> StageSpec {
        StageSpec {
            name: "Emergency review".to_owned(),
            approvers: self.reviewers.clone(),
            quorum: Quorum::Count(1),
            escalate_to: Vec::new(),
        }
    }
}

impl Resource {
    pub fn role(&self, id: &RoleId) -> Option<&Role> {
        self.roles.iter().find(|r| &r.id == id)
    }

    pub fn role_ids(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.id.as_str())
    }

    /// Whether `lesser` is listed before `role`, i.e. grants less.
    pub fn is_lesser_role(&self, lesser: &RoleId, role: &RoleId) -> bool {
        let position = |id: &RoleId| self.roles.iter().position(|r| &r.id == id);
        matches!((position(lesser), position(role)), (Some(a), Some(b)) if a < b)
    }

    pub fn is_eligible(&self, person: &Person) -> bool {
        person.active
            && (self.eligible.is_empty() || self.eligible.iter().any(|s| s.includes(person)))
    }

    pub fn risk_of(&self, role: &Role) -> Risk {
        role.risk.unwrap_or(self.risk)
    }
}

impl Role {
    /// The longest this role may be held, under `defaults`.
    pub fn max_duration(&self, defaults: &Defaults) -> Duration {
        self.max_duration.unwrap_or(defaults.max_duration)
    }
}

#[cfg(test)]
pub(crate) mod tests;
