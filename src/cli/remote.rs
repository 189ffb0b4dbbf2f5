//! The commands that act on a running server, through its admin API.

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::client::Client;
use super::output::{grant_details, grant_row, next_step, request_details, request_row, table};
use super::{Command, Global, GrantsCommand, RequestsCommand};
use crate::domain::duration::Duration;
use crate::domain::grant::Grant;
use crate::domain::ids::{GrantId, RequestId};
use crate::domain::request::AccessRequest;

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let client = Client::from_global(global)?;
    match command {
        Command::Request(args) => {
            let duration = args.duration.as_deref().map(duration).transpose()?;
            let fields: serde_json::Map<String, Value> = args
                .fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let body = json!({
                "as": args.who.person,
                "resource": args.resource,
                "role": args.role,
                "duration": duration,
                "reason": args.reason,
                "fields": fields,
                "emergency": args.emergency,
            });
            let answer = client.post("/requests", body).await?;
            print_request_and_grant(&answer)
        }
        Command::Approve {
            id,
            who,
            duration: asked,
            role,
            ..
        } => {
            let id = request_id(&id)?;
            let asked = asked.as_deref().map(duration).transpose()?;
            let body = json!({ "as": who.person, "duration": asked, "role": role });
            let answer = client
                .post(&format!("/requests/{id}/approve"), body)
                .await?;
            print_request_and_grant(&answer)
        }
        Command::Reject {
            id, who, reason, ..
        } => {
            let id = request_id(&id)?;
            let body = json!({ "as": who.person, "reason": reason });
            print_request_and_grant(&client.post(&format!("/requests/{id}/reject"), body).await?)
        }
        Command::Cancel { id, who, .. } => {
            let id = request_id(&id)?;
            let body = json!({ "as": who.person });
            print_request_and_grant(&client.post(&format!("/requests/{id}/cancel"), body).await?)
        }
        Command::Requests { command, .. } => match command.unwrap_or(RequestsCommand::List {
            pending: false,
            limit: 50,
        }) {
            RequestsCommand::List { pending, limit } => {
                let answer = client
                    .get(&format!("/requests?pending={pending}&limit={limit}"))
                    .await?;
                let requests: Vec<AccessRequest> = field(&answer, "requests")?;
                if requests.is_empty() {
                    println!(
                        "{}",
                        if pending {
                            "no pending requests"
                        } else {
                            "no requests"
                        }
                    );
                }
                print!(
                    "{}",
                    table(&requests.iter().map(request_row).collect::<Vec<_>>())
                );
                Ok(())
            }
            RequestsCommand::Show { id } => {
                let id = request_id(&id)?;
                let request: AccessRequest =
                    field(&client.get(&format!("/requests/{id}")).await?, "request")?;
                print!("{}", request_details(&request));
                Ok(())
            }
        },
        Command::Grants { command, .. } => match command.unwrap_or(GrantsCommand::List {
            live: false,
            limit: 50,
        }) {
            GrantsCommand::List { live, limit } => {
                let answer = client
                    .get(&format!("/grants?live={live}&limit={limit}"))
                    .await?;
                let grants: Vec<Grant> = field(&answer, "grants")?;
                if grants.is_empty() {
                    println!("{}", if live { "no live grants" } else { "no grants" });
                }
                print!(
                    "{}",
                    table(&grants.iter().map(grant_row).collect::<Vec<_>>())
                );
                Ok(())
            }
            GrantsCommand::Show { id } => {
                let id = grant_id(&id)?;
                let grant: Grant = field(&client.get(&format!("/grants/{id}")).await?, "grant")?;
                print!("{}", grant_details(&grant));
                Ok(())
            }
        },
        Command::Revoke {
            id, who, reason, ..
        } => {
            let id = grant_id(&id)?;
            let body = json!({ "as": who.person, "reason": reason.unwrap_or_default() });
            print_grant(&client.post(&format!("/grants/{id}/revoke"), body).await?)
        }
        Command::Extend {
            id,
            who,
            duration: more,
            reason,
            ..
        } => {
            let id = grant_id(&id)?;
            let body = json!({ "as": who.person, "duration": duration(&more)?, "reason": reason });
            print_request_and_grant(&client.post(&format!("/grants/{id}/extend"), body).await?)
        }
        Command::End { id, who, .. } => {
            let id = grant_id(&id)?;
            print_grant(
                &client
                    .post(&format!("/grants/{id}/end"), json!({ "as": who.person }))
                    .await?,
            )
        }
        Command::Offboard { leaver, who, .. } => {
            let path = format!("/people/{}/offboard", leaver.trim());
            let answer = client.post(&path, json!({ "as": who.person })).await?;
            let grants: Vec<GrantId> = field(&answer, "grants")?;
            let requests: usize = field(&answer, "requests")?;
            let revoked = if grants.is_empty() {
                "no live grants".to_owned()
            } else {
                format!(
                    "revoking {}",
                    grants
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            println!(
                "offboarded {}: {revoked}; cancelled {requests} pending request(s)",
                leaver.trim()
            );
            Ok(())
        }
        Command::Reload { .. } => {
            let answer = client.post("/reload", json!({})).await?;
            for warning in answer
                .get("warnings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!("{}", warning.as_str().unwrap_or_default());
            }
            let count = |key: &str| answer.get(key).and_then(Value::as_u64).unwrap_or(0);
            println!(
                "reloaded: {} people, {} resources, {} workflows, {} reviews, {} admin tokens",
                count("people"),
                count("resources"),
                count("workflows"),
                count("reviews"),
                count("admin_tokens")
            );
            Ok(())
        }
        Command::Serve
        | Command::Check
        | Command::Explain(_)
        | Command::Audit { .. }
        | Command::Healthcheck { .. }
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Migrate { .. } => {
            anyhow::bail!("this command does not use the admin API")
        }
    }
}

fn duration(text: &str) -> anyhow::Result<Duration> {
    Ok(text.parse::<Duration>()?)
}

fn request_id(text: &str) -> anyhow::Result<RequestId> {
    Ok(text.parse::<RequestId>()?)
}

fn grant_id(text: &str) -> anyhow::Result<GrantId> {
    Ok(text.parse::<GrantId>()?)
}

/// One field of an answer, as the type it is.
fn field<T: DeserializeOwned>(answer: &Value, key: &str) -> anyhow::Result<T> {
    let value = answer.get(key).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).with_context(|| {
        format!(
            "the server's answer has no readable `{key}`; are the CLI and server the same version?"
        )
    })
}

/// The request and its grant, one line each, then what happens next.
fn print_request_and_grant(answer: &Value) -> anyhow::Result<()> {
    let request: AccessRequest = field(answer, "request")?;
    print!("{}", table(&[request_row(&request)]));
    let grant: Option<Grant> = match answer.get("grant").filter(|g| !g.is_null()) {
        Some(grant) => Some(
            serde_json::from_value(grant.clone())
                .context("reading the grant in the server's answer")?,
        ),
        None => None,
    };
    if let Some(grant) = &grant {
        print!("{}", table(&[grant_row(grant)]));
    }
    if let Some(next) = next_step(&request, grant.as_ref()) {
        println!("{next}");
    }
    Ok(())
}

fn print_grant(answer: &Value) -> anyhow::Result<()> {
    let grant: Grant = field(answer, "grant")?;
    print!("{}", table(&[grant_row(&grant)]));
    Ok(())
}
