//! The shape of policy.toml as written, before any check: what serde reads.

use serde::Deserialize;
use toml::Spanned;

use super::{MoverAction, OnTimeout, RequestType, Risk, SodAction};
use crate::domain::duration::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) templates: Vec<RawTemplate>,
    #[serde(default)]
    pub(super) resources: Vec<RawResource>,
    #[serde(default)]
    pub(super) workflows: Vec<RawWorkflow>,
    #[serde(default)]
    pub(super) sod: Vec<RawSod>,
    pub(super) emergency: Option<Spanned<RawEmergency>>,
    #[serde(default)]
    pub(super) reviews: Vec<RawReview>,
    #[serde(default)]
    pub(super) bundles: Vec<RawBundle>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) pending_ttl: Option<Duration>,
    pub(super) remind_every: Option<Duration>,
    pub(super) escalate_after: Option<Duration>,
    pub(super) max_duration: Option<Duration>,
    pub(super) distinct_approvers: Option<bool>,
    pub(super) on_mover: Option<MoverAction>,
    #[serde(default)]
    pub(super) admins: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) auditors: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
    pub(super) id: Spanned<String>,
    #[serde(default)]
    pub(super) fields: Vec<RawField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawField {
    pub(super) id: Spanned<String>,
    pub(super) label: Option<String>,
    pub(super) pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResource {
    pub(super) id: Spanned<String>,
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) owners: Vec<Spanned<String>>,
    pub(super) risk: Risk,
    pub(super) connector: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) eligible: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) roles: Vec<RawRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) id: Spanned<String>,
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) privileged: bool,
    pub(super) risk: Option<Risk>,
    pub(super) max_duration: Option<Duration>,
    pub(super) template: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) standing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkflow {
    pub(super) id: Spanned<String>,
    pub(super) when: Option<Spanned<RawCondition>>,
    #[serde(default)]
    pub(super) auto_approve: bool,
    #[serde(default)]
    pub(super) stages: Vec<Spanned<RawStage>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub(super) privileged: Option<bool>,
    pub(super) risk_at_least: Option<Risk>,
    pub(super) risk_at_most: Option<Risk>,
    #[serde(default)]
    pub(super) resources: Vec<String>,
    #[serde(default)]
    pub(super) kinds: Vec<String>,
    #[serde(default)]
    pub(super) departments: Vec<String>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    pub(super) duration_over: Option<Duration>,
    pub(super) duration_at_most: Option<Duration>,
    pub(super) request_type: Option<OneOrMany<RequestType>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    pub(super) name: Option<String>,
    pub(super) approvers: Vec<String>,
    pub(super) quorum: Option<RawQuorum>,
    #[serde(default)]
    pub(super) escalate_to: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawQuorum {
    Count(i64),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSod {
    pub(super) id: Spanned<String>,
    pub(super) roles: Vec<(String, String)>,
    #[serde(default = "block")]
    pub(super) action: SodAction,
}

pub(super) fn block() -> SodAction {
    SodAction::Block
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmergency {
    #[serde(default)]
    pub(super) eligible: Vec<String>,
    pub(super) max_duration: Duration,
    pub(super) reviewers: Vec<String>,
    pub(super) review_within: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReview {
    pub(super) id: Spanned<String>,
    pub(super) schedule: Spanned<String>,
    #[serde(default)]
    pub(super) resources: Vec<String>,
    pub(super) reviewers: Vec<String>,
    pub(super) deadline: Duration,
    #[serde(default = "revoke")]
    pub(super) on_timeout: OnTimeout,
}

pub(super) fn revoke() -> OnTimeout {
    OnTimeout::Revoke
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBundle {
    pub(super) id: Spanned<String>,
    pub(super) when: Option<Spanned<RawCondition>>,
    pub(super) grants: Vec<RawGrantRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrantRef {
    pub(super) resource: String,
    pub(super) role: String,
}
