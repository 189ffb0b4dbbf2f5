//! policy.toml → `Policy`, with every problem reported at its line and a way to fix it.

use std::collections::BTreeSet;
use std::ops::Range;

use super::raw::*;
use chrono::{DateTime, Utc};
use regex::Regex;
use toml::Spanned;

use super::selector::{ApproverSelector, Subject};
use super::*;
use crate::domain::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::domain::directory::Directory;
use crate::domain::ids::GroupId;

/// What a policy is checked against besides itself.
pub struct PolicyContext<'a> {
    pub directory: &'a Directory,
    /// The connectors of gatehouse.toml, when known; `None` skips that check.
    pub connectors: Option<&'a [ConnectorId]>,
    /// Cron schedules must fire after this moment.
    pub now: DateTime<Utc>,
}

/// A policy that loaded, and the warnings worth reading.
pub type Checked = (Policy, Vec<Diagnostic>);

/// Every table policy.toml may hold and the keys each accepts, read from the types that
/// parse it (see [`crate::domain::keys`]); docs/configuration.md is checked against it.
pub fn accepted_tables() -> Vec<crate::domain::keys::Table> {
    crate::domain::keys::tables_of::<super::raw::RawPolicy>()
}

/// Reads and checks policy.toml. Errors refuse the policy; warnings come back with it.
pub fn parse_policy(source: &Source<'_>, cx: &PolicyContext<'_>) -> Result<Checked, Diagnostics> {
    let raw: RawPolicy =
        toml::from_str(source.text).map_err(|e| Diagnostics(vec![source.toml_error(&e)]))?;
    let mut c = Compiler {
        source,
        cx,
        problems: Vec::new(),
    };
    let policy = c.compile(raw);
    let (errors, warnings): (Vec<_>, Vec<_>) =
        c.problems.into_iter().partition(Diagnostic::is_error);
    if errors.is_empty() {
        Ok((policy, warnings))
    } else {
        Err(Diagnostics(errors))
    }
}

pub(super) struct Compiler<'s, 'c> {
    pub(super) source: &'s Source<'s>,
    pub(super) cx: &'c PolicyContext<'c>,
    pub(super) problems: Vec<Diagnostic>,
}

impl Compiler<'_, '_> {
    pub(super) fn error(
        &mut self,
        span: Option<Range<usize>>,
        message: String,
        help: Option<String>,
    ) {
        let mut d = Diagnostic::error(self.source, span, message);
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.problems.push(d);
    }

    pub(super) fn warn(&mut self, span: Option<Range<usize>>, message: String, help: String) {
        self.problems
            .push(Diagnostic::warning(self.source, span, message).with_help(help));
    }

    fn compile(&mut self, raw: RawPolicy) -> Policy {
        let defaults = self.defaults(raw.defaults);
        let templates = self.templates(raw.templates);
        let mut policy = Policy {
            defaults,
            templates,
            resources: Vec::new(),
            workflows: Vec::new(),
            sod: Vec::new(),
            emergency: None,
            reviews: Vec::new(),
            bundles: Vec::new(),
        };
        policy.resources = self.resources(raw.resources, &policy);
        policy.workflows = self.workflows(raw.workflows, &policy);
        policy.sod = self.sod_rules(raw.sod, &policy);
        policy.emergency = raw.emergency.map(|e| self.emergency(e));
        policy.reviews = self.reviews(raw.reviews, &policy);
        policy.bundles = self.bundles(raw.bundles, &policy);
        policy
    }

    fn defaults(&mut self, raw: RawDefaults) -> Defaults {
        let admins = raw
            .admins
            .iter()
            .filter_map(|s| self.subject(s.get_ref(), Some(s.span())))
            .collect();
        let auditors = raw
            .auditors
            .iter()
            .filter_map(|s| self.subject(s.get_ref(), Some(s.span())))
            .collect();
        Defaults {
            pending_ttl: raw.pending_ttl.unwrap_or(Duration::from_hours(24)),
            remind_every: raw.remind_every.unwrap_or(Duration::from_hours(4)),
            escalate_after: raw.escalate_after.unwrap_or(Duration::from_hours(8)),
            max_duration: raw.max_duration.unwrap_or(Duration::from_hours(8)),
            distinct_approvers: raw.distinct_approvers.unwrap_or(true),
            admins,
            auditors,
            on_mover: raw.on_mover.unwrap_or_default(),
        }
    }

    /// An id that must be unique among `seen`.
    pub(super) fn unique_id(
        &mut self,
        id: &Spanned<String>,
        what: &str,
        seen: &mut BTreeSet<String>,
    ) -> Option<String> {
        let text = id.get_ref().trim().to_owned();
        if text.is_empty() {
            self.error(Some(id.span()), format!("a {what} has an empty id"), None);
            return None;
        }
        if !seen.insert(text.clone()) {
            self.error(
                Some(id.span()),
                format!("{what} `{text}` is defined twice"),
                Some(format!("give each {what} its own id")),
            );
            return None;
        }
        Some(text)
    }

    fn templates(&mut self, raw: Vec<RawTemplate>) -> BTreeMap<TemplateId, RequestTemplate> {
        let mut seen = BTreeSet::new();
        let mut templates = BTreeMap::new();
        for t in raw {
            let Some(id) = self.unique_id(&t.id, "template", &mut seen) else {
                continue;
            };
            let mut field_ids = BTreeSet::new();
            let mut fields = Vec::new();
            for f in t.fields {
                let Some(field_id) = self.unique_id(&f.id, "field", &mut field_ids) else {
                    continue;
                };
                let pattern = f.pattern.and_then(|p| match Regex::new(p.get_ref()) {
                    Ok(regex) => Some(regex),
                    Err(e) => {
                        self.error(
                            Some(p.span()),
                            format!("the pattern of field `{field_id}` is not a valid regular expression: {e}"),
                            Some("patterns use Rust regex syntax, e.g. \"^(INC|CHG)-[0-9]+$\"".to_owned()),
                        );
                        None
                    }
                });
                fields.push(TemplateField {
                    label: f.label.unwrap_or_else(|| field_id.clone()),
                    id: field_id,
                    pattern,
                    required: f.required,
                });
            }
            templates.insert(
                TemplateId::new(&id),
                RequestTemplate {
                    id: TemplateId::new(id),
                    fields,
                },
            );
        }
        templates
    }

    fn resources(&mut self, raw: Vec<RawResource>, policy: &Policy) -> Vec<Resource> {
        let mut seen = BTreeSet::new();
        let mut resources = Vec::new();
        for r in raw {
            let Some(id) = self.unique_id(&r.id, "resource", &mut seen) else {
                continue;
            };
            let owners: Vec<Subject> = r
                .owners
                .iter()
                .filter_map(|s| self.subject(s.get_ref(), Some(s.span())))
                .collect();
            let eligible = r
                .eligible
                .iter()
                .filter_map(|s| self.subject(s.get_ref(), Some(s.span())))
                .collect();
            if let (Some(connector), Some(known)) = (&r.connector, self.cx.connectors)
                && !known.iter().any(|k| k.as_str() == connector.get_ref())
            {
                let help = did_you_mean(connector.get_ref(), known.iter().map(ConnectorId::as_str))
                    .unwrap_or_else(|| "declare it as [[connectors]] in gatehouse.toml".to_owned());
                self.error(Some(connector.span()), format!("resource `{id}` uses connector `{}`, which gatehouse.toml does not declare", connector.get_ref()), Some(help));
            }
            if r.roles.is_empty() {
                self.error(
                    Some(r.id.span()),
                    format!("resource `{id}` has no roles"),
                    Some("add at least one [[resources.roles]] with an id".to_owned()),
                );
            }
            let mut role_ids = BTreeSet::new();
            let mut roles = Vec::new();
            for role in r.roles {
                let Some(role_id) = self.unique_id(&role.id, "role", &mut role_ids) else {
                    continue;
                };
                let template = role
                    .template
                    .as_ref()
                    .map(|t| TemplateId::new(t.get_ref().trim()));
                if let (Some(t), Some(spanned)) = (&template, &role.template)
                    && !policy.templates.contains_key(t)
                {
                    let help =
                        did_you_mean(t.as_str(), policy.templates.keys().map(TemplateId::as_str));
                    self.error(
                        Some(spanned.span()),
                        format!("role `{id}/{role_id}` uses template `{t}`, which is not defined"),
                        help,
                    );
                }
                if role.max_duration == Some(Duration::ZERO) {
                    self.error(Some(role.id.span()), format!("role `{id}/{role_id}` has max_duration = \"0s\", so nobody could ever hold it"), Some("give a duration like \"2h\", or remove the role".to_owned()));
                }
                roles.push(Role {
                    name: role.name.unwrap_or_else(|| role_id.clone()),
                    id: RoleId::new(role_id),
                    privileged: role.privileged,
                    risk: role.risk,
                    max_duration: role.max_duration,
                    template,
                    standing: role.standing,
                });
            }
            resources.push(Resource {
                name: r.name.unwrap_or_else(|| id.clone()),
                id: ResourceId::new(id),
                kind: r.kind,
                owners,
                risk: r.risk,
                connector: r.connector.map(|c| ConnectorId::new(c.into_inner())),
                eligible,
                roles,
            });
        }
        resources
    }

    fn sod_rules(&mut self, raw: Vec<RawSod>, policy: &Policy) -> Vec<SodRule> {
        let mut seen = BTreeSet::new();
        let mut rules = Vec::new();
        for rule in raw {
            let Some(id) = self.unique_id(&rule.id, "SoD rule", &mut seen) else {
                continue;
            };
            if rule.roles.len() < 2 {
                self.error(Some(rule.id.span()), format!("SoD rule `{id}` lists fewer than two roles"), Some("write roles = [[\"payments\", \"submitter\"], [\"payments\", \"approver\"]]".to_owned()));
            }
            let roles = rule
                .roles
                .into_iter()
                .filter(|(resource, role)| {
                    self.role_exists(
                        policy,
                        resource,
                        role,
                        rule.id.span(),
                        &format!("SoD rule `{id}`"),
                    )
                })
                .map(|(resource, role)| (ResourceId::new(resource), RoleId::new(role)))
                .collect();
            rules.push(SodRule {
                id,
                roles,
                action: rule.action,
            });
        }
        rules
    }

    pub(super) fn role_exists(
        &mut self,
        policy: &Policy,
        resource: &str,
        role: &str,
        span: Range<usize>,
        owner: &str,
    ) -> bool {
        let Some(r) = policy.resource(&ResourceId::new(resource)) else {
            let help = did_you_mean(resource, policy.resource_ids());
            self.error(
                Some(span),
                format!("{owner} names resource `{resource}`, which is not defined"),
                help,
            );
            return false;
        };
        if r.role(&RoleId::new(role)).is_none() {
            let help = did_you_mean(role, r.role_ids());
            self.error(
                Some(span),
                format!("{owner} names role `{resource}/{role}`, which is not defined"),
                help,
            );
            return false;
        }
        true
    }

    fn emergency(&mut self, raw: Spanned<RawEmergency>) -> EmergencyPolicy {
        let span = raw.span();
        let raw = raw.into_inner();
        let eligible = raw
            .eligible
            .iter()
            .filter_map(|s| self.subject(s, Some(span.clone())))
            .collect();
        let reviewers: Vec<ApproverSelector> = raw
            .reviewers
            .iter()
            .filter_map(|s| self.selector(s, span.clone()))
            .collect();
        if raw.reviewers.is_empty() {
            self.error(
                Some(span.clone()),
                "[emergency] has no reviewers, so break-glass access would never be reviewed"
                    .to_owned(),
                Some("write reviewers = [\"group:security\"]".to_owned()),
            );
        }
        EmergencyPolicy {
            eligible,
            max_duration: raw.max_duration,
            reviewers,
            review_within: raw.review_within,
        }
    }

    fn reviews(&mut self, raw: Vec<RawReview>, policy: &Policy) -> Vec<ReviewCampaign> {
        let mut seen = BTreeSet::new();
        let mut reviews = Vec::new();
        for r in raw {
            let Some(id) = self.unique_id(&r.id, "review", &mut seen) else {
                continue;
            };
            let schedule = match r.schedule.get_ref().parse::<cron::Schedule>() {
                Ok(schedule) => schedule,
                Err(e) => {
                    self.error(
                        Some(r.schedule.span()),
                        format!("review `{id}` has a schedule that is not a cron line: {e}"),
                        Some(CRON_HELP.to_owned()),
                    );
                    continue;
                }
            };
            if schedule.after(&self.cx.now).next().is_none() {
                self.error(
                    Some(r.schedule.span()),
                    format!(
                        "review `{id}` has a schedule that never fires: `{}`",
                        r.schedule.get_ref()
                    ),
                    Some(CRON_HELP.to_owned()),
                );
            }
            for resource in &r.resources {
                if policy
                    .resource(&ResourceId::new(resource.as_str()))
                    .is_none()
                {
                    let help = did_you_mean(resource, policy.resource_ids());
                    self.error(
                        Some(r.id.span()),
                        format!("review `{id}` names resource `{resource}`, which is not defined"),
                        help,
                    );
                }
            }
            let reviewers: Vec<ApproverSelector> = r
                .reviewers
                .iter()
                .filter_map(|s| self.selector(s, r.id.span()))
                .collect();
            reviews.push(ReviewCampaign {
                id,
                schedule,
                resources: r.resources.into_iter().map(ResourceId::new).collect(),
                reviewers,
                deadline: r.deadline,
                on_timeout: r.on_timeout,
            });
        }
        reviews
    }

    fn bundles(&mut self, raw: Vec<RawBundle>, policy: &Policy) -> Vec<Bundle> {
        let mut seen = BTreeSet::new();
        let mut bundles = Vec::new();
        for b in raw {
            let Some(id) = self.unique_id(&b.id, "bundle", &mut seen) else {
                continue;
            };
            let span = b
                .when
                .as_ref()
                .map(|w| w.span())
                .unwrap_or_else(|| b.id.span());
            let when = b
                .when
                .map(|w| self.condition(w.into_inner(), span.clone(), policy))
                .unwrap_or_default();
            if when.departments.is_empty() && when.groups.is_empty()
                || when.privileged.is_some()
                || when.risk_at_least.is_some()
                || when.risk_at_most.is_some()
                || !when.resources.is_empty()
                || !when.kinds.is_empty()
                || when.duration_over.is_some()
                || when.duration_at_most.is_some()
                || !when.request_types.is_empty()
            {
                self.error(Some(span), format!("bundle `{id}` must choose people by departments or groups, and by nothing else"), Some("write when = { departments = [\"engineering\"] }".to_owned()));
            }
            let grants = b
                .grants
                .into_iter()
                .filter(|g| {
                    self.role_exists(
                        policy,
                        &g.resource,
                        &g.role,
                        b.id.span(),
                        &format!("bundle `{id}`"),
                    )
                })
                .map(|g| (ResourceId::new(g.resource), RoleId::new(g.role)))
                .collect();
            bundles.push(Bundle { id, when, grants });
        }
        bundles
    }

    pub(super) fn subject(&mut self, text: &str, span: Option<Range<usize>>) -> Option<Subject> {
        match Subject::parse(text) {
            Ok(subject) => {
                self.check_names(&subject_names(&subject), span);
                Some(subject)
            }
            Err(message) => {
                self.error(span, message, None);
                None
            }
        }
    }

    pub(super) fn selector(&mut self, text: &str, span: Range<usize>) -> Option<ApproverSelector> {
        match ApproverSelector::parse(text) {
            Ok(selector) => {
                let names = match &selector {
                    ApproverSelector::Group(g) => Names::Group(g.as_str()),
                    ApproverSelector::Person(p) => Names::Person(p.as_str()),
                    _ => Names::Nothing,
                };
                self.check_names(&names, Some(span));
                Some(selector)
            }
            Err(message) => {
                self.error(Some(span), message, None);
                None
            }
        }
    }

    fn check_names(&mut self, names: &Names<'_>, span: Option<Range<usize>>) {
        let directory = self.cx.directory;
        match *names {
            Names::Group(g) if !directory.group_exists(&GroupId::new(g)) => {
                let help = did_you_mean(g, directory.group_ids())
                    .or_else(|| Some("declare it in directory.toml as [[groups]]".to_owned()));
                self.error(span, format!("unknown group `{g}`"), help);
            }
            Names::Person(p) if directory.person(&p.into()).is_none() => {
                let help = did_you_mean(p, directory.person_ids());
                self.error(span, format!("unknown person `{p}`"), help);
            }
            Names::Department(d)
                if !directory
                    .departments()
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(d)) =>
            {
                let help = did_you_mean(d, directory.departments())
                    .unwrap_or_else(|| "check the spelling against directory.toml".to_owned());
                self.warn(
                    span,
                    format!("nobody in the directory is in department `{d}`"),
                    help,
                );
            }
            _ => {}
        }
    }
}

enum Names<'a> {
    Nothing,
    Group(&'a str),
    Person(&'a str),
    Department(&'a str),
}

fn subject_names(subject: &Subject) -> Names<'_> {
    match subject {
        Subject::Everyone => Names::Nothing,
        Subject::Person(p) => Names::Person(p.as_str()),
        Subject::Group(g) => Names::Group(g.as_str()),
        Subject::Department(d) => Names::Department(d),
    }
}

pub(super) const CRON_HELP: &str = "six fields: sec min hour day-of-month month day-of-week, e.g. \"0 0 9 * * Mon\" (09:00 every Monday, UTC)";
