//! Routing: which workflow decides a request, and the concrete people of each stage.
//! A plan is only ever made when every stage can reach its quorum without the requester.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::directory::{Directory, Person};
use super::ids::{PersonId, WorkflowId};
use super::policy::{ApproverSelector, Policy, Quorum, RequestFacts, Resource, StageSpec};

/// The stages a request must pass, with the people who may decide each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPlan {
    pub workflow: WorkflowId,
    pub auto_approved: bool,
    pub stages: Vec<PlannedStage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    pub name: String,
    /// Who may approve now; the requester is never among them.
    pub approvers: BTreeSet<PersonId>,
    /// The approvals needed.
    pub quorum: usize,
    /// Who is added when the stage is escalated (or must be, to be reachable).
    pub escalate_to: BTreeSet<PersonId>,
    pub escalated: bool,
    pub approvals: Vec<Approval>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: PersonId,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl PlannedStage {
    pub fn is_complete(&self) -> bool {
        self.approvals.len() >= self.quorum
    }

    pub fn has_approved(&self, person: &PersonId) -> bool {
        self.approvals.iter().any(|a| &a.by == person)
    }

    /// Adds the escalate_to people; false when there was nobody new to add.
    pub fn escalate(&mut self) -> bool {
        let before = self.approvers.len();
        self.approvers.extend(self.escalate_to.iter().cloned());
        self.escalated = true;
        self.approvers.len() > before
    }
}

/// Why a request cannot be routed: nobody could ever approve it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no workflow of the policy covers {resource}/{role}; ask the IAM team to add one")]
    NoWorkflow { resource: String, role: String },
    #[error(
        "nobody can complete the stage \"{stage}\": it needs {needed} approval(s), and its possible approvers ({who}) are too few once the requester and the approvers of other stages are left out; ask the IAM team to add approvers or an escalate_to"
    )]
    Unreachable {
        stage: String,
        needed: usize,
        who: String,
    },
}

/// Resolves one selector to the active people it names for this request.
pub fn resolve_selector<'d>(
    selector: &ApproverSelector,
    requester: &Person,
    resource: &Resource,
    directory: &'d Directory,
) -> Vec<&'d Person> {
    match selector {
        ApproverSelector::Manager { level } => directory
            .manager_of(&requester.id, *level)
            .filter(|p| p.active)
            .into_iter()
            .collect(),
        ApproverSelector::Owners => {
            let mut owners: Vec<&Person> = resource
                .owners
                .iter()
                .flat_map(|s| s.resolve(directory))
                .collect();
            owners.sort_by(|a, b| a.id.cmp(&b.id));
            owners.dedup_by(|a, b| a.id == b.id);
            owners
        }
        ApproverSelector::Group(g) => directory.members(g).collect(),
        ApproverSelector::Person(p) => directory.active_person(p).into_iter().collect(),
    }
}

fn resolve_all(
    selectors: &[ApproverSelector],
    requester: &Person,
    resource: &Resource,
    directory: &Directory,
) -> BTreeSet<PersonId> {
    selectors
        .iter()
        .flat_map(|s| resolve_selector(s, requester, resource, directory))
        .map(|p| p.id.clone())
        .filter(|id| id != &requester.id)
        .collect()
}

/// Builds the approval plan for a request, or says why nobody could approve it.
/// `extra_stages` come after the workflow's own (an SoD review, for example).
pub fn route(
    policy: &Policy,
    directory: &Directory,
    facts: &RequestFacts<'_>,
    extra_stages: &[StageSpec],
) -> Result<ApprovalPlan, RouteError> {
    let workflow = policy
        .workflow_for(facts)
        .ok_or_else(|| RouteError::NoWorkflow {
            resource: facts.resource.id.to_string(),
            role: facts.role.id.to_string(),
        })?;
    if workflow.auto_approve && extra_stages.is_empty() {
        return Ok(ApprovalPlan {
            workflow: workflow.id.clone(),
            auto_approved: true,
            stages: Vec::new(),
        });
    }
    let stages = workflow
        .stages
        .iter()
        .chain(extra_stages)
        .map(|spec| plan_stage(spec, facts, directory))
        .collect();
    let mut plan = ApprovalPlan {
        workflow: workflow.id.clone(),
        auto_approved: false,
        stages,
    };
    make_reachable(&mut plan, 0, policy.defaults.distinct_approvers)?;
    Ok(plan)
}

/// One stage resolved to people. Stage specs that are not the workflow's, such as the
/// post-hoc review of emergency access, are planned the same way.
pub fn plan_stage(
    spec: &StageSpec,
    facts: &RequestFacts<'_>,
    directory: &Directory,
) -> PlannedStage {
    let approvers = resolve_all(&spec.approvers, facts.requester, facts.resource, directory);
    let escalate_to = resolve_all(
        &spec.escalate_to,
        facts.requester,
        facts.resource,
        directory,
    );
    let quorum = match spec.quorum {
        Quorum::Count(n) => n,
        Quorum::All => approvers.len().max(1),
    };
    PlannedStage {
        name: spec.name.clone(),
        approvers,
        quorum,
        escalate_to,
        escalated: false,
        approvals: Vec::new(),
    }
}

/// Escalates the stages from `from` on that cannot otherwise reach their quorum;
/// fails when even escalation does not help. A plan that passes is always completable.
pub fn make_reachable(
    plan: &mut ApprovalPlan,
    from: usize,
    distinct: bool,
) -> Result<(), RouteError> {
    loop {
        match first_unreachable(plan, from, distinct) {
            None => return Ok(()),
            Some(i) => {
                let stage = &mut plan.stages[i];
                if stage.escalated || !stage.escalate() {
                    return Err(RouteError::Unreachable {
                        stage: stage.name.clone(),
                        needed: stage.quorum,
                        who: describe_people(&stage.approvers),
                    });
                }
            }
        }
    }
}

fn describe_people(people: &BTreeSet<PersonId>) -> String {
    if people.is_empty() {
        "nobody".to_owned()
    } else {
        people
            .iter()
            .map(PersonId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first stage (from `from`) that cannot get its remaining approvals, given who has
/// already approved which stage. With distinct approvers this is a matching problem:
/// every missing approval needs its own person, and a person fills one stage only.
pub fn first_unreachable(plan: &ApprovalPlan, from: usize, distinct: bool) -> Option<usize> {
    if !distinct {
        return plan
            .stages
            .iter()
            .enumerate()
            .skip(from)
            .find_map(|(i, stage)| {
                let others = stage
                    .approvers
                    .iter()
                    .filter(|p| !stage.has_approved(p))
                    .count();
                (stage.approvals.len() + others < stage.quorum).then_some(i)
            });
    }
    let used: BTreeSet<&PersonId> = plan
        .stages
        .iter()
        .flat_map(|s| s.approvals.iter().map(|a| &a.by))
        .collect();
    // Slots: one per missing approval, stage by stage; grow the matching stage by stage
    // so the first stage that does not fit is the one to blame.
    let mut owner_of: BTreeMap<&PersonId, usize> = BTreeMap::new();
    let mut slots: Vec<Vec<&PersonId>> = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate().skip(from) {
        let missing = stage.quorum.saturating_sub(stage.approvals.len());
        let candidates: Vec<&PersonId> = stage
            .approvers
            .iter()
            .filter(|p| !used.contains(p))
            .collect();
        for _ in 0..missing {
            slots.push(candidates.clone());
            let slot = slots.len() - 1;
            let mut visited = BTreeSet::new();
            if !augment(slot, &slots, &mut owner_of, &mut visited) {
                return Some(i);
            }
        }
    }
    None
}

fn augment<'p>(
    slot: usize,
    slots: &[Vec<&'p PersonId>],
    owner_of: &mut BTreeMap<&'p PersonId, usize>,
    visited: &mut BTreeSet<&'p PersonId>,
) -> bool {
    for &person in &slots[slot] {
        if !visited.insert(person) {
            continue;
        }
        let free = match owner_of.get(person) {
            None => true,
            Some(&other) => augment(other, slots, owner_of, visited),
        };
        if free {
            owner_of.insert(person, slot);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::duration::Duration;
    use crate::domain::ids::{ResourceId, RoleId};
    use crate::domain::policy::RequestType;
    use crate::domain::policy::tests::{example_directory, example_policy};

    fn plan_for(
        who: &str,
        resource: &str,
        role: &str,
        hours: u64,
    ) -> Result<ApprovalPlan, RouteError> {
        let policy = example_policy();
        let directory = example_directory();
        let person = directory.person(&who.into()).unwrap();
        let resource = policy.resource(&ResourceId::new(resource)).unwrap();
        let role = resource.role(&RoleId::new(role)).unwrap();
        let facts = RequestFacts {
            requester: person,
            resource,
            role,
            duration: Some(Duration::from_hours(hours)),
            request_type: RequestType::Temporary,
        };
        route(&policy, &directory, &facts, &[])
    }

    fn people(stage: &PlannedStage) -> Vec<&str> {
        stage.approvers.iter().map(PersonId::as_str).collect()
    }

    #[test]
    fn the_first_matching_workflow_names_the_people_of_each_stage() {
        let plan = plan_for("alice", "prod-db", "admin", 2).unwrap();
        assert_eq!(plan.workflow.as_str(), "privileged");
        assert_eq!(people(&plan.stages[0]), ["bob"]);
        assert_eq!(people(&plan.stages[1]), ["carol", "dora"]);
        assert_eq!(people(&plan.stages[2]), ["sam", "sid", "sue"]);
        assert_eq!(plan.stages[2].quorum, 2);
    }

    #[test]
    fn skip_level_managers_are_found_up_the_chain() {
        let plan = plan_for("alice", "prod-db", "read", 6).unwrap();
        assert_eq!(plan.workflow.as_str(), "long-high-risk");
        assert_eq!(people(&plan.stages[0]), ["bob"]);
        assert_eq!(people(&plan.stages[1]), ["erin"]);
    }

    #[test]
    fn an_owner_asking_is_not_among_the_owners_who_approve() {
        let plan = plan_for("carol", "prod-db", "read", 1).unwrap();
        assert_eq!(people(&plan.stages[1]), ["dora"]);
    }

    #[test]
    fn a_stage_only_reachable_through_someone_already_needed_escalates() {
        // finn's manager fay is also payments' only owner: one person, one stage.
        let plan = plan_for("finn", "payments", "submitter", 2).unwrap();
        assert!(plan.stages[1].escalated);
        assert_eq!(people(&plan.stages[1]), ["erin", "fay"]);
    }

    #[test]
    fn a_request_nobody_can_approve_is_refused_with_the_reason() {
        // fay asks for payments: she is its only owner and payments has no workflow fallback
        // but erin, and erin is also fay's manager, so the owner stage cannot be completed.
        let err = plan_for("fay", "payments", "submitter", 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nobody can complete the stage \"Owner approval\": it needs 1 approval(s), and its possible approvers (erin) are too few once the requester and the approvers of other stages are left out; ask the IAM team to add approvers or an escalate_to"
        );
    }

    #[test]
    fn matching_finds_an_assignment_when_a_greedy_one_would_not() {
        let stage = |approvers: &[&str], quorum| PlannedStage {
            name: "s".into(),
            approvers: approvers.iter().map(|p| PersonId::from(*p)).collect(),
            quorum,
            escalate_to: BTreeSet::new(),
            escalated: false,
            approvals: Vec::new(),
        };
        let plan = ApprovalPlan {
            workflow: "w".into(),
            auto_approved: false,
            stages: vec![stage(&["a", "b"], 1), stage(&["a"], 1)],
        };
        assert_eq!(first_unreachable(&plan, 0, true), None);
        let tight = ApprovalPlan {
            stages: vec![stage(&["a"], 1), stage(&["a"], 1)],
            ..plan
        };
        assert_eq!(first_unreachable(&tight, 0, true), Some(1));
        assert_eq!(first_unreachable(&tight, 0, false), None);
    }
}
