//! The commands that act on a running server, through its admin API.

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Client;
use super::output::{grant_details, grant_row, next_step, request_details, request_row, table};
use super::{Command, Global, GrantsCommand, RequestsCommand};
use crate::domain::duration::Duration;
use crate::domain::ids::{GrantId, PersonId, RequestId, RoleId};
use crate::http::api::{
    ApproveBody, AsBody, ExtendBody, Grants, Offboarded, OneGrant, OneRequest, ReasonBody,
    ReloadSummary, RequestAndGrant, Requests, SubmitBody,
};

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let client = Client::from_global(global)?;
    match command {
        Command::Request(args) => {
            let body = SubmitBody {
                person: args.who.person.map(PersonId::new),
                resource: args.resource,
                role: args.role,
                duration: args.duration.as_deref().map(duration).transpose()?,
                reason: args.reason,
                fields: args.fields.into_iter().collect(),
                emergency: args.emergency,
            };
            print_request_and_grant(post(&client, "/requests", body).await?)
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
            let body = ApproveBody {
                person: who.person.map(PersonId::new),
                duration: asked,
                role: role.map(RoleId::new),
            };
            let path = format!("/requests/{id}/approve");
            print_request_and_grant(post(&client, &path, body).await?)
        }
        Command::Reject {
            id, who, reason, ..
        } => {
            let id = request_id(&id)?;
            let body = ReasonBody {
                person: who.person.map(PersonId::new),
                reason,
            };
            let answer: OneRequest = post(&client, &format!("/requests/{id}/reject"), body).await?;
            print_request(answer)
        }
        Command::Cancel { id, who, .. } => {
            let id = request_id(&id)?;
            let body = AsBody {
                person: who.person.map(PersonId::new),
            };
            let answer: OneRequest = post(&client, &format!("/requests/{id}/cancel"), body).await?;
            print_request(answer)
        }
        Command::Requests { command, .. } => match command.unwrap_or(RequestsCommand::List {
            pending: false,
            limit: 50,
        }) {
            RequestsCommand::List { pending, limit } => {
                let path = format!("/requests?pending={pending}&limit={limit}");
                let Requests { requests } = get(&client, &path).await?;
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
                let OneRequest { request } = get(&client, &format!("/requests/{id}")).await?;
                print!("{}", request_details(&request));
                Ok(())
            }
        },
        Command::Grants { command, .. } => match command.unwrap_or(GrantsCommand::List {
            live: false,
            limit: 50,
        }) {
            GrantsCommand::List { live, limit } => {
                let path = format!("/grants?live={live}&limit={limit}");
                let Grants { grants } = get(&client, &path).await?;
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
                let OneGrant { grant } = get(&client, &format!("/grants/{id}")).await?;
                print!("{}", grant_details(&grant));
                Ok(())
            }
        },
        Command::Revoke {
            id, who, reason, ..
        } => {
            let id = grant_id(&id)?;
            let body = ReasonBody {
                person: who.person.map(PersonId::new),
                reason: reason.unwrap_or_default(),
            };
            print_grant(post(&client, &format!("/grants/{id}/revoke"), body).await?)
        }
        Command::Extend {
            id,
            who,
            duration: more,
            reason,
            ..
        } => {
            let id = grant_id(&id)?;
            let body = ExtendBody {
                person: who.person.map(PersonId::new),
                duration: duration(&more)?,
                reason,
            };
            print_request_and_grant(post(&client, &format!("/grants/{id}/extend"), body).await?)
        }
        Command::End { id, who, .. } => {
            let id = grant_id(&id)?;
            let body = AsBody {
                person: who.person.map(PersonId::new),
            };
            print_grant(post(&client, &format!("/grants/{id}/end"), body).await?)
        }
        Command::Offboard { leaver, who, .. } => {
            let path = format!("/people/{}/offboard", leaver.trim());
            let body = AsBody {
                person: who.person.map(PersonId::new),
            };
            let Offboarded {
                grants, requests, ..
            } = post(&client, &path, body).await?;
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
            let answer: ReloadSummary =
                post(&client, "/reload", Value::Object(Default::default())).await?;
            for warning in &answer.warnings {
                println!("{warning}");
            }
            println!(
                "reloaded: {} people, {} resources, {} workflows, {} reviews, {} admin tokens",
                answer.people,
                answer.resources,
                answer.workflows,
                answer.reviews,
                answer.admin_tokens
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

/// Sends `body` to `path`; the server's answer, read as the shared type it is.
async fn post<A: DeserializeOwned>(
    client: &Client,
    path: &str,
    body: impl Serialize,
) -> anyhow::Result<A> {
    let body = serde_json::to_value(body).context("writing the request to Gatehouse")?;
    read(client.post(path, body).await?)
}

/// The server's answer to a GET of `path`, read as the shared type it is.
async fn get<A: DeserializeOwned>(client: &Client, path: &str) -> anyhow::Result<A> {
    read(client.get(path).await?)
}

fn read<A: DeserializeOwned>(answer: Value) -> anyhow::Result<A> {
    serde_json::from_value(answer)
        .context("the server's answer cannot be read; are the CLI and server the same version?")
}

/// The request and its grant, one line each, then what happens next.
fn print_request_and_grant(answer: RequestAndGrant) -> anyhow::Result<()> {
    let RequestAndGrant { request, grant } = answer;
    print!("{}", table(&[request_row(&request)]));
    if let Some(grant) = &grant {
        print!("{}", table(&[grant_row(grant)]));
    }
    if let Some(next) = next_step(&request, grant.as_ref()) {
        println!("{next}");
    }
    Ok(())
}

/// A request after a decision that made no grant (reject, cancel).
fn print_request(answer: OneRequest) -> anyhow::Result<()> {
    print_request_and_grant(RequestAndGrant {
        request: answer.request,
        grant: None,
    })
}

fn print_grant(answer: OneGrant) -> anyhow::Result<()> {
    print!("{}", table(&[grant_row(&answer.grant)]));
    Ok(())
}
