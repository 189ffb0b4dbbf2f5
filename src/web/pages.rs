//! The portal's pages and the forms on them. Every handler finds the signed-in person
//! first ([`Portal::visitor`]), every POST checks its CSRF token, and every action goes to
//! the engine as that person, which decides whether they may, as it does for chat.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Portal;
use super::render::Frame;
use super::session::{NotSignedIn, Visitor};
use super::table::{Order, Table};
use crate::chat::forms::{self, FormError, FormKind, Submission};
use crate::chat::say;
use crate::chat::views::{
    GrantView, OptionView, RequestModalView, RequestView, TimeView, join_names,
};
use crate::domain::audit::Actor;
use crate::domain::grant::{Grant, GrantState};
use crate::domain::ids::{GrantId, RequestId, ResourceId, RoleId};
use crate::domain::request::{AccessRequest, Changes, RequestState};
use crate::domain::routing::route;
use crate::domain::validation::facts_for;
use crate::engine::{EngineError, World};
use crate::store::{GrantList, Mark, RequestList, end_mark};

/// A template's context from serializable values: `ctx! { name => value, … }`.
macro_rules! ctx {
    ($($name:ident => $value:expr),* $(,)?) => {
        minijinja::context! { $($name => minijinja::Value::from(minijinja::value::Serde(&$value))),* }
    };
}

/// A form as sent: its CSRF token and the other inputs, trimmed.
pub(super) struct Posted {
    csrf: Option<String>,
    inputs: BTreeMap<String, String>,
}

impl Posted {
    /// An input as typed, trimmed; `None` when empty.
    pub(super) fn input(&self, name: &str) -> Option<String> {
        self.inputs.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn from(pairs: Vec<(String, String)>) -> Self {
        let mut csrf = None;
        let mut inputs = BTreeMap::new();
        for (name, value) in pairs {
            if name == "csrf" {
                csrf = Some(value);
            } else {
                inputs.insert(name, value.trim().to_owned());
            }
        }
        Self { csrf, inputs }
    }
}

#[derive(Serialize)]
pub(super) struct Link {
    href: String,
    text: String,
}

impl Portal {
    /// A page saying one thing, outside any session.
    pub(super) fn message(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        self.message_with_link(status, heading, message, None, Link::sign_in())
    }

    pub(super) fn message_with_link(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        visitor: Option<&Visitor>,
        link: Link,
    ) -> Response {
        let frame = match visitor {
            Some(v) => self.frame(v, heading, ""),
            None => Frame {
                title: heading.to_owned(),
                ..Frame::default()
            },
        };
        let context = ctx! { message => message, link => link };
        self.html(status, &frame, "message.html", context)
    }

    /// The apology for a failure of ours; the detail is logged once, with the reference.
    pub(super) fn apology(&self, error: &EngineError) -> Response {
        let sentence = say::refusal(error);
        self.message_with_link(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            &sentence,
            None,
            Link::new("/web/access", "Back to My access"),
        )
    }

    pub(super) fn not_signed_in(&self, not: NotSignedIn) -> Response {
        match not {
            NotSignedIn::NoSession => self.message(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "Sign in with your organisation's account to use Gatehouse.",
            ),
            NotSignedIn::Ended(ended) => {
                self.message(StatusCode::UNAUTHORIZED, "Sign in", &ended.to_string())
            }
            NotSignedIn::Broken(response) => response,
        }
    }

    /// Sign-in cannot start: the identity provider has not answered Gatehouse yet.
    pub(super) fn sign_in_unavailable(&self) -> Response {
        let mut response = self.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now",
            "Gatehouse cannot reach your organisation's identity provider at the moment; try again in a minute.",
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        response
    }

    /// A table asked for an order or page it does not have: what it offers instead.
    pub(super) fn bad_table(&self, visitor: &Visitor, sentence: &str, path: &str) -> Response {
        self.message_with_link(
            StatusCode::BAD_REQUEST,
            "No such page",
            sentence,
            Some(visitor),
            Link::new(path, "Back to the first page"),
        )
    }

    pub(super) fn forbidden_form(&self, status: StatusCode) -> Response {
        self.message_with_link(
            status,
            "Form refused",
            "This form did not come from your current Gatehouse page; reload the page and try again.",
            None,
            Link::new("/web/access", "Back to My access"),
        )
    }

    /// What the engine said, as chat says it, with the status for whose problem it is.
    pub(super) fn refused(&self, visitor: &Visitor, error: &EngineError, back: Link) -> Response {
        let status = match error {
            EngineError::Refused(_) | EngineError::Decision(_) | EngineError::Grant(_) => {
                StatusCode::BAD_REQUEST
            }
            EngineError::NotAllowed(_) => StatusCode::FORBIDDEN,
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Store(_) | EngineError::Internal(_) => return self.apology(error),
        };
        let sentence = say::refusal(error);
        self.message_with_link(status, "Not done", &sentence, Some(visitor), back)
    }

    fn frame(&self, visitor: &Visitor, title: &str, current: &'static str) -> Frame {
        Frame {
            title: title.to_owned(),
            person: Some(visitor.person.name.clone()),
            admin: visitor.admin,
            auditor: visitor.auditor,
            csrf: visitor.session.csrf.clone(),
            current,
        }
    }

    fn html(
        &self,
        status: StatusCode,
        frame: &Frame,
        template: &str,
        context: impl Serialize,
    ) -> Response {
        match self.pages.render(frame, template, context) {
            Ok(page) => (status, Html(page)).into_response(),
            Err(e) => {
                let sentence = say::apology(&format!("showing {template}: {e}"));
                (StatusCode::INTERNAL_SERVER_ERROR, sentence).into_response()
            }
        }
    }

    pub(super) fn page(
        &self,
        visitor: &Visitor,
        title: &str,
        current: &'static str,
        template: &str,
        context: impl Serialize,
    ) -> Response {
        let frame = self.frame(visitor, title, current);
        self.html(StatusCode::OK, &frame, template, context)
    }

    /// The signed-in visitor and their form, when the form may act for them.
    pub(super) async fn form(
        &self,
        headers: &HeaderMap,
        pairs: Vec<(String, String)>,
    ) -> Result<(Visitor, Posted), Response> {
        let visitor = self
            .visitor(headers)
            .await
            .map_err(|n| self.not_signed_in(n))?;
        let posted = Posted::from(pairs);
        self.check_form(&visitor, headers, posted.csrf.as_deref())
            .map_err(|status| self.forbidden_form(status))?;
        Ok((visitor, posted))
    }
}

impl Link {
    pub(super) fn new(href: impl Into<String>, text: &str) -> Self {
        Self {
            href: href.into(),
            text: text.to_owned(),
        }
    }

    fn sign_in() -> Self {
        Self::new("/web/login", "Sign in")
    }
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

macro_rules! signed_in {
    ($portal:expr, $headers:expr) => {
        match $portal.visitor(&$headers).await {
            Ok(visitor) => visitor,
            Err(not) => return $portal.not_signed_in(not),
        }
    };
}

pub async fn home(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    match portal.visitor(&headers).await {
        Ok(_) => see_other("/web/access"),
        Err(NotSignedIn::Broken(response)) => response,
        Err(_) => portal.message(
            StatusCode::OK,
            "Sign in",
            "Sign in with your organisation's account to ask for access, approve requests and see what you hold.",
        ),
    }
}

/// My access: my grants and my requests, each its own table.
const MY_GRANTS: Table = Table {
    path: "/web/access",
    prefix: "grants_",
    orders: &[Order {
        key: "created",
        label: "Grant",
        ascending_first: false,
    }],
};
const MY_REQUESTS: Table = Table {
    path: "/web/access",
    prefix: "requests_",
    orders: &[Order {
        key: "created",
        label: "Request",
        ascending_first: false,
    }],
};

/// The page of a table that `query` asks for, or the 400 that says why there is none.
macro_rules! chosen {
    ($portal:expr, $visitor:expr, $table:expr, $query:expr) => {
        match $table.choose(&$query) {
            Ok(chosen) => chosen,
            Err(sentence) => return $portal.bad_table(&$visitor, &sentence, $table.path),
        }
    };
}

/// A row's mark in a list in id order.
fn id_mark(id: u64) -> Mark {
    Mark { at_ms: 0, id }
}

pub async fn my_access(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    let for_grants = chosen!(portal, visitor, MY_GRANTS, query);
    let for_requests = chosen!(portal, visitor, MY_REQUESTS, query);
    let me = visitor.person.id.clone();
    let facade = &portal.facade;
    let grants = MY_GRANTS
        .page(
            &query,
            for_grants,
            |window| facade.grants_window(GrantList::Of(me.clone()), window),
            |g: &Grant| id_mark(g.id.0),
        )
        .await;
    let requests = MY_REQUESTS
        .page(
            &query,
            for_requests,
            |window| facade.requests_window(RequestList::Of(me.clone()), window),
            |r: &AccessRequest| id_mark(r.id.0),
        )
        .await;
    let (grants, requests) = match (grants, requests) {
        (Ok(grants), Ok(requests)) => (grants, requests),
        (Err(e), _) | (_, Err(e)) => return portal.apology(&e),
    };
    let world = portal.facade.world();
    let now = portal.facade.now();
    let grant_views: Vec<GrantView> = grants
        .rows
        .iter()
        .map(|g| GrantView::new(g, &world.directory, &world.policy, now))
        .collect();
    let request_views: Vec<RequestView> = requests
        .rows
        .iter()
        .map(|r| RequestView::new(r, &world.directory, &world.policy))
        .collect();
    let context = ctx! {
        csrf => &visitor.session.csrf,
        grants => grant_views, grants_previous => grants.previous, grants_next => grants.next,
        grants_sort => MY_GRANTS.headers(&query, for_grants),
        requests => request_views, requests_previous => requests.previous,
        requests_next => requests.next,
        requests_sort => MY_REQUESTS.headers(&query, for_requests),
    };
    portal.page(&visitor, "My access", "access", "access.html", context)
}

#[derive(Default, Deserialize)]
pub struct Chosen {
    resource: Option<String>,
    role: Option<String>,
}

/// Who would approve, as `gatehouse explain` says it.
#[derive(Default, Serialize)]
struct Preview {
    workflow: String,
    auto_approved: bool,
    stages: Vec<PreviewStage>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct PreviewStage {
    name: String,
    who: String,
}

fn preview(world: &World, visitor: &Visitor, resource: &ResourceId, role: &RoleId) -> Preview {
    let Some(resource) = world.policy.resource(resource) else {
        return Preview::default();
    };
    let Some(role) = resource.role(role) else {
        return Preview::default();
    };
    let facts = facts_for(&visitor.person, resource, role, role.max_duration);
    match route(&world.policy, &world.directory, &facts, &[]) {
        Ok(plan) => Preview {
            workflow: plan.workflow.to_string(),
            auto_approved: plan.auto_approved,
            stages: plan
                .stages
                .iter()
                .map(|stage| {
                    let names: Vec<String> = stage
                        .approvers
                        .iter()
                        .map(|id| crate::chat::views::PersonView::new(id, &world.directory).name)
                        .collect();
                    let who = match (stage.quorum, names.len()) {
                        (1, n) if n > 1 => format!("one of {}", join_names(&names)),
                        (q, n) if q > 1 && q < n => format!("{q} of {}", join_names(&names)),
                        _ => join_names(&names),
                    };
                    PreviewStage {
                        name: stage.name.clone(),
                        who,
                    }
                })
                .collect(),
            problems: Vec::new(),
        },
        Err(e) => Preview {
            problems: vec![e.to_string()],
            ..Preview::default()
        },
    }
}

/// The new-request page: the resources this person may ask for, the chosen one's roles,
/// and once both are chosen the form, with who would approve.
fn new_request_page(
    portal: &Portal,
    visitor: &Visitor,
    chosen: &Chosen,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
    refused: Option<&str>,
) -> Response {
    let world = portal.facade.world();
    let resources: Vec<OptionView> = world
        .policy
        .resources
        .iter()
        .filter(|r| r.is_eligible(&visitor.person))
        .map(|r| OptionView {
            value: r.id.to_string(),
            text: r.name.clone(),
        })
        .collect();
    let resource = chosen
        .resource
        .as_deref()
        .map(|r| ResourceId::new(r.trim()));
    let resource = resource.filter(|id| resources.iter().any(|o| o.value == id.as_str()));
    let role = chosen.role.as_deref().map(|r| RoleId::new(r.trim()));
    let form = RequestModalView::new(&world.policy, resource.as_ref(), role.as_ref());
    let preview = match (&resource, &role) {
        (Some(resource), Some(role)) => preview(&world, visitor, resource, role),
        _ => Preview::default(),
    };
    let context = ctx! {
        csrf => &visitor.session.csrf, resources => resources, form => form,
        values => values, errors => errors, refused => refused, preview => preview,
    };
    let frame = portal.frame(visitor, "New request", "new");
    let status = match (errors.is_empty(), refused) {
        (true, None) => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    portal.html(status, &frame, "new.html", context)
}

pub async fn new_request(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(chosen): Query<Chosen>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    new_request_page(
        &portal,
        &visitor,
        &chosen,
        &BTreeMap::new(),
        &BTreeMap::new(),
        None,
    )
}

pub async fn submit_request(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut inputs = posted.inputs;
    let chosen = Chosen {
        resource: inputs.remove("resource"),
        role: inputs.remove("role"),
    };
    let submission = Submission {
        about: String::new(),
        resource: chosen.resource.clone(),
        role: chosen.role.clone(),
        inputs: inputs.clone(),
    };
    let person = visitor.person.id.clone();
    match forms::submit(&portal.facade, &person, FormKind::Request, &submission).await {
        Ok(sentence) => portal.message_with_link(
            StatusCode::OK,
            "Request sent",
            &sentence,
            Some(&visitor),
            Link::new("/web/access", "See it on My access"),
        ),
        Err(FormError::Fix(errors)) => {
            new_request_page(&portal, &visitor, &chosen, &inputs, &errors, None)
        }
        Err(FormError::Refused(sentence)) => new_request_page(
            &portal,
            &visitor,
            &chosen,
            &inputs,
            &BTreeMap::new(),
            Some(&sentence),
        ),
    }
}

/// The roles of the request's resource that grant less than the one asked for: what
/// "approve with changes" may lower it to.
fn lesser_roles(world: &World, request: &AccessRequest) -> Vec<OptionView> {
    let Some(resource) = world.policy.resource(&request.resource) else {
        return Vec::new();
    };
    resource
        .roles
        .iter()
        .filter(|role| resource.is_lesser_role(&role.id, &request.role))
        .map(|role| OptionView {
            value: role.id.to_string(),
            text: role.name.clone(),
        })
        .collect()
}

#[derive(Serialize)]
struct ToDecide {
    request: RequestView,
    lesser_roles: Vec<OptionView>,
}

/// Approvals: what waits for me, from `pending_by_approver`, in the order it was asked.
const APPROVALS: Table = Table {
    path: "/web/approvals",
    prefix: "",
    orders: &[Order {
        key: "created",
        label: "Asked",
        ascending_first: false,
    }],
};

pub async fn approvals(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    let chosen = chosen!(portal, visitor, APPROVALS, query);
    let me = visitor.person.id.clone();
    let facade = &portal.facade;
    let waiting = APPROVALS
        .page(
            &query,
            chosen,
            |window| facade.to_decide_window(me.clone(), window),
            |r: &AccessRequest| id_mark(r.id.0),
        )
        .await;
    let waiting = match waiting {
        Ok(waiting) => waiting,
        Err(e) => return portal.apology(&e),
    };
    let world = portal.facade.world();
    let requests: Vec<ToDecide> = waiting
        .rows
        .iter()
        .map(|r| ToDecide {
            request: RequestView::new(r, &world.directory, &world.policy),
            lesser_roles: lesser_roles(&world, r),
        })
        .collect();
    let context = ctx! {
        csrf => &visitor.session.csrf, requests => requests,
        previous => waiting.previous, next => waiting.next,
        sort => APPROVALS.headers(&query, chosen),
    };
    portal.page(
        &visitor,
        "Approvals",
        "approvals",
        "approvals.html",
        context,
    )
}

#[derive(Serialize)]
struct Moment {
    at: String,
    iso: String,
    text: String,
}

/// What happened to a request and its grant, in order, from their records.
fn timeline(request: &AccessRequest, grant: Option<&Grant>, world: &World) -> Vec<Moment> {
    let name = |id: &crate::domain::ids::PersonId| {
        crate::chat::views::PersonView::new(id, &world.directory).name
    };
    let mut moments = vec![(
        request.submitted_at,
        format!(
            "{} asked: {}",
            name(&request.requester),
            request.justification
        ),
    )];
    for stage in &request.plan.stages {
        for approval in &stage.approvals {
            moments.push((
                approval.at,
                format!("{} approved ({})", name(&approval.by), stage.name),
            ));
        }
    }
    for change in &request.changes {
        moments.push((
            change.at,
            crate::chat::views::change_text(change, &world.directory),
        ));
    }
    match &request.state {
        RequestState::Approved { at, grant } => {
            moments.push((*at, format!("Approved; grant {grant} made")))
        }
        RequestState::Rejected { by, reason, at } => {
            moments.push((*at, format!("{} rejected it: {reason}", name(by))))
        }
        RequestState::Cancelled { by, at } => {
            moments.push((*at, format!("{} cancelled it", name(by))))
        }
        RequestState::Expired { at } => {
            moments.push((*at, "It expired without a decision".to_owned()))
        }
        RequestState::Pending => {}
    }
    if let Some(grant) = grant {
        let view = GrantView::new(grant, &world.directory, &world.policy, grant.granted_at);
        let ended = view.ended.unwrap_or_default();
        match &grant.state {
            GrantState::Active { since } => {
                moments.push((*since, format!("Access given ({})", grant.id)))
            }
            GrantState::Revoking { since, .. } => {
                moments.push((*since, format!("Access being taken back: {ended}")))
            }
            GrantState::Revoked { at, .. } | GrantState::Failed { at, .. } => {
                moments.push((*at, format!("Access ended: {ended}")))
            }
            GrantState::Provisioning => {}
        }
    }
    moments.sort_by_key(|(at, _)| *at);
    moments
        .into_iter()
        .map(|(at, text)| Moment {
            at: TimeView::new(at).text,
            iso: at.to_rfc3339(),
            text,
        })
        .collect()
}

pub async fn request_page(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    let (request, grant) = match open_request(&portal, &visitor, &id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let id = request.id;
    let world = portal.facade.world();
    let me = &visitor.person.id;
    let distinct = world.defaults().distinct_approvers;
    let can_decide = request.check_decider(me, distinct).is_ok();
    let can_cancel = request.state == RequestState::Pending && request.requester == *me;
    let now = portal.facade.now();
    let context = ctx! {
        csrf => &visitor.session.csrf,
        request => RequestView::new(&request, &world.directory, &world.policy),
        grant => grant.as_ref().map(|g| GrantView::new(g, &world.directory, &world.policy, now)),
        timeline => timeline(&request, grant.as_ref(), &world),
        can_decide => can_decide, can_cancel => can_cancel,
    };
    portal.page(
        &visitor,
        &format!("Request {id}"),
        "",
        "request.html",
        context,
    )
}

/// The request `id` names, with its grant, for someone who may open it: its requester, one of
/// its approvers, an admin or an auditor. Anyone else, or an id that names nothing, gets the
/// refusal page.
async fn open_request(
    portal: &Portal,
    visitor: &Visitor,
    id: &str,
) -> Result<(AccessRequest, Option<Grant>), Response> {
    let back = || Link::new("/web/access", "Back to My access");
    let Ok(id) = id.parse::<RequestId>() else {
        let e = EngineError::NotFound(format!("there is no request `{id}`"));
        return Err(portal.refused(visitor, &e, back()));
    };
    let (request, grant) = match portal.facade.request_with_grant(id).await {
        Ok(found) => found,
        Err(e) => return Err(portal.refused(visitor, &e, back())),
    };
    if request.involves(&visitor.person.id) || visitor.admin || visitor.auditor {
        return Ok((request, grant));
    }
    let e = EngineError::NotAllowed(format!(
        "you may open only your own requests and those you decide; {} is neither",
        request.id
    ));
    Err(portal.refused(visitor, &e, back()))
}

/// The request's events in the audit log, on their own page: reading them walks the log
/// from the request's submission, so it happens only when asked.
pub async fn request_audit(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    let (request, grant) = match open_request(&portal, &visitor, &id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let id = request.id;
    let audited = audit_trail(&portal, &request, grant.as_ref()).await;
    let context = ctx! { id => id.to_string(), audited => audited };
    portal.page(
        &visitor,
        &format!("Request {id} in the audit log"),
        "",
        "request_audit.html",
        context,
    )
}

/// One event of the audit log about a request.
#[derive(Serialize)]
struct Audited {
    seq: u64,
    at: String,
    actor: String,
    action: String,
    reason: String,
}

/// Events a request page reads from the audit log at most, and looks through to find them:
/// they lie between its submission and now, found by bisection, among everyone else's.
const TRAIL_EVENTS: usize = 200;
const TRAIL_BUDGET: usize = 20_000;

/// The audit log's events about a request and its grant, oldest first, read forward from
/// its submission (found by bisection) for at most [`TRAIL_BUDGET`] events; none when the log
/// could not be read (the page still shows the records' own timeline).
async fn audit_trail(
    portal: &Portal,
    request: &AccessRequest,
    grant: Option<&Grant>,
) -> Vec<Audited> {
    // Nothing about it happens after it ended: read no further than that.
    let ended = match (&request.state, grant.map(|g| &g.state)) {
        (RequestState::Rejected { at, .. }, _)
        | (RequestState::Cancelled { at, .. }, _)
        | (RequestState::Expired { at }, _)
        | (_, Some(GrantState::Revoked { at, .. }))
        | (_, Some(GrantState::Failed { at, .. })) => Some(*at),
        _ => None,
    };
    let query = crate::engine::AuditQuery {
        request: Some(request.id),
        grant: grant.map(|g| g.id),
        since: Some(request.submitted_at),
        until: ended,
        oldest_first: true,
        limit: TRAIL_EVENTS,
        budget: TRAIL_BUDGET,
        ..Default::default()
    };
    match portal.facade.audit_search(query).await {
        Ok(page) => page
            .records
            .iter()
            .map(|r| Audited {
                seq: r.seq,
                at: TimeView::new(r.event.at).text,
                actor: r.event.actor.to_string(),
                action: r.event.action.name(),
                reason: r.event.reason.clone().unwrap_or_default(),
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "the audit trail of a request could not be read");
            Vec::new()
        }
    }
}

/// Runs a chat form for the visitor: its sentence once done, else why not.
async fn run_form(
    portal: &Portal,
    visitor: &Visitor,
    kind: FormKind,
    about: String,
    inputs: BTreeMap<String, String>,
    back: Link,
) -> Response {
    let submission = Submission {
        about,
        resource: None,
        role: None,
        inputs,
    };
    let person = visitor.person.id.clone();
    match forms::submit(&portal.facade, &person, kind, &submission).await {
        Ok(sentence) => {
            portal.message_with_link(StatusCode::OK, "Done", &sentence, Some(visitor), back)
        }
        Err(FormError::Fix(errors)) => {
            let sentence = errors.into_values().collect::<Vec<_>>().join(" ");
            portal.message_with_link(
                StatusCode::BAD_REQUEST,
                "Not done",
                &sentence,
                Some(visitor),
                back,
            )
        }
        Err(FormError::Refused(sentence)) => portal.message_with_link(
            StatusCode::BAD_REQUEST,
            "Not done",
            &sentence,
            Some(visitor),
            back,
        ),
    }
}

fn request_link(id: &str) -> Link {
    Link::new(format!("/web/requests/{id}"), "Back to the request")
}

pub async fn approve(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, _) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(request) = id.parse::<RequestId>() else {
        let e = EngineError::NotFound(format!("there is no request `{id}`"));
        return portal.refused(
            &visitor,
            &e,
            Link::new("/web/approvals", "Back to Approvals"),
        );
    };
    let actor = Actor::person(&visitor.person.id);
    match portal
        .facade
        .approve(actor, request, Changes::default())
        .await
    {
        Ok(_) => see_other(&format!("/web/requests/{request}")),
        Err(e) => portal.refused(
            &visitor,
            &e,
            Link::new("/web/approvals", "Back to Approvals"),
        ),
    }
}

pub async fn reject(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = request_link(&id);
    run_form(&portal, &visitor, FormKind::Reject, id, posted.inputs, back).await
}

pub async fn approve_with_changes(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = request_link(&id);
    run_form(
        &portal,
        &visitor,
        FormKind::Changes,
        id,
        posted.inputs,
        back,
    )
    .await
}

pub async fn cancel(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, _) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = || Link::new("/web/access", "Back to My access");
    let Ok(request) = id.parse::<RequestId>() else {
        let e = EngineError::NotFound(format!("there is no request `{id}`"));
        return portal.refused(&visitor, &e, back());
    };
    match portal
        .facade
        .cancel(Actor::person(&visitor.person.id), request)
        .await
    {
        Ok(_) => see_other(&format!("/web/requests/{request}")),
        Err(e) => portal.refused(&visitor, &e, back()),
    }
}

pub async fn extend(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = Link::new("/web/access", "Back to My access");
    run_form(&portal, &visitor, FormKind::Extend, id, posted.inputs, back).await
}

fn grant_id(id: &str) -> Result<GrantId, EngineError> {
    id.parse::<GrantId>()
        .map_err(|_| EngineError::NotFound(format!("there is no grant `{id}`")))
}

pub async fn end_early(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, _) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = || Link::new("/web/access", "Back to My access");
    let ended = match grant_id(&id) {
        Ok(grant) => {
            portal
                .facade
                .end_early(Actor::person(&visitor.person.id), grant)
                .await
        }
        Err(e) => Err(e),
    };
    match ended {
        Ok(_) => see_other("/web/access"),
        Err(e) => portal.refused(&visitor, &e, back()),
    }
}

/// Grants (admins): every live grant, newest first or by when it ends.
const LIVE_GRANTS: Table = Table {
    path: "/web/grants",
    prefix: "",
    orders: &[
        Order {
            key: "created",
            label: "Grant",
            ascending_first: false,
        },
        Order {
            key: "ends",
            label: "Ends",
            ascending_first: true,
        },
    ],
};

pub async fn grants(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let visitor = signed_in!(portal, headers);
    if !visitor.admin {
        let e = EngineError::NotAllowed("only Gatehouse admins see every grant".to_owned());
        return portal.refused(&visitor, &e, Link::new("/web/access", "Back to My access"));
    }
    let chosen = chosen!(portal, visitor, LIVE_GRANTS, query);
    let (list, by_end) = match chosen.key(&LIVE_GRANTS) {
        "ends" => (GrantList::LiveByEnd, true),
        _ => (GrantList::Live, false),
    };
    let facade = &portal.facade;
    let live = LIVE_GRANTS
        .page(
            &query,
            chosen,
            |window| facade.grants_window(list.clone(), window),
            |g: &Grant| match by_end {
                true => end_mark(g),
                false => id_mark(g.id.0),
            },
        )
        .await;
    let live = match live {
        Ok(live) => live,
        Err(e) => return portal.apology(&e),
    };
    let world = portal.facade.world();
    let now = portal.facade.now();
    let grants: Vec<GrantView> = live
        .rows
        .iter()
        .map(|g| GrantView::new(g, &world.directory, &world.policy, now))
        .collect();
    let context = ctx! {
        csrf => &visitor.session.csrf, grants => grants,
        previous => live.previous, next => live.next,
        sort => LIVE_GRANTS.headers(&query, chosen),
    };
    portal.page(&visitor, "Live grants", "grants", "grants.html", context)
}

pub async fn revoke(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, posted) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = || Link::new("/web/grants", "Back to Grants");
    let reason = posted.inputs.get("reason").cloned().unwrap_or_default();
    if reason.is_empty() {
        let e = EngineError::NotAllowed(
            "say why you revoke it: the holder reads your reason".to_owned(),
        );
        return portal.refused(&visitor, &e, back());
    }
    let revoked = match grant_id(&id) {
        Ok(grant) => {
            portal
                .facade
                .revoke(Actor::person(&visitor.person.id), grant, reason)
                .await
        }
        Err(e) => Err(e),
    };
    match revoked {
        Ok(_) => see_other("/web/grants"),
        Err(e) => portal.refused(&visitor, &e, back()),
    }
}
