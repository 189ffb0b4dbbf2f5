//! The `command` connector: runs a program for each grant and revoke.
//!
//! **What runs.** `command[0]` with `command[1..]` as its arguments, directly: no shell, so
//! nothing in a value is interpreted. In every argument the placeholders `{action}` (`grant`
//! or `revoke`), `{grant}` (`G-7`), `{person}`, `{email}`, `{resource}`, `{role}`,
//! `{expires_at}` (RFC 3339, empty for standing access) and `{idempotency_key}` become the
//! call's values; other braces stay as written. Beware `["sh", "-c", "… {email} …"]`: there
//! the values become shell code. A script should read the environment below instead.
//!
//! **Environment.** Gatehouse's own environment is not passed on, since it usually holds
//! Gatehouse's tokens. The program gets `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ` and `TMPDIR`
//! when they are set, then the connector's `env` table (its secrets are exposed to the child
//! only), then `GATEHOUSE_ACTION`, `GATEHOUSE_GRANT_ID`, `GATEHOUSE_PERSON_ID`,
//! `GATEHOUSE_PERSON_EMAIL`, `GATEHOUSE_PERSON_SLACK`, `GATEHOUSE_PERSON_DISCORD`,
//! `GATEHOUSE_RESOURCE`, `GATEHOUSE_ROLE`, `GATEHOUSE_EXPIRES_AT` (RFC 3339 or empty),
//! `GATEHOUSE_IDEMPOTENCY_KEY` (empty when unknown) and `GATEHOUSE_UNDO` (`true` for the
//! revoke that follows a failed grant, else `false`). Standard input is empty.
//!
//! **Exit status.** 0 means done; standard output, trimmed and cut at 2 KB, goes to the
//! audit log. 2 means "refused, do not retry": the grant is marked failed or the revocation
//! alerted, with standard error in the message. Any other status, death by a signal, or
//! running past `timeout` (the program and every process it started, which share its process
//! group, are then killed) means "try again later", with an excerpt of standard error. A
//! program that cannot be started (not found, not executable) fails permanently. Like every
//! connector the program must be idempotent: granting what exists, or revoking what is gone
//! (for a person it does not know, too), exits 0. A failed grant is followed by a revoke, so
//! a program that fails halfway through a grant is asked to take back what it did.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration as StdDuration;

use chrono::SecondsFormat;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
    check_action, truncate,
};
use crate::config::{ConnectorConfig, Secret};
use crate::domain::ids::ConnectorId;

/// What the audit log gets of standard output.
const OUTPUT_EXCERPT: usize = 2048;
/// What an error message gets of standard error.
const STDERR_EXCERPT: usize = 1024;
/// What is kept of either stream while reading it; the rest is read and dropped, so that a
/// chatty program neither blocks on a full pipe nor fills memory.
const KEEP: usize = 16 * 1024;
/// The exit status that means "do not retry".
const EXIT_PERMANENT: i32 = 2;
/// Variables of Gatehouse's environment that a program may reasonably need.
const PASSED_THROUGH: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

pub struct CommandConnector {
    id: ConnectorId,
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, Secret>,
    timeout: StdDuration,
}

impl CommandConnector {
    /// `command` is the program followed by its arguments.
    pub fn new(
        id: ConnectorId,
        command: Vec<String>,
        env: BTreeMap<String, Secret>,
        timeout: StdDuration,
    ) -> Result<Self, ConnectorSetupError> {
        let mut parts = command.into_iter();
        let Some(program) = parts.next().filter(|p| !p.trim().is_empty()) else {
            return Err(ConnectorSetupError::MissingProgram { id });
        };
        Ok(Self {
            id,
            program,
            args: parts.collect(),
            env,
            timeout,
        })
    }

    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        Self::new(
            config.id.clone(),
            config.command.clone().unwrap_or_default(),
            config.env.clone(),
            config.timeout.to_std(),
        )
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        check_action(&self.id, call, method)?;
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(self.args.iter().map(|arg| substitute(arg, call)))
            .env_clear()
            .envs(
                PASSED_THROUGH
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v.expose())))
            .envs(call_env(call))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| self.not_started(&e))?;
        // Armed until the program is done: a timeout, or this future being dropped, kills the
        // whole group, so a script's children do not outlive it.
        let group = GroupKiller(child.id());
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
        let finished = tokio::time::timeout(self.timeout, async {
            let (status, _, _) = tokio::join!(
                child.wait(),
                drain(out_pipe, &mut stdout),
                drain(err_pipe, &mut stderr)
            );
            status
        })
        .await;
        let who = format!("command connector `{}`: `{}`", self.id, self.program);
        let stderr = excerpt(&stderr, STDERR_EXCERPT);
        match finished {
            Err(_elapsed) => {
                drop(group);
                let _reaped = tokio::time::timeout(StdDuration::from_secs(1), child.wait()).await;
                Err(ConnectorError::Transient(format!(
                    "{who} ran past the {:?} timeout and was killed (will retry){}",
                    self.timeout,
                    stderr_part(&stderr)
                )))
            }
            Ok(Err(e)) => Err(ConnectorError::Transient(format!(
                "{who}: waiting for it failed: {e} (will retry)"
            ))),
            Ok(Ok(status)) => {
                group.disarm();
                judge(&who, status, &stdout, &stderr)
            }
        }
    }

    fn not_started(&self, error: &io::Error) -> ConnectorError {
        let message = format!(
            "command connector `{}` cannot start `{}`: {error}",
            self.id, self.program
        );
        // Out of processes or descriptors passes; a wrong path or mode does not.
        let passing = [
            libc::EAGAIN,
            libc::ENOMEM,
            libc::EMFILE,
            libc::ENFILE,
            libc::EINTR,
        ];
        if error
            .raw_os_error()
            .is_some_and(|code| passing.contains(&code))
        {
            ConnectorError::Transient(format!("{message} (will retry)"))
        } else {
            ConnectorError::Permanent(message)
        }
    }
}

impl Connector for CommandConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Grant))
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Revoke))
    }
}

/// What an exit status means, per the rules in the module doc.
fn judge(
    who: &str,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &str,
) -> Result<Outcome, ConnectorError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => {
            let output = excerpt(stdout, OUTPUT_EXCERPT);
            Ok(Outcome {
                detail: if output.is_empty() {
                    "exit 0".to_owned()
                } else {
                    output
                },
            })
        }
        (Some(EXIT_PERMANENT), _) => Err(ConnectorError::Permanent(format!(
            "{who} exited with 2, which means do not retry{}",
            stderr_part(stderr)
        ))),
        (Some(code), _) => Err(ConnectorError::Transient(format!(
            "{who} exited with {code} (will retry){}",
            stderr_part(stderr)
        ))),
        (None, signal) => Err(ConnectorError::Transient(format!(
            "{who} was killed by signal {} (will retry){}",
            signal.map_or_else(|| "?".to_owned(), |s| s.to_string()),
            stderr_part(stderr)
        ))),
    }
}

fn stderr_part(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

fn excerpt(bytes: &[u8], max: usize) -> String {
    truncate(String::from_utf8_lossy(bytes).trim(), max)
}

/// Reads a pipe to its end, keeping the first [`KEEP`] bytes in `into`. What was read stays
/// in `into` even when the reading is abandoned at a timeout.
async fn drain(pipe: Option<impl AsyncRead + Unpin>, into: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = [0u8; 4096];
    while let Ok(read @ 1..) = pipe.read(&mut chunk).await {
        let room = KEEP.saturating_sub(into.len());
        into.extend_from_slice(&chunk[..read.min(room)]);
    }
}

/// Replaces the placeholders of one argument in a single pass, so a value that looks like
/// a placeholder stays as it is.
fn substitute(arg: &str, call: &ConnectorCall) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let from_brace = &rest[open..];
        let replaced = from_brace
            .find('}')
            .and_then(|close| Some((close, placeholder(&from_brace[1..close], call)?)));
        match replaced {
            Some((close, value)) => {
                out.push_str(&value);
                rest = &from_brace[close + 1..];
            }
            None => {
                out.push('{');
                rest = &from_brace[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn placeholder(name: &str, call: &ConnectorCall) -> Option<String> {
    Some(match name {
        "action" => call.action.to_string(),
        "grant" => call.grant.to_string(),
        "person" => call.person.id.to_string(),
        "email" => call.person.email.clone().unwrap_or_default(),
        "resource" => call.resource.to_string(),
        "role" => call.role.to_string(),
        "expires_at" => expires_at(call),
        "idempotency_key" => call.idempotency_key.clone(),
        _ => return None,
    })
}

fn expires_at(call: &ConnectorCall) -> String {
    call.expires_at
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn call_env(call: &ConnectorCall) -> [(&'static str, String); 11] {
    let person = &call.person;
    [
        ("GATEHOUSE_ACTION", call.action.to_string()),
        ("GATEHOUSE_GRANT_ID", call.grant.to_string()),
        ("GATEHOUSE_PERSON_ID", person.id.to_string()),
        (
            "GATEHOUSE_PERSON_EMAIL",
            person.email.clone().unwrap_or_default(),
        ),
        (
            "GATEHOUSE_PERSON_SLACK",
            person.slack.clone().unwrap_or_default(),
        ),
        (
            "GATEHOUSE_PERSON_DISCORD",
            person.discord.clone().unwrap_or_default(),
        ),
        ("GATEHOUSE_RESOURCE", call.resource.to_string()),
        ("GATEHOUSE_ROLE", call.role.to_string()),
        ("GATEHOUSE_EXPIRES_AT", expires_at(call)),
        ("GATEHOUSE_IDEMPOTENCY_KEY", call.idempotency_key.clone()),
        ("GATEHOUSE_UNDO", call.undo.to_string()),
    ]
}

/// Kills the child's process group when dropped, unless disarmed.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let Some(group) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) else {
            return;
        };
        if group > 1 {
            // SAFETY: kill(2) takes two integers and touches none of our memory. The negative
            // id names the group the child leads (spawned with `process_group(0)`); while the
            // child or anything it started is alive, that id cannot be reused.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests;
