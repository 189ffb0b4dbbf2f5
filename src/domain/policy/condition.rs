//! `when = { … }`: the conditions that pick a workflow or a bundle. All keys must hold.

use crate::domain::directory::Person;
use crate::domain::duration::Duration;
use crate::domain::ids::{GroupId, ResourceId};

use super::{RequestType, Resource, Risk, Role};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub privileged: Option<bool>,
    pub risk_at_least: Option<Risk>,
    pub risk_at_most: Option<Risk>,
    pub resources: Vec<ResourceId>,
    pub kinds: Vec<String>,
    pub departments: Vec<String>,
    pub groups: Vec<GroupId>,
    pub duration_over: Option<Duration>,
    pub duration_at_most: Option<Duration>,
    pub request_types: Vec<RequestType>,
}

/// What a condition can look at: the request as asked, and who asks.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    pub requester: &'a Person,
    pub resource: &'a Resource,
    pub role: &'a Role,
    /// `None` is standing access: longer than any duration.
    pub duration: Option<Duration>,
    pub request_type: RequestType,
}

impl Condition {
    /// True for `when = {}` or no `when` at all.
    pub fn is_always(&self) -> bool {
        self == &Condition::default()
    }

    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        let risk = facts.resource.risk_of(facts.role);
        self.privileged.is_none_or(|p| p == facts.role.privileged)
            && self.risk_at_least.is_none_or(|r| risk >= r)
            && self.risk_at_most.is_none_or(|r| risk <= r)
            && (self.resources.is_empty() || self.resources.contains(&facts.resource.id))
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&facts.resource.kind)))
            && self.matches_person(facts.requester)
            && self
                .duration_over
                .is_none_or(|limit| facts.duration.is_none_or(|d| d > limit))
            && self
                .duration_at_most
                .is_none_or(|limit| facts.duration.is_some_and(|d| d <= limit))
            && (self.request_types.is_empty() || self.request_types.contains(&facts.request_type))
    }

    /// The resource-and-role part: could any request for this role match?
    pub fn matches_role(&self, resource: &Resource, role: &Role) -> bool {
        let risk = resource.risk_of(role);
        self.privileged.is_none_or(|p| p == role.privileged)
            && self.risk_at_least.is_none_or(|r| risk >= r)
            && self.risk_at_most.is_none_or(|r| risk <= r)
            && (self.resources.is_empty() || self.resources.contains(&resource.id))
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&resource.kind)))
    }

    /// The person-only part, which is all a bundle looks at.
    pub fn matches_person(&self, person: &Person) -> bool {
        (self.departments.is_empty() || self.departments.iter().any(|d| person.in_department(d)))
            && (self.groups.is_empty() || self.groups.iter().any(|g| person.in_group(g)))
    }

    /// Why no request could ever satisfy this condition, if that is so.
    pub fn contradiction(&self) -> Option<String> {
        if let (Some(least), Some(most)) = (self.risk_at_least, self.risk_at_most)
            && least > most
        {
            return Some(format!(
                "risk_at_least = \"{least}\" is above risk_at_most = \"{most}\""
            ));
        }
        if let (Some(over), Some(most)) = (self.duration_over, self.duration_at_most)
            && over >= most
        {
            return Some(format!(
                "duration_over = \"{over}\" is not below duration_at_most = \"{most}\""
            ));
        }
        None
    }
}
