//! Validation of a new request against policy, with every reason it fails, each a sentence
//! the person can act on. A request that passes comes back with its approval plan.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::diagnostic::closest;
use super::directory::{Directory, Person};
use super::duration::Duration;
use super::grant::Grant;
use super::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use super::policy::ApproverSelector;
use super::policy::{
    Policy, Quorum, RequestFacts, RequestType, Resource, Role, SodAction, StageSpec,
};
use super::reason::{ReasonError, read_reason};
use super::request::{AccessRequest, RequestKind};
use super::routing::{ApprovalPlan, RouteError, route};

/// A request as asked, before anything is checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    pub requester: PersonId,
    pub resource: String,
    pub role: String,
    pub duration: Option<Duration>,
    pub justification: String,
    pub fields: BTreeMap<String, String>,
    pub emergency: bool,
    /// More time on this grant; `duration` is then the time to add.
    pub extends: Option<GrantId>,
}

/// One reason a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownPerson {
        id: PersonId,
    },
    Inactive {
        id: PersonId,
    },
    UnknownResource {
        given: String,
        close: Vec<String>,
    },
    UnknownRole {
        resource: ResourceId,
        given: String,
        roles: Vec<String>,
    },
    NotEligible {
        resource: ResourceId,
    },
    NoJustification,
    /// The reason given is invisible or too long.
    BadReason(ReasonError),
    TooLong {
        resource: ResourceId,
        role: RoleId,
        max: Duration,
    },
    NeedsDuration {
        resource: ResourceId,
        role: RoleId,
        max: Duration,
    },
    MissingField {
        label: String,
        hint: String,
    },
    BadField {
        label: String,
        value: String,
        pattern: String,
    },
    UnknownField {
        field: String,
        known: Vec<String>,
    },
    Duplicate {
        existing: RequestId,
    },
    AlreadyGranted {
        grant: GrantId,
        until: Option<DateTime<Utc>>,
    },
    SodConflict {
        rule: String,
        grant: GrantId,
        held: (ResourceId, RoleId),
    },
    NoEmergencyAccess,
    NotEmergencyEligible,
    NoSuchGrant {
        grant: GrantId,
    },
    NotYourGrant {
        grant: GrantId,
    },
    GrantNotLive {
        grant: GrantId,
        state: &'static str,
    },
    NoWayToApprove(RouteError),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownPerson { id } => write!(
                f,
                "Gatehouse does not know `{id}`; ask the IAM team to add you to the directory"
            ),
            Refusal::Inactive { id } => write!(
                f,
                "`{id}` is not active in the directory, so cannot ask for access"
            ),
            Refusal::UnknownResource { given, close } if close.is_empty() => {
                write!(
                    f,
                    "there is no resource `{given}`; ask your team which resource you need"
                )
            }
            Refusal::UnknownResource { given, close } => {
                write!(
                    f,
                    "there is no resource `{given}`; did you mean {}?",
                    quoted(close)
                )
            }
            Refusal::UnknownRole {
                resource,
                given,
                roles,
            } => {
                write!(
                    f,
                    "`{resource}` has no role `{given}`; its roles are {}",
                    quoted(roles)
                )
            }
            Refusal::NotEligible { resource } => write!(
                f,
                "you are not eligible to ask for {resource}; its owners can tell you who is"
            ),
            Refusal::NoJustification => {
                f.write_str("say why you need it: a justification is required")
            }
            Refusal::BadReason(e) => write!(f, "{e}"),
            Refusal::TooLong {
                resource,
                role,
                max,
            } => write!(
                f,
                "{resource}/{role} allows at most {max}; ask for {max} or less"
            ),
            Refusal::NeedsDuration {
                resource,
                role,
                max,
            } => {
                write!(
                    f,
                    "{resource}/{role} is time-bound; ask for a duration of at most {max}"
                )
            }
            Refusal::MissingField { label, hint } => write!(f, "{label} is required{hint}"),
            Refusal::BadField {
                label,
                value,
                pattern,
            } => {
                write!(f, "{label} `{value}` does not match the pattern {pattern}")
            }
            Refusal::UnknownField { field, known } if known.is_empty() => {
                write!(f, "this role takes no field `{field}`")
            }
            Refusal::UnknownField { field, known } => write!(
                f,
                "this role takes no field `{field}`; its fields are {}",
                quoted(known)
            ),
            Refusal::Duplicate { existing } => {
                write!(
                    f,
                    "you already have a pending request {existing} for this; wait for it, or cancel it with `cancel {existing}`"
                )
            }
            Refusal::AlreadyGranted {
                grant,
                until: Some(until),
            } => write!(
                f,
                "you already hold this as {grant} until {}; extend it instead with `extend {grant} 1h`",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
            Refusal::AlreadyGranted { grant, until: None } => {
                write!(f, "you already hold this as {grant}, without an end date")
            }
            Refusal::SodConflict { rule, grant, held } => write!(
                f,
                "segregation of duties rule `{rule}` forbids holding this together with {}/{} ({grant}); end {grant} first or ask someone else",
                held.0, held.1
            ),
            Refusal::NoEmergencyAccess => {
                f.write_str("the policy has no emergency access; ask for it the usual way")
            }
            Refusal::NotEmergencyEligible => {
                f.write_str("you are not eligible for emergency access; ask for it the usual way")
            }
            Refusal::NoSuchGrant { grant } => {
                write!(
                    f,
                    "there is no grant {grant}; it may be someone else's, or mistyped"
                )
            }
            Refusal::NotYourGrant { grant } => {
                write!(f, "{grant} is not yours, so you cannot extend it")
            }
            Refusal::GrantNotLive { grant, state } => {
                write!(f, "{grant} is {state}; ask for new access instead")
            }
            // The requester cannot fix the policy: say what it means for them. The
            // details (who was left out, which setting would help) are logged for admins.
            Refusal::NoWayToApprove(RouteError::NoWorkflow { resource, role }) => write!(
                f,
                "nobody is set up to approve {resource}/{role} yet, so nothing was sent; ask your IAM team to set it up (Gatehouse's log tells them what is missing)"
            ),
            Refusal::NoWayToApprove(RouteError::Unreachable { stage, needed, .. }) => write!(
                f,
                "not enough people can approve the \"{stage}\" step of this request (it needs {needed}, and you cannot approve your own), so nothing was sent; ask your IAM team to add approvers (Gatehouse's log tells them what is missing)"
            ),
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every reason a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals(pub Vec<Refusal>);

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusals {}

impl From<ReasonError> for Refusals {
    fn from(e: ReasonError) -> Self {
        Refusals(vec![Refusal::BadReason(e)])
    }
}

impl Refusals {
    /// The SoD rule that blocked the request, if one did (the security channel is told).
    pub fn sod_rule(&self) -> Option<&str> {
        self.0.iter().find_map(|r| match r {
            Refusal::SodConflict { rule, .. } => Some(rule.as_str()),
            _ => None,
        })
    }
}

/// What the person already has, for duplicate, extension and SoD checks.
pub struct Holdings<'a> {
    pub pending: &'a [AccessRequest],
    /// Their grants, live or not (an extension names one).
    pub grants: &'a [Grant],
}

/// A request that passed validation: what to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    pub resource: ResourceId,
    pub role: RoleId,
    pub duration: Option<Duration>,
    pub kind: RequestKind,
    pub plan: ApprovalPlan,
    /// The SoD rule that added a review stage, if any.
    pub sod_review: Option<String>,
}

/// Checks a request against the policy and what the person holds, and routes it.
pub fn validate(
    ask: &Ask,
    policy: &Policy,
    directory: &Directory,
    holdings: &Holdings<'_>,
) -> Result<Validated, Refusals> {
    let mut refusals = Vec::new();
    let Some(person) = directory.person(&ask.requester) else {
        return Err(Refusals(vec![Refusal::UnknownPerson {
            id: ask.requester.clone(),
        }]));
    };
    if !person.active {
        return Err(Refusals(vec![Refusal::Inactive {
            id: person.id.clone(),
        }]));
    }
    let extended = match ask.extends {
        Some(id) => match holdings.grants.iter().find(|g| g.id == id) {
            Some(g) if g.person != person.id => {
                return Err(Refusals(vec![Refusal::NotYourGrant { grant: id }]));
            }
            Some(g) if !g.is_live() => {
                return Err(Refusals(vec![Refusal::GrantNotLive {
                    grant: id,
                    state: g.state.name(),
                }]));
            }
            Some(g) => Some(g),
            None => return Err(Refusals(vec![Refusal::NoSuchGrant { grant: id }])),
        },
        None => None,
    };
    let (resource_name, role_name) = match extended {
        Some(g) => (g.resource.to_string(), g.role.to_string()),
        None => (ask.resource.trim().to_owned(), ask.role.trim().to_owned()),
    };
    let Some(resource) = policy.resource(&ResourceId::new(resource_name.as_str())) else {
        let close = closest(&resource_name, policy.resource_ids())
            .into_iter()
            .map(str::to_owned)
            .collect();
        return Err(Refusals(vec![Refusal::UnknownResource {
            given: resource_name,
            close,
        }]));
    };
    let Some(role) = resource.role(&RoleId::new(role_name.as_str())) else {
        let roles = resource.role_ids().map(str::to_owned).collect();
        return Err(Refusals(vec![Refusal::UnknownRole {
            resource: resource.id.clone(),
            given: role_name,
            roles,
        }]));
    };
    if !resource.is_eligible(person) {
        refusals.push(Refusal::NotEligible {
            resource: resource.id.clone(),
        });
    }
    match read_reason(&ask.justification) {
        Ok(justification) if justification.is_empty() => refusals.push(Refusal::NoJustification),
        Ok(_) => {}
        Err(e) => refusals.push(Refusal::BadReason(e)),
    }

    let (kind, max) = if ask.emergency {
        match &policy.emergency {
            None => return Err(Refusals(vec![Refusal::NoEmergencyAccess])),
            Some(e) if !e.eligible.is_empty() && !e.eligible.iter().any(|s| s.includes(person)) => {
                refusals.push(Refusal::NotEmergencyEligible);
                (RequestKind::Emergency, e.max_duration)
            }
            Some(e) => (
                RequestKind::Emergency,
                e.max_duration.min(role.max_duration(&policy.defaults)),
            ),
        }
    } else if let Some(g) = extended {
        (
            RequestKind::Extension { grant: g.id },
            role.max_duration(&policy.defaults),
        )
    } else {
        (RequestKind::Access, role.max_duration(&policy.defaults))
    };
    // Emergency access always ends; standing access only where the role allows it.
    let duration = match ask.duration {
        Some(d) if d > max => {
            refusals.push(Refusal::TooLong {
                resource: resource.id.clone(),
                role: role.id.clone(),
                max,
            });
            Some(d)
        }
        Some(d) if d == Duration::ZERO => {
            refusals.push(Refusal::NeedsDuration {
                resource: resource.id.clone(),
                role: role.id.clone(),
                max,
            });
            Some(d)
        }
        Some(d) => Some(d),
        None if role.standing && !ask.emergency && extended.is_none() => None,
        None => Some(max),
    };
    check_fields(ask, policy, role, &mut refusals);

    if extended.is_none() {
        if let Some(existing) = holdings.pending.iter().find(|r| {
            r.is_pending()
                && r.resource == resource.id
                && r.role == role.id
                && r.requester == person.id
        }) {
            refusals.push(Refusal::Duplicate {
                existing: existing.id,
            });
        }
        if let Some(g) = holdings
            .grants
            .iter()
            .find(|g| g.is_live() && g.resource == resource.id && g.role == role.id)
        {
            refusals.push(Refusal::AlreadyGranted {
                grant: g.id,
                until: g.expires_at,
            });
        }
    }
    let sod_review = check_sod(policy, resource, role, holdings, &mut refusals);
    if !refusals.is_empty() {
        return Err(Refusals(refusals));
    }

    let request_type = match kind {
        RequestKind::Emergency => RequestType::Emergency,
        RequestKind::Extension { .. } => RequestType::Extension,
        RequestKind::Access if duration.is_none() => RequestType::Standard,
        RequestKind::Access => RequestType::Temporary,
    };
    let facts = RequestFacts {
        requester: person,
        resource,
        role,
        duration,
        request_type,
    };
    let plan = if ask.emergency {
        // Granted at once; the post-hoc review is planned on the grant.
        ApprovalPlan {
            workflow: "emergency".into(),
            auto_approved: true,
            stages: Vec::new(),
        }
    } else {
        let extra: Vec<StageSpec> = sod_review.iter().map(|_| security_review_stage()).collect();
        route(policy, directory, &facts, &extra)
            .map_err(|e| Refusals(vec![Refusal::NoWayToApprove(e)]))?
    };
    Ok(Validated {
        resource: resource.id.clone(),
        role: role.id.clone(),
        duration,
        kind,
        plan,
        sod_review,
    })
}

fn check_fields(ask: &Ask, policy: &Policy, role: &Role, refusals: &mut Vec<Refusal>) {
    let template = role.template.as_ref().and_then(|t| policy.template(t));
    let fields = template.map(|t| t.fields.as_slice()).unwrap_or_default();
    for field in fields {
        let value = ask
            .fields
            .get(&field.id)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        match (value, &field.pattern) {
            (None, pattern) if field.required => refusals.push(Refusal::MissingField {
                label: field.label.clone(),
                hint: pattern
                    .as_ref()
                    .map(|p| format!("; it must match {}", p.as_str()))
                    .unwrap_or_default(),
            }),
            (Some(v), Some(pattern)) if !pattern.is_match(v) => refusals.push(Refusal::BadField {
                label: field.label.clone(),
                value: v.to_owned(),
                pattern: pattern.as_str().to_owned(),
            }),
            _ => {}
        }
    }
    for given in ask.fields.keys() {
        if !fields.iter().any(|f| &f.id == given) {
            refusals.push(Refusal::UnknownField {
                field: given.clone(),
                known: fields.iter().map(|f| f.id.clone()).collect(),
            });
        }
    }
}

/// Blocks on a `block` rule; returns the `review` rule that adds a security stage.
fn check_sod(
    policy: &Policy,
    resource: &Resource,
    role: &Role,
    holdings: &Holdings<'_>,
    refusals: &mut Vec<Refusal>,
) -> Option<String> {
    let asked = (resource.id.clone(), role.id.clone());
    let mut review = None;
    for rule in &policy.sod {
        if !rule.roles.contains(&asked) {
            continue;
        }
        let conflict = holdings.grants.iter().find(|g| {
            let held = (g.resource.clone(), g.role.clone());
            g.is_live() && held != asked && rule.roles.contains(&held)
        });
        if let Some(g) = conflict {
            match rule.action {
                SodAction::Block => refusals.push(Refusal::SodConflict {
                    rule: rule.id.clone(),
                    grant: g.id,
                    held: (g.resource.clone(), g.role.clone()),
                }),
                SodAction::Review => review = Some(rule.id.clone()),
            }
        }
    }
    review
}

/// The extra stage an SoD `review` rule adds.
pub fn security_review_stage() -> StageSpec {
    StageSpec {
        name: "Security review (segregation of duties)".to_owned(),
        approvers: vec![ApproverSelector::Group("security".into())],
        quorum: Quorum::Count(1),
        escalate_to: Vec::new(),
    }
}

/// Used by tests and `explain`: the facts of an ask about a known person.
pub fn facts_for<'a>(
    person: &'a Person,
    resource: &'a Resource,
    role: &'a Role,
    duration: Option<Duration>,
) -> RequestFacts<'a> {
    let request_type = if duration.is_none() {
        RequestType::Standard
    } else {
        RequestType::Temporary
    };
    RequestFacts {
        requester: person,
        resource,
        role,
        duration,
        request_type,
    }
}
