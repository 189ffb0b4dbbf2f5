//! A validating fake of a vendor's HTTP API: an axum server on 127.0.0.1:0 that matches each
//! request to an operation of the vendor's description, refuses what the description does
//! not allow as the vendor would (404, 405, 400, 401), hands the rest to the test's
//! [`Vendor`] (which keeps the state: users, groups, members), and checks each answer against
//! the description too. Every violation, either way, is recorded, and the fake fails the
//! test that used it when it is dropped with any.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{Credential, Operation, Request, Spec};

/// What the fake answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Whether the answer is checked against the description: not for what the vendor
    /// really answers though its description does not list it (a 401 for a wrong token, a
    /// 500), which a test injects on purpose.
    pub checked: bool,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
            checked: true,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
            checked: true,
        }
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    /// An answer the description does not list, sent on purpose and not checked.
    pub fn undocumented(mut self) -> Reply {
        self.checked = false;
        self
    }
}

/// One request of the description, valid, as the vendor sees it.
pub struct Call<'a> {
    pub operation: &'a Operation<'a>,
    pub request: &'a Request<'a>,
    /// The credentials the request satisfied the operation's security with.
    pub credential: Option<Credential>,
}

/// The vendor behind the fake: its state and how it answers.
pub trait Vendor: Send + Sync + 'static {
    /// The answer to a valid request of the description.
    fn answer(&self, call: &Call<'_>) -> Reply;

    /// The vendor's answer to a request it refuses (`status` 400, 401, 404 or 405), in the
    /// vendor's error shape.
    fn refuse(&self, status: u16, message: &str) -> Reply;

    /// A request for a path the description does not have (a token endpoint, described
    /// elsewhere): its answer, with whatever the vendor checks of it, or `None` to refuse
    /// it as an unknown path. A problem found goes in `violations`.
    fn outside(
        &self,
        _method: &str,
        _path: &str,
        _request: &Request<'_>,
        _violations: &mut Vec<String>,
    ) -> Option<Reply> {
        None
    }
}

/// One request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// As sent, percent-encoded, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The operation's `operationId`; empty for a request outside the description.
    pub operation: String,
    pub status: u16,
}

struct Shared {
    spec: Spec,
    vendor: Arc<dyn Vendor>,
    violations: Mutex<Vec<String>>,
    calls: Mutex<Vec<Recorded>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake; its URL has no trailing slash.
pub struct ValidatingFake {
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl ValidatingFake {
    pub async fn start(spec: Spec, vendor: Arc<dyn Vendor>) -> ValidatingFake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            spec,
            vendor,
            violations: Mutex::default(),
            calls: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ValidatingFake {
            url,
            shared,
            server,
        }
    }

    /// Every request so far, in order.
    pub fn calls(&self) -> Vec<Recorded> {
        lock(&self.shared.calls).clone()
    }

    /// The requests so far to operation `id`.
    pub fn calls_to(&self, id: &str) -> Vec<Recorded> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == id)
            .collect()
    }

    /// What broke the description so far, either way.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared.violations).clone()
    }

    /// What broke the description so far, forgotten: for a test that breaks it on purpose
    /// (and asserts on what it gets), so that dropping the fake does not fail the test.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.violations))
    }
}

impl Drop for ValidatingFake {
    fn drop(&mut self) {
        self.server.abort();
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the fake saw {} violation(s) of the vendor's description:\n{}",
                violations.len(),
                violations.join("\n")
            );
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let request = Request {
        query: &query,
        headers: &headers,
        body: &body,
    };
    let mut violations = Vec::new();
    let (reply, operation_id) = match shared.spec.operation(method.as_str(), uri.path()) {
        Err(refusal) => {
            match shared
                .vendor
                .outside(method.as_str(), uri.path(), &request, &mut violations)
            {
                Some(reply) => (reply, String::new()),
                None => {
                    violations.push(format!("{method} {}: {}", uri.path(), refusal.reason));
                    (
                        shared.vendor.refuse(refusal.status, &refusal.reason),
                        String::new(),
                    )
                }
            }
        }
        Ok(operation) => {
            let problems = operation.check_request(&request);
            let reply = if problems.is_empty() {
                let credential = operation.credential(&headers).unwrap_or_default();
                let call = Call {
                    operation: &operation,
                    request: &request,
                    credential,
                };
                let reply = shared.vendor.answer(&call);
                if reply.checked {
                    let body = reply
                        .body
                        .as_ref()
                        .map(Value::to_string)
                        .unwrap_or_default();
                    let content_type = if body.is_empty() {
                        ""
                    } else {
                        "application/json"
                    };
                    violations.extend(
                        operation
                            .check_response(reply.status, content_type, body.as_bytes())
                            .into_iter()
                            .map(|p| format!("answer: {p}")),
                    );
                }
                reply
            } else {
                let status = if operation.credential(&headers).is_err() {
                    401
                } else {
                    400
                };
                let reply = shared.vendor.refuse(status, &problems.join("; "));
                violations.extend(problems.into_iter().map(|p| format!("request: {p}")));
                reply
            };
            (reply, operation.id.clone())
        }
    };
    lock(&shared.calls).push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        operation: operation_id,
        status: reply.status,
    });
    lock(&shared.violations).extend(violations);
    respond(reply)
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap();
    let mut response = match reply.body {
        Some(body) => (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::try_from(name).unwrap(),
            HeaderValue::try_from(value).unwrap(),
        );
    }
    response
}
