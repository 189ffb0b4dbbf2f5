//! Checking workflows: conditions that can never match, stages nobody can complete.

use std::collections::BTreeSet;
use std::ops::Range;

use toml::Spanned;

use super::parse::Compiler;
use super::raw::{OneOrMany, RawCondition, RawQuorum, RawStage, RawWorkflow};
use super::*;
use crate::domain::diagnostic::did_you_mean;
use crate::domain::ids::GroupId;

impl Compiler<'_, '_> {
    pub(super) fn workflows(&mut self, raw: Vec<RawWorkflow>, policy: &Policy) -> Vec<Workflow> {
        let mut seen = BTreeSet::new();
        let mut workflows: Vec<Workflow> = Vec::new();
        for w in raw {
            let Some(id) = self.unique_id(&w.id, "workflow", &mut seen) else {
                continue;
            };
            let when_span = w
                .when
                .as_ref()
                .map(|c| c.span())
                .unwrap_or_else(|| w.id.span());
            let when = w
                .when
                .map(|c| self.condition(c.into_inner(), when_span.clone(), policy))
                .unwrap_or_default();
            if let Some(catch_all) = workflows.iter().find(|earlier| earlier.when.is_always()) {
                self.error(
                    Some(w.id.span()),
                    format!(
                        "workflow `{id}` can never match: `{}` before it matches every request",
                        catch_all.id
                    ),
                    Some(
                        "workflows are tried in order; move the catch-all workflow last".to_owned(),
                    ),
                );
            } else if let Some(why) = when.contradiction() {
                self.error(
                    Some(when_span.clone()),
                    format!("workflow `{id}` can never match: {why}"),
                    None,
                );
            } else if !policy
                .resources
                .iter()
                .any(|r| r.roles.iter().any(|role| when.matches_role(r, role)))
            {
                self.error(
                    Some(when_span.clone()),
                    format!("workflow `{id}` can never match: no role of any resource satisfies its `when`"),
                    Some("check privileged, risk_at_least, risk_at_most, resources and kinds against [[resources]]".to_owned()),
                );
            }
            match (w.auto_approve, w.stages.is_empty()) {
                (true, false) => self.error(Some(w.id.span()), format!("workflow `{id}` has auto_approve = true and stages"), Some("an auto-approved workflow has no stages: remove one of the two".to_owned())),
                (false, true) => self.error(Some(w.id.span()), format!("workflow `{id}` has no stages, so nobody could approve it"), Some("add stages = [{ approvers = [\"manager\"], quorum = 1 }], or set auto_approve = true".to_owned())),
                _ => {}
            }
            let stages = w
                .stages
                .into_iter()
                .enumerate()
                .filter_map(|(i, stage)| self.stage(&id, i, stage))
                .collect();
            workflows.push(Workflow {
                id: WorkflowId::new(id),
                when,
                auto_approve: w.auto_approve,
                stages,
            });
        }
        if !workflows.is_empty() {
            for resource in &policy.resources {
                for role in &resource.roles {
                    if !workflows
                        .iter()
                        .any(|w| w.when.matches_role(resource, role))
                    {
                        self.warn(
                            None,
                            format!(
                                "no workflow matches `{}/{}`; every request for it will be refused",
                                resource.id, role.id
                            ),
                            "add a catch-all workflow (no `when`) at the end".to_owned(),
                        );
                    }
                }
            }
        }
        workflows
    }

    fn stage(&mut self, workflow: &str, index: usize, raw: Spanned<RawStage>) -> Option<StageSpec> {
        let span = raw.span();
        let raw = raw.into_inner();
        let number = index + 1;
        let approvers: Vec<ApproverSelector> = raw
            .approvers
            .iter()
            .filter_map(|a| self.selector(a, span.clone()))
            .collect();
        let escalate_to: Vec<ApproverSelector> = raw
            .escalate_to
            .iter()
            .filter_map(|a| self.selector(a, span.clone()))
            .collect();
        if raw.approvers.is_empty() {
            self.error(
                Some(span.clone()),
                format!("stage {number} of workflow `{workflow}` names no approvers"),
                Some("write approvers = [\"manager\"], [\"owners\"] or [\"group:ID\"]".to_owned()),
            );
        }
        let quorum = match raw.quorum {
            None => Quorum::Count(1),
            Some(RawQuorum::Count(n)) if n >= 1 => {
                Quorum::Count(usize::try_from(n).unwrap_or(usize::MAX))
            }
            Some(RawQuorum::Word(w)) if w == "all" => Quorum::All,
            Some(_) => {
                self.error(Some(span.clone()), format!("stage {number} of workflow `{workflow}` has a quorum that is not a positive number or \"all\""), Some("write quorum = 1, quorum = 2 or quorum = \"all\"".to_owned()));
                return None;
            }
        };
        // People named outright (groups and persons) bound the quorum from above.
        let fixed_only = approvers
            .iter()
            .all(|a| matches!(a, ApproverSelector::Group(_) | ApproverSelector::Person(_)));
        if let (true, Quorum::Count(needed)) = (fixed_only, quorum) {
            let people = self.fixed_people(&approvers);
            if people.len() < needed {
                self.error(
                    Some(span.clone()),
                    format!("stage {number} of workflow `{workflow}` needs {needed} approvals but only {} active people can give them", people.len()),
                    Some("lower the quorum or add approvers".to_owned()),
                );
            } else if people.len() == needed && escalate_to.is_empty() {
                self.warn(
                    Some(span.clone()),
                    format!("stage {number} of workflow `{workflow}` needs every one of its {needed} approvers; when one of them is the requester, nobody can complete it"),
                    "add escalate_to = [\"group:…\"] so such requests still have approvers".to_owned(),
                );
            }
        }
        let name = raw.name.unwrap_or_else(|| default_stage_name(&approvers));
        Some(StageSpec {
            name,
            approvers,
            quorum,
            escalate_to,
        })
    }

    fn fixed_people(&self, selectors: &[ApproverSelector]) -> BTreeSet<&str> {
        let directory = self.cx.directory;
        selectors
            .iter()
            .flat_map(|s| -> Vec<&str> {
                match s {
                    ApproverSelector::Group(g) => {
                        directory.members(g).map(|p| p.id.as_str()).collect()
                    }
                    ApproverSelector::Person(p) => directory
                        .active_person(p)
                        .map(|p| p.id.as_str())
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                }
            })
            .collect()
    }

    pub(super) fn condition(
        &mut self,
        raw: RawCondition,
        span: Range<usize>,
        policy: &Policy,
    ) -> Condition {
        let directory = self.cx.directory;
        for r in &raw.resources {
            if policy.resource(&ResourceId::new(r.as_str())).is_none() {
                let help = did_you_mean(r, policy.resource_ids());
                self.error(
                    Some(span.clone()),
                    format!("`when` names resource `{r}`, which is not defined"),
                    help,
                );
            }
        }
        for g in &raw.groups {
            if !directory.group_exists(&GroupId::new(g.as_str())) {
                let help = did_you_mean(g, directory.group_ids());
                self.error(
                    Some(span.clone()),
                    format!("`when` names group `{g}`, which the directory does not have"),
                    help,
                );
            }
        }
        if !raw.departments.is_empty() {
            let known = directory.departments();
            let unknown: Vec<&String> = raw
                .departments
                .iter()
                .filter(|d| !known.iter().any(|k| k.eq_ignore_ascii_case(d)))
                .collect();
            if unknown.len() == raw.departments.len() {
                let help = did_you_mean(unknown[0], known.iter().copied());
                self.error(Some(span.clone()), format!("`when` names departments {unknown:?}, which nobody in the directory belongs to, so it can never match"), help);
            }
        }
        Condition {
            privileged: raw.privileged,
            risk_at_least: raw.risk_at_least,
            risk_at_most: raw.risk_at_most,
            resources: raw.resources.into_iter().map(ResourceId::new).collect(),
            kinds: raw.kinds,
            departments: raw.departments,
            groups: raw.groups.into_iter().map(GroupId::new).collect(),
            duration_over: raw.duration_over,
            duration_at_most: raw.duration_at_most,
            request_types: match raw.request_type {
                None => Vec::new(),
                Some(OneOrMany::One(t)) => vec![t],
                Some(OneOrMany::Many(ts)) => ts,
            },
        }
    }
}

/// "Manager approval", "Security review": what a stage is called when the policy does not say.
fn default_stage_name(approvers: &[ApproverSelector]) -> String {
    match approvers.first() {
        Some(ApproverSelector::Manager { level: 1 }) => "Manager approval".to_owned(),
        Some(ApproverSelector::Manager { .. }) => "Skip-level manager approval".to_owned(),
        Some(ApproverSelector::Owners) => "Owner approval".to_owned(),
        Some(ApproverSelector::Group(g)) => {
            let mut name: Vec<char> = g.as_str().replace(['-', '_'], " ").chars().collect();
            if let Some(first) = name.first_mut() {
                *first = first.to_ascii_uppercase();
            }
            format!("{} review", name.into_iter().collect::<String>())
        }
        Some(ApproverSelector::Person(p)) => format!("Approval by {p}"),
        None => "Approval".to_owned(),
    }
}
