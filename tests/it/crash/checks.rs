//! What must hold after the last life has settled: nothing acknowledged lost, every grant
//! provisioned once and deprovisioned once, every Slack and Discord message posted once,
//! every card of a decided request closed, nothing overdue still held, the audit chain intact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use super::daemon::Life;
use super::driver::{Ledger, text};
use crate::fake_discord::FakeDiscord;
use crate::fake_slack::{FakeSlack, Message};
use crate::provisioner::Provisioner;

/// Every grant, as the server has them now.
pub async fn grants(life: &Life) -> Vec<Value> {
    let Some((StatusCode::OK, body)) = life.get("/grants?limit=1000").await else {
        panic!("the grants could not be listed");
    };
    body["grants"].as_array().cloned().unwrap_or_default()
}

pub fn expires_at(grant: &Value) -> Option<DateTime<Utc>> {
    grant["expires_at"].as_str()?.parse().ok()
}

/// Whether the last life has done all it has to: the outbox empty, no grant half-way, no
/// expiry to come, nothing overdue still held.
pub async fn settled(life: &Life) -> Result<(), String> {
    let depth = life.gauge("gatehouse_outbox_depth").await;
    if depth != Some(0.0) {
        return Err(format!("the outbox holds {depth:?} effects"));
    }
    let now = Utc::now();
    for grant in grants(life).await {
        let state = text(&grant["state"]["state"]);
        let id = text(&grant["id"]);
        if state == "provisioning" || state == "revoking" {
            return Err(format!("{id} is {state}"));
        }
        if let Some(at) = expires_at(&grant)
            && (at > now || state == "active")
        {
            return Err(format!("{id} ({state}) expires at {at}"));
        }
    }
    Ok(())
}

pub async fn nothing_acknowledged_was_lost(life: &Life, ledger: &Ledger) {
    let mut lost = Vec::new();
    for (id, submitted) in &ledger.requests {
        let Some((StatusCode::OK, body)) = life.get(&format!("/requests/{id}")).await else {
            lost.push(format!("{id} was acknowledged and is gone"));
            continue;
        };
        let request = &body["request"];
        let same = text(&request["requester"]) == submitted.requester
            && text(&request["resource"]) == submitted.resource
            && text(&request["role"]) == submitted.role;
        if !same {
            lost.push(format!(
                "{id} is not what was submitted ({submitted:?}): {request}"
            ));
        }
        if let Some(state) = ledger.decided.get(id)
            && request["state"]["state"] != state.as_str()
        {
            lost.push(format!("{id} was acknowledged {state}: {request}"));
        }
    }
    for (id, stage, approver) in &ledger.approvals {
        let Some((StatusCode::OK, body)) = life.get(&format!("/requests/{id}")).await else {
            continue;
        };
        let approvals = &body["request"]["plan"]["stages"][*stage]["approvals"];
        let found = approvals.as_array().into_iter().flatten();
        if !found.clone().any(|a| a["by"] == approver.as_str()) {
            lost.push(format!(
                "{approver}'s approval of stage {stage} of {id} is gone"
            ));
        }
    }
    for (grant, request) in &ledger.grants {
        let Some((StatusCode::OK, body)) = life.get(&format!("/grants/{grant}")).await else {
            lost.push(format!("{grant} was acknowledged and is gone"));
            continue;
        };
        if body["grant"]["request"] != request.as_str() {
            lost.push(format!("{grant} is not {request}'s: {}", body["grant"]));
        }
        let state = &body["grant"]["state"]["state"];
        if ledger.ended.contains(grant) && state != "revoked" {
            lost.push(format!("{grant} was ended and is {state}"));
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged and lost:\n{}",
        lost.join("\n")
    );
}

/// Each grant given once and, once over, taken back once, nothing held that is not live.
pub async fn every_grant_was_provisioned_once(life: &Life, provisioner: &Provisioner) -> usize {
    assert!(
        provisioner.refused().is_empty(),
        "{:?}",
        provisioner.refused()
    );
    let effects = provisioner.effects();
    let mut wrong = Vec::new();
    let now = Utc::now();
    let all = grants(life).await;
    for grant in &all {
        let id = text(&grant["id"]);
        let state = text(&grant["state"]["state"]);
        let done = effects.get(&id).cloned().unwrap_or_default();
        if done.grants.len() > 1 || done.revokes.len() > 1 {
            wrong.push(format!("{id} ({state}): {done:?}"));
        }
        if done.revoked_before_granted && !done.grants.is_empty() {
            wrong.push(format!("{id} was revoked before it was granted: {done:?}"));
        }
        let ok = match state.as_str() {
            "active" => done.held && done.grants.len() == 1,
            "revoked" => !done.held,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{id} is {state} and the target saw {done:?}"));
        }
        if state == "revoked" && !done.grants.is_empty() && done.revokes.len() != 1 {
            wrong.push(format!("{id} is revoked and the target saw {done:?}"));
        }
        if expires_at(grant).is_some_and(|at| at <= now) && (state != "revoked" || done.held) {
            wrong.push(format!("{id} is overdue and {state}: {done:?}"));
        }
    }
    let known: Vec<String> = all.iter().map(|g| text(&g["id"])).collect();
    for id in effects.keys() {
        if !known.contains(id) {
            wrong.push(format!(
                "the target saw {id}, which Gatehouse does not know"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "provisioning went wrong:\n{}",
        wrong.join("\n")
    );
    all.len()
}

/// The effect key the blocks of a post were marked with, if any. (An update replaces the
/// blocks, and with them the mark: read it from the post.)
fn mark_in(blocks: &Value) -> Option<String> {
    blocks.as_array()?.iter().find_map(|b| {
        let id = b["block_id"].as_str()?;
        id.strip_prefix("gatehouse:").map(str::to_owned)
    })
}

pub fn buttons(message: &Message) -> usize {
    let blocks = message.blocks.as_ref().and_then(Value::as_array);
    let elements = blocks
        .into_iter()
        .flatten()
        .filter_map(|b| b["elements"].as_array());
    elements.flatten().filter(|e| e["type"] == "button").count()
}

/// Every `chat.postMessage` Slack applied (answered or not), by (channel, mark): the
/// messages that exist, counted by what they were posted for.
pub fn posts_by_mark(slack: &FakeSlack) -> BTreeMap<(String, String), Vec<String>> {
    let mut posts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for call in slack.calls_to("chat.postMessage") {
        if !call.ok() {
            continue;
        }
        let channel = text(&call.response["channel"]);
        let ts = text(&call.response["ts"]);
        let mark = mark_in(&call.args["blocks"]).unwrap_or_else(|| format!("unmarked {ts}"));
        posts.entry((channel, mark)).or_default().push(ts);
    }
    posts
}

/// Every Slack message posted once for its effect; every approval card of a request that is
/// over closed. The number of messages.
pub async fn every_slack_message_was_posted_once(life: &Life, slack: &FakeSlack) -> usize {
    let mut wrong = Vec::new();
    let posts = posts_by_mark(slack);
    for ((channel, mark), posted) in &posts {
        if posted.len() > 1 || mark.starts_with("unmarked") {
            wrong.push(format!(
                "{mark} posted {} times in {channel}: {posted:?}",
                posted.len()
            ));
        }
    }
    let messages = slack.all_messages();
    for message in &messages {
        if buttons(message) == 0 {
            continue;
        }
        // Approval cards name their request in their mark; the requester's notice (Cancel)
        // and reminders name it in their text, and no grant (expiry warnings and emergency
        // reviews keep their buttons while the grant lives).
        let card = posts.iter().find(|(_, ts)| ts.contains(&message.ts));
        let mark = card.map(|((_, mark), _)| mark.clone()).unwrap_or_default();
        let said = message.text.clone().unwrap_or_default();
        let request = match mark.strip_prefix("card:") {
            Some(key) => key.split(':').next().map(str::to_owned),
            None if !said.contains("G-") => request_in(&said),
            None => None,
        };
        let Some(request) = request else { continue };
        if is_over(life, &request).await {
            let what = if mark.is_empty() { &said } else { &mark };
            wrong.push(format!("{what} in {} still has buttons", message.channel));
        }
    }
    assert!(
        wrong.is_empty(),
        "Slack messages went wrong:\n{}",
        wrong.join("\n")
    );
    let violations = slack.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    messages.len()
}

/// Every Discord message posted once for its effect (one per channel and nonce, and none
/// without a nonce); every button of a request that is over gone. The number of messages.
pub async fn every_discord_message_was_posted_once(life: &Life, discord: &FakeDiscord) -> usize {
    let mut wrong = Vec::new();
    let mut posted: BTreeMap<(String, String), usize> = BTreeMap::new();
    let messages = discord.all_messages();
    for message in &messages {
        let Some(nonce) = &message.nonce else {
            wrong.push(format!(
                "{} in {} has no nonce: {}",
                message.id,
                message.channel_id,
                crate::discord::shown(message)
            ));
            continue;
        };
        *posted
            .entry((message.channel_id.clone(), nonce.to_string()))
            .or_default() += 1;
        // Buttons name what they act on: `gatehouse.approve|AR-12`, `gatehouse.extend|G-3`.
        let buttons = crate::discord::buttons(message);
        let Some(request) = buttons.iter().find_map(|id| request_in(id)) else {
            continue;
        };
        if is_over(life, &request).await {
            wrong.push(format!(
                "{nonce} in {} still has buttons {buttons:?}",
                message.channel_id
            ));
        }
    }
    for ((channel, nonce), n) in &posted {
        if *n > 1 {
            wrong.push(format!("{nonce} posted {n} times in {channel}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "Discord messages went wrong:\n{}",
        wrong.join("\n")
    );
    let violations = discord.violations();
    assert!(violations.is_empty(), "{violations:#?}");
    messages.len()
}

/// Whether the server has `request` and it is no longer pending, so that no card of it may
/// keep its buttons.
async fn is_over(life: &Life, request: &str) -> bool {
    match life.get(&format!("/requests/{request}")).await {
        Some((StatusCode::OK, body)) => body["request"]["state"]["state"] != "pending",
        _ => false,
    }
}

/// The first `AR-<n>` in `text`.
fn request_in(text: &str) -> Option<String> {
    let at = text.find("AR-")?;
    let digits: String = text[at + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("AR-{digits}"))
}

pub async fn the_audit_chain_is_intact(life: &Life) -> u64 {
    let Some((status, body)) = life.get("/audit/verify").await else {
        panic!("the audit log could not be verified");
    };
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    body["events"].as_u64().unwrap_or_default()
}
