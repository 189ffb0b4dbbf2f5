//! `check` and `explain`: work on the files alone, nothing stored, no server needed.

use std::collections::BTreeSet;

use anyhow::bail;

use super::{ExplainArgs, Global};
use crate::app;
use crate::domain::directory::Directory;
use crate::domain::duration::Duration;
use crate::domain::ids::{PersonId, ResourceId, RoleId};
use crate::domain::routing::{ApprovalPlan, route};
use crate::domain::validation::{Ask, Holdings, facts_for, validate};

/// Prints warnings and a summary; an error (with every problem) when anything is wrong.
pub fn check(global: &Global) -> anyhow::Result<()> {
    let loaded = app::load(&global.config)?;
    for warning in &loaded.warnings {
        println!("{warning}");
    }
    let unanchored = loaded.config.audit.key().is_none();
    if unanchored {
        println!(
            "{}: warning: no [audit] key: the audit log is hash-chained but not anchored, so \
             someone who can write the data directory or a backup could rewrite it unseen\n  \
             help: add [audit] key = \"${{GATEHOUSE_AUDIT_KEY}}\" or key_file = \"/run/secrets/…\", \
             kept outside the data directory (docs/security.md)",
            global.config.display()
        );
    }
    // Every message template must render into what the platform accepts, overrides included.
    let templates =
        crate::chat::render::Templates::load(loaded.config.templates_path().as_deref())?;
    let problems = templates.check();
    for problem in &problems {
        println!("templates: error: {problem}");
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "{} template problem(s); fix the files under files.templates",
            problems.len()
        );
    }
    let warnings = match loaded.warnings.len() + usize::from(unanchored) {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    println!(
        "ok: {} people, {} resources, {} workflows, {} reviews, message templates render{warnings}",
        loaded.directory.people().count(),
        loaded.policy.resources.len(),
        loaded.policy.workflows.len(),
        loaded.policy.reviews.len(),
    );
    Ok(())
}

/// Prints the route a request would take, or every reason it would be refused (and then
/// exits non-zero, so that scripts can ask "could alice get this?").
pub fn explain(global: &Global, args: &ExplainArgs) -> anyhow::Result<()> {
    let loaded = app::load(&global.config)?;
    let duration = args
        .duration
        .as_deref()
        .map(str::parse::<Duration>)
        .transpose()?;
    let ask = Ask {
        requester: PersonId::new(args.person.trim()),
        resource: args.resource.clone(),
        role: args.role.clone(),
        duration,
        // Explaining is not asking: the reason does not change the route.
        justification: "explain".to_owned(),
        fields: args.fields.iter().cloned().collect(),
        emergency: false,
        extends: None,
    };
    let holdings = Holdings {
        pending: &[],
        grants: &[],
    };
    let (policy, directory) = (&loaded.policy, &loaded.directory);
    let asked = format!(
        "{} asking for {}/{} for {}",
        args.person,
        args.resource,
        args.role,
        duration.map_or("the longest allowed".to_owned(), |d| d.to_string())
    );
    match validate(&ask, policy, directory, &holdings) {
        Ok(validated) => {
            println!("{asked}");
            let length = validated
                .duration
                .map_or("standing access".to_owned(), |d| d.to_string());
            println!("duration: {length}");
            if let Some(rule) = &validated.sod_review {
                println!("segregation of duties rule `{rule}` adds a security review");
            }
            print_plan(&validated.plan, directory);
            Ok(())
        }
        Err(refusals) => {
            println!("{asked}: refused");
            for refusal in &refusals.0 {
                println!("  - {refusal}");
            }
            // Show where it would go once fixed, when the ask names real things.
            let resource = policy.resource(&ResourceId::new(args.resource.trim()));
            let role = resource.and_then(|r| r.role(&RoleId::new(args.role.trim())));
            let person = directory.active_person(&ask.requester);
            if let (Some(person), Some(resource), Some(role)) = (person, resource, role) {
                let facts = facts_for(person, resource, role, duration.or(role.max_duration));
                if let Ok(plan) = route(policy, directory, &facts, &[]) {
                    println!("once fixed, it would go:");
                    print_plan(&plan, directory);
                }
            }
            bail!(
                "the request would be refused ({} reason(s) above)",
                refusals.0.len()
            )
        }
    }
}

fn print_plan(plan: &ApprovalPlan, directory: &Directory) {
    println!("workflow: {}", plan.workflow);
    if plan.auto_approved {
        println!("  approved at once (no approval stages)");
        return;
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        println!(
            "  stage {}: {} — {} of {}",
            i + 1,
            stage.name,
            stage.quorum,
            people(&stage.approvers, directory)
        );
        if !stage.escalate_to.is_empty() {
            let label = if stage.escalated {
                "escalated to"
            } else {
                "escalates to"
            };
            println!("    {label} {}", people(&stage.escalate_to, directory));
        }
    }
}

fn people(ids: &BTreeSet<PersonId>, directory: &Directory) -> String {
    if ids.is_empty() {
        return "nobody".to_owned();
    }
    ids.iter()
        .map(|id| match directory.person(id) {
            Some(p) if !p.name.is_empty() && p.name != id.as_str() => format!("{id} ({})", p.name),
            _ => id.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
