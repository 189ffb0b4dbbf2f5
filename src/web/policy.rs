//! The Policy page, read-only: resources and their roles, workflows and their stages, and an
//! explain form that says where a request would go and why it would be refused, as
//! `gatehouse explain` does. Everyone may explain for themselves; auditors and admins for
//! anyone.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::Portal;
use crate::chat::views::{PersonView, join_names};
use crate::domain::duration::Duration;
use crate::domain::ids::PersonId;
use crate::domain::policy::{Condition, Policy, Quorum};
use crate::domain::validation::{Ask, Holdings, validate};
use crate::engine::World;

#[derive(Serialize)]
struct RoleRow {
    id: String,
    name: String,
    privileged: bool,
    risk: String,
    max_duration: String,
    standing: bool,
}

#[derive(Serialize)]
struct ResourceRow {
    id: String,
    name: String,
    kind: String,
    risk: String,
    owners: String,
    eligible: String,
    roles: Vec<RoleRow>,
}

#[derive(Serialize)]
struct WorkflowRow {
    id: String,
    when: String,
    stages: Vec<String>,
}

#[derive(Default, Deserialize, Serialize)]
pub struct Explain {
    #[serde(default)]
    person: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    duration: String,
}

#[derive(Serialize)]
struct Explained {
    asked: String,
    refusals: Vec<String>,
    workflow: String,
    stages: Vec<String>,
}

fn joined<T: std::fmt::Display>(items: &[T], none: &str) -> String {
    let names: Vec<String> = items.iter().map(ToString::to_string).collect();
    if names.is_empty() {
        none.to_owned()
    } else {
        join_names(&names)
    }
}

/// A workflow's `when`, as a sentence.
fn when_text(when: &Condition) -> String {
    let mut parts = Vec::new();
    if let Some(privileged) = when.privileged {
        parts.push(format!("privileged = {privileged}"));
    }
    if let Some(risk) = when.risk_at_least {
        parts.push(format!("risk at least {risk}"));
    }
    if let Some(risk) = when.risk_at_most {
        parts.push(format!("risk at most {risk}"));
    }
    if !when.resources.is_empty() {
        parts.push(format!("resources {}", joined(&when.resources, "")));
    }
    if !when.kinds.is_empty() {
        parts.push(format!("kinds {}", joined(&when.kinds, "")));
    }
    if !when.departments.is_empty() {
        parts.push(format!("departments {}", joined(&when.departments, "")));
    }
    if !when.groups.is_empty() {
        parts.push(format!("groups {}", joined(&when.groups, "")));
    }
    if let Some(d) = when.duration_over {
        parts.push(format!("longer than {d}"));
    }
    if let Some(d) = when.duration_at_most {
        parts.push(format!("at most {d}"));
    }
    if parts.is_empty() {
        "always".to_owned()
    } else {
        parts.join("; ")
    }
}

fn stage_text(name: &str, approvers: String, quorum: Quorum) -> String {
    let needed = match quorum {
        Quorum::Count(n) => format!("{n} of"),
        Quorum::All => "all of".to_owned(),
    };
    format!("{name}: {needed} {approvers}")
}

fn rows(policy: &Policy) -> (Vec<ResourceRow>, Vec<WorkflowRow>) {
    let resources = policy
        .resources
        .iter()
        .map(|r| ResourceRow {
            id: r.id.to_string(),
            name: r.name.clone(),
            kind: r.kind.clone(),
            risk: r.risk.to_string(),
            owners: joined(&r.owners, "nobody"),
            eligible: joined(&r.eligible, "everyone"),
            roles: r
                .roles
                .iter()
                .map(|role| RoleRow {
                    id: role.id.to_string(),
                    name: role.name.clone(),
                    privileged: role.privileged,
                    risk: r.risk_of(role).to_string(),
                    max_duration: role.max_duration(&policy.defaults).to_string(),
                    standing: role.standing,
                })
                .collect(),
        })
        .collect();
    let workflows = policy
        .workflows
        .iter()
        .map(|w| WorkflowRow {
            id: w.id.to_string(),
            when: when_text(&w.when),
            stages: match w.auto_approve {
                true => vec!["approved at once".to_owned()],
                false => w
                    .stages
                    .iter()
                    .map(|s| stage_text(&s.name, joined(&s.approvers, "nobody"), s.quorum))
                    .collect(),
            },
        })
        .collect();
    (resources, workflows)
}

fn explain(world: &World, form: &Explain, person: PersonId) -> Explained {
    let duration = form.duration.trim();
    let parsed = match duration {
        "" => Ok(None),
        text => text.parse::<Duration>().map(Some),
    };
    let asked = format!(
        "{person} asking for {}/{} for {}",
        form.resource.trim(),
        form.role.trim(),
        if duration.is_empty() {
            "the longest allowed"
        } else {
            duration
        }
    );
    let duration = match parsed {
        Ok(duration) => duration,
        Err(e) => {
            return Explained {
                asked,
                refusals: vec![e.to_string()],
                workflow: String::new(),
                stages: Vec::new(),
            };
        }
    };
    let ask = Ask {
        requester: person,
        resource: form.resource.trim().to_owned(),
        role: form.role.trim().to_owned(),
        duration,
        // Explaining is not asking: the reason does not change the route.
        justification: "explain".to_owned(),
        fields: Default::default(),
        emergency: false,
        extends: None,
    };
    let holdings = Holdings {
        pending: &[],
        grants: &[],
    };
    match validate(&ask, &world.policy, &world.directory, &holdings) {
        Ok(validated) => Explained {
            asked,
            refusals: Vec::new(),
            workflow: validated.plan.workflow.to_string(),
            stages: match validated.plan.auto_approved {
                true => vec!["approved at once".to_owned()],
                false => validated
                    .plan
                    .stages
                    .iter()
                    .map(|s| {
                        let names: Vec<String> = s
                            .approvers
                            .iter()
                            .map(|id| PersonView::new(id, &world.directory).name)
                            .collect();
                        stage_text(&s.name, join_names(&names), Quorum::Count(s.quorum))
                    })
                    .collect(),
            },
        },
        Err(refusals) => Explained {
            asked,
            refusals: refusals.0.iter().map(ToString::to_string).collect(),
            workflow: String::new(),
            stages: Vec::new(),
        },
    }
}

pub async fn policy(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(form): Query<Explain>,
) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    let world = portal.facade.world();
    let (resources, workflows) = rows(&world.policy);
    let anyone = visitor.auditor;
    let explained = (!form.resource.trim().is_empty()).then(|| {
        let person = match (anyone, form.person.trim()) {
            (true, asked) if !asked.is_empty() => PersonId::new(asked),
            _ => visitor.person.id.clone(),
        };
        explain(&world, &form, person)
    });
    let context = minijinja::context! {
        resources => minijinja::Value::from(minijinja::value::Serde(&resources)),
        workflows => minijinja::Value::from(minijinja::value::Serde(&workflows)),
        form => minijinja::Value::from(minijinja::value::Serde(&form)),
        explained => minijinja::Value::from(minijinja::value::Serde(&explained)),
        anyone => anyone,
    };
    portal.page(&visitor, "Policy", "policy", "policy.html", context)
}
