//! The `/access` command as Discord registers it: one chat-input command with a subcommand
//! per form of the Slack text command, autocomplete where the answer comes from the policy
//! or from the person's own requests and grants, and every option optional where a modal
//! can ask for it instead. Registered at start-up with a bulk overwrite, in the configured
//! guild (instant) or globally, so a restart after an upgrade always leaves the current
//! definition in place.
//!
//! Registration runs beside the gateway, never before it: while Discord cannot take it yet
//! (down, rate limited) it is retried in the background with backoff, and the command
//! registered by an earlier run keeps working. Where it stands is shown by `/readyz`
//! ([`Registration`]) and logged.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::Discord;
use super::rest::RestError;
use crate::backoff::{Backoff, Retries};
use crate::metrics::{Readiness, Registration};
use crate::outbox::ChatError;

/// The platform's name in `/readyz`.
const PLATFORM: &str = "discord";
/// The waits after failed registrations: 1 s, doubling up to 5 minutes (or what a 429 asks
/// for, when longer).
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));

/// Option types, as Discord numbers them.
const SUB_COMMAND: u8 = 1;
const STRING: u8 = 3;

/// The subcommands, in the order Discord lists them.
pub const SUBCOMMANDS: [&str; 8] = [
    "request",
    "emergency",
    "list",
    "pending",
    "cancel",
    "extend",
    "done",
    "help",
];

/// The command definition for `name` (`access`).
pub fn definition(name: &str) -> Value {
    let text = |name: &str, description: &str, required: bool, autocomplete: bool| {
        json!({
            "type": STRING,
            "name": name,
            "description": description,
            "required": required,
            "autocomplete": autocomplete,
        })
    };
    let sub = |name: &str, description: &str, options: Vec<Value>| {
        json!({
            "type": SUB_COMMAND,
            "name": name,
            "description": description,
            "options": options,
        })
    };
    json!({
        "name": name,
        "type": 1,
        "description": "Ask for access, and see and end what you have",
        "dm_permission": true,
        "options": [
            sub("request", "Ask for access; leave options out to fill in a form", vec![
                text("resource", "What to access, like prod-db", false, true),
                text("role", "Which role on it", false, true),
                text("duration", "For how long, like 2h or 3d", false, false),
                text("reason", "Why you need it (and a ticket, like ticket:INC-42)", false, false),
            ]),
            sub("emergency", "Break-glass access now, reviewed by security afterwards", vec![
                text("resource", "What to access", true, true),
                text("role", "Which role on it", true, true),
                text("reason", "What is happening (the incident)", true, false),
                text("duration", "For how long, like 1h", false, false),
            ]),
            sub("list", "Your pending requests and current access", vec![]),
            sub("pending", "Requests waiting for your decision", vec![]),
            sub("cancel", "Withdraw a pending request", vec![
                text("request", "The request, like AR-12", true, true),
            ]),
            sub("extend", "Ask for more time on access you have", vec![
                text("grant", "The access, like G-7", true, true),
                text("duration", "How much more, like 2h", true, false),
                text("reason", "Why you need more time", false, false),
            ]),
            sub("done", "Give access back now", vec![
                text("grant", "The access, like G-7", true, true),
            ]),
            sub("help", "What you can do, with examples", vec![]),
        ],
    })
}

impl Discord {
    /// Registers `/access` (bulk overwrite), in `discord.guild_id` when set, else globally.
    pub async fn register_commands(&self) -> Result<(), RestError> {
        let path = match &self.guild_id {
            Some(guild) => format!(
                "/applications/{}/guilds/{guild}/commands",
                self.application_id
            ),
            None => format!("/applications/{}/commands", self.application_id),
        };
        let commands = json!([definition(&self.command)]);
        self.rest.put(&path, &commands).await.map(|_| ())
    }

    /// Registers `/access` until it is in place, Discord refuses it (a wrong application id,
    /// guild id or token: logged for the operator, not retried) or `stop` turns true. Failures
    /// that may pass are retried with backoff; each step is told to `readiness`.
    pub async fn register_commands_until_done(
        &self,
        readiness: &Readiness,
        mut stop: watch::Receiver<bool>,
    ) {
        readiness.registration(PLATFORM, Registration::Registering);
        let mut retries = Retries::new(RETRY);
        loop {
            let error = match self.register_commands().await {
                Ok(()) => {
                    readiness.registration(PLATFORM, Registration::Registered);
                    tracing::info!(command = %self.slash_command(), "registered the Discord command");
                    return;
                }
                Err(error) => error,
            };
            let retry_after = match error.clone().classify() {
                ChatError::Transient { retry_after, .. } => retry_after,
                ChatError::Permanent(_) => {
                    readiness.registration(PLATFORM, Registration::Refused);
                    tracing::error!(%error, "Discord refused the command registration; check discord.application_id, discord.guild_id and the bot token, then restart");
                    return;
                }
            };
            readiness.registration(PLATFORM, Registration::Retrying);
            let wait = retries.next_delay();
            let delay = retry_after.map_or(wait, |asked| asked.max(wait));
            tracing::warn!(%error, ?delay, "cannot register the Discord command yet; the gateway runs meanwhile, and the command registered before (if any) keeps working");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }
}

/// Until shutdown is asked for, or nobody can ask any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; it must not live across an await.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::DiscordConfig;
    use crate::metrics::Metrics;

    /// A Discord whose API answers every call 403 Missing Access; and how many calls came.
    async fn discord_refusing_everything() -> (Discord, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let refuse = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                let body = json!({"message": "Missing Access", "code": 50001});
                (axum::http::StatusCode::FORBIDDEN, axum::Json(body))
            }
        };
        let app = axum::Router::new().fallback(refuse);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = DiscordConfig {
            enabled: true,
            bot_token: Some(crate::config::Secret::new("token")),
            application_id: Some("42".to_owned()),
            guild_id: Some("7".to_owned()),
            api_url,
            ..DiscordConfig::default()
        };
        let templates = Arc::new(crate::chat::render::Templates::builtin().unwrap());
        let discord = Discord::from_config(&config, templates, Arc::new(Metrics::new())).unwrap();
        (discord, calls)
    }

    #[tokio::test]
    async fn a_refused_registration_is_said_once_and_not_retried() {
        let (discord, calls) = discord_refusing_everything().await;
        let readiness = Readiness::default();
        let (_stop, stop) = watch::channel(false);
        let registering = discord.register_commands_until_done(&readiness, stop);
        tokio::time::timeout(Duration::from_secs(30), registering)
            .await
            .expect("a refusal ends the registration");
        assert_eq!(
            readiness.registrations().get(PLATFORM),
            Some(&Registration::Refused)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn every_subcommand_is_defined_once_within_discord_limits() {
        let command = definition("access");
        let subs = command["options"].as_array().unwrap();
        let names: Vec<&str> = subs.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, SUBCOMMANDS);
        for sub in subs {
            let description = sub["description"].as_str().unwrap();
            assert!(
                (1..=100).contains(&description.chars().count()),
                "{description}"
            );
            let options = sub["options"].as_array().unwrap();
            assert!(options.len() <= 25);
            // Discord wants required options before optional ones.
            let required: Vec<bool> = options
                .iter()
                .map(|o| o["required"].as_bool().unwrap())
                .collect();
            assert!(
                required.windows(2).all(|w| w[0] || !w[1]),
                "{}",
                sub["name"]
            );
            for option in options {
                let name = option["name"].as_str().unwrap();
                assert!(name.chars().all(|c| c.is_ascii_lowercase()) && name.len() <= 32);
                assert!(option["description"].as_str().unwrap().chars().count() <= 100);
            }
        }
    }
}
