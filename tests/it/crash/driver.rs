//! Random request flows against one life, and the ledger of what the server acknowledged:
//! a submission that answered with its id, an approval, rejection or cancellation that
//! answered 200, a grant ended or revoked with 200. Calls the kill interrupts have no answer
//! and are not in the ledger; the checks hold the server to exactly what is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::daemon::Life;
use super::rng::Rng;

/// A request the server acknowledged.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub requester: String,
    pub resource: String,
    pub role: String,
}

#[derive(Default)]
pub struct Ledger {
    pub requests: BTreeMap<String, Submitted>,
    /// (request, stage, approver) for every acknowledged approval.
    pub approvals: Vec<(String, usize, String)>,
    /// Request → the terminal state an acknowledged call put it in.
    pub decided: BTreeMap<String, String>,
    /// Grant → its request, as acknowledged.
    pub grants: BTreeMap<String, String>,
    /// Grants whose end or revocation was acknowledged.
    pub ended: BTreeSet<String>,
    /// Requests and grants seen to be over (acknowledged or merely read: a read may see what
    /// a kill then undoes), so that the driver stops picking them.
    over: BTreeSet<String>,
    /// Grants seen, acknowledged or read.
    known_grants: BTreeSet<String>,
    /// Calls made, by kind, answered or not.
    pub calls: BTreeMap<&'static str, usize>,
}

impl Ledger {
    fn submitted(&mut self, body: &Value) {
        let request = &body["request"];
        let Some(id) = request["id"].as_str() else {
            return;
        };
        self.requests.insert(
            id.to_owned(),
            Submitted {
                requester: text(&request["requester"]),
                resource: text(&request["resource"]),
                role: text(&request["role"]),
            },
        );
        self.decided_by(request);
        if let Some(grant) = body["grant"]["id"].as_str() {
            self.grants.insert(grant.to_owned(), id.to_owned());
            self.known_grants.insert(grant.to_owned());
        }
    }

    /// Records the request's state when an answer to a change says it is over.
    fn decided_by(&mut self, request: &Value) {
        let id = text(&request["id"]);
        let state = text(&request["state"]["state"]);
        if state != "pending" && !state.is_empty() {
            self.decided.insert(id.clone(), state);
        }
        if let Some(grant) = request["state"]["grant"].as_str() {
            self.grants.insert(grant.to_owned(), id);
        }
        self.seen(request);
    }

    /// Remembers what a read (or an answer) showed, for the driver's choices only.
    fn seen(&mut self, request: &Value) {
        let id = text(&request["id"]);
        if request["state"]["state"] != "pending" {
            self.over.insert(id);
        }
        if let Some(grant) = request["state"]["grant"].as_str() {
            self.known_grants.insert(grant.to_owned());
        }
    }
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// People's Slack ids in the example directory.
pub fn slack_id(person: &str) -> Option<&'static str> {
    Some(match person {
        "erin" => "U0ERIN",
        "bob" => "U0BOB",
        "alice" => "U01ALICE",
        "carol" => "U0CAROL",
        "dora" => "U0DORA",
        "sam" => "U0SAM",
        "sue" => "U0SUE",
        "sid" => "U0SID",
        "fay" => "U0FAY",
        _ => return None,
    })
}

/// Auto-approved (low risk, at most 1h): granted at once, expiring in seconds.
const AUTO: &[(&str, &str, &str)] = &[
    ("dan", "grafana", "editor"),
    ("alice", "grafana", "editor"),
    ("carol", "wiki-admin", "editor"),
    ("dora", "grafana", "editor"),
];
/// Two stages of approvals each.
const STAGED: &[(&str, &str, &str)] = &[
    ("alice", "staging-db", "read"),
    ("dan", "staging-db", "read"),
    ("carol", "staging-db", "read"),
    ("alice", "payments", "viewer"),
];

/// Makes random calls until the future is dropped (the kill).
pub async fn drive(life: &Life, ledger: &Mutex<Ledger>, mut rng: Rng) {
    loop {
        let roll = rng.between(0, 99);
        let kind = match roll {
            0..=14 => submit_auto(life, ledger, &mut rng).await,
            15..=27 => submit_staged(life, ledger, &mut rng).await,
            28..=30 => submit_emergency(life, ledger, &mut rng).await,
            31..=36 => submit_on_slack(life, ledger, &mut rng).await,
            37..=69 => decide(life, ledger, &mut rng).await,
            _ => end(life, ledger, &mut rng).await,
        };
        *lock(ledger).calls.entry(kind).or_default() += 1;
        tokio::time::sleep(std::time::Duration::from_millis(rng.between(0, 15))).await;
    }
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|p| p.into_inner())
}

async fn submit(life: &Life, ledger: &Mutex<Ledger>, body: Value) {
    if let Some((StatusCode::CREATED, answer)) = life.post("/requests", body).await {
        lock(ledger).submitted(&answer);
    }
}

async fn submit_auto(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let (who, resource, role) = *rng.pick(AUTO);
    let duration = format!("{}s", rng.between(4, 20));
    let body = json!({"as": who, "resource": resource, "role": role, "duration": duration, "reason": "crash test"});
    submit(life, ledger, body).await;
    "submit (auto-approved)"
}

async fn submit_staged(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let (who, resource, role) = *rng.pick(STAGED);
    let duration = format!("{}s", rng.between(5, 20));
    let body = json!({"as": who, "resource": resource, "role": role, "duration": duration, "reason": "crash test"});
    submit(life, ledger, body).await;
    "submit (two stages)"
}

async fn submit_emergency(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let who = *rng.pick(&["alice", "dan"]);
    let duration = format!("{}s", rng.between(4, 15));
    let body = json!({"as": who, "resource": "prod-db", "role": "read", "duration": duration,
                      "reason": "crash test: primary down", "emergency": true});
    submit(life, ledger, body).await;
    "submit (emergency)"
}

/// `/access request …` from alice, signed as Slack signs it; acknowledged by the id it names.
async fn submit_on_slack(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let duration = rng.between(5, 20);
    let text = format!("request staging-db read for {duration}s crash test");
    let body = format!(
        "token=x&team_id=T0FAKE&channel_id=C0GENERAL&user_id=U01ALICE&user_name=alice&command=%2Faccess&text={}&response_url=https%3A%2F%2Fhooks.slack.test%2F1&trigger_id={}",
        crate::slack_inbound::encode(&text),
        crate::slack_inbound::trigger()
    );
    if let Some((StatusCode::OK, answer)) = life.slack("/slack/commands", body).await {
        let said = text_of(&answer);
        if let Some(id) = said.split(':').next().filter(|id| id.starts_with("AR-"))
            && said.contains("sent to")
        {
            lock(ledger).requests.insert(
                id.to_owned(),
                Submitted {
                    requester: "alice".into(),
                    resource: "staging-db".into(),
                    role: "read".into(),
                },
            );
        }
    }
    "submit (Slack command)"
}

fn text_of(answer: &Value) -> String {
    text(&answer["text"])
}

/// A pending request's current stage: approve (by API or a Slack click), reject or cancel.
async fn decide(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let open: Vec<String> = {
        let ledger = lock(ledger);
        let open = ledger.requests.keys();
        open.filter(|id| !ledger.over.contains(*id))
            .cloned()
            .collect()
    };
    if open.is_empty() {
        return "decide (nothing open)";
    }
    let id = rng.pick(&open).clone();
    let Some((StatusCode::OK, shown)) = life.get(&format!("/requests/{id}")).await else {
        return "decide (not read)";
    };
    let request = &shown["request"];
    if request["state"]["state"] != "pending" {
        lock(ledger).seen(request);
        return "decide (already over)";
    }
    let requester = text(&request["requester"]);
    let stage_no = request["current_stage"].as_u64().unwrap_or(0) as usize;
    let stage = &request["plan"]["stages"][stage_no];
    let done: Vec<String> = stage["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| text(&a["by"]))
        .collect();
    let approvers: Vec<String> = stage["approvers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .filter(|p| *p != requester && !done.contains(p))
        .collect();
    let roll = rng.between(0, 99);
    if roll < 8 {
        let body = json!({"as": requester});
        if let Some((StatusCode::OK, answer)) =
            life.post(&format!("/requests/{id}/cancel"), body).await
        {
            lock(ledger).decided_by(&answer["request"]);
        }
        return "cancel";
    }
    if approvers.is_empty() {
        return "decide (no approver)";
    }
    let approver = rng.pick(&approvers).clone();
    if roll < 16 {
        let body = json!({"as": approver, "reason": "not now"});
        if let Some((StatusCode::OK, answer)) =
            life.post(&format!("/requests/{id}/reject"), body).await
        {
            lock(ledger).decided_by(&answer["request"]);
        }
        return "reject";
    }
    if roll < 35
        && let Some(user) = slack_id(&approver)
    {
        // A click answers 200 whatever it did, so it acknowledges nothing; the state says.
        let click = crate::slack_inbound::click_body(user, "gatehouse.approve", &id);
        life.slack("/slack/interactions", click).await;
        return "approve (Slack click)";
    }
    let body = json!({"as": approver});
    if let Some((StatusCode::OK, answer)) =
        life.post(&format!("/requests/{id}/approve"), body).await
    {
        let mut ledger = lock(ledger);
        ledger.approvals.push((id.clone(), stage_no, approver));
        ledger.decided_by(&answer["request"]);
    }
    "approve"
}

/// A live grant ended early by its holder, or revoked by an admin.
async fn end(life: &Life, ledger: &Mutex<Ledger>, rng: &mut Rng) -> &'static str {
    let live: Vec<String> = {
        let ledger = lock(ledger);
        let live = ledger.known_grants.iter();
        live.filter(|g| !ledger.over.contains(*g))
            .cloned()
            .collect()
    };
    if live.is_empty() {
        return "end (nothing live)";
    }
    let grant = rng.pick(&live).clone();
    let Some((StatusCode::OK, shown)) = life.get(&format!("/grants/{grant}")).await else {
        return "end (not read)";
    };
    let state = text(&shown["grant"]["state"]["state"]);
    if state != "active" && state != "provisioning" {
        lock(ledger).over.insert(grant);
        return "end (already over)";
    }
    let (path, body, kind) = if rng.chance(50) {
        let holder = text(&shown["grant"]["person"]);
        (
            format!("/grants/{grant}/end"),
            json!({"as": holder}),
            "end early",
        )
    } else {
        let body = json!({"as": "sue", "reason": "crash test"});
        (format!("/grants/{grant}/revoke"), body, "revoke")
    };
    if let Some((StatusCode::OK, _)) = life.post(&path, body).await {
        let mut ledger = lock(ledger);
        ledger.ended.insert(grant.clone());
        ledger.over.insert(grant);
    }
    kind
}
