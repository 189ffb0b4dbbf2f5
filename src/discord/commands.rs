//! The `/access` command as Discord registers it: one chat-input command with a subcommand
//! per form of the Slack text command, autocomplete where the answer comes from the policy
//! or from the person's own requests and grants, and every option optional where a modal
//! can ask for it instead. Registered at start-up with a bulk overwrite, in the configured
//! guild (instant) or globally, so a restart after an upgrade always leaves the current
//! definition in place.

use serde_json::{Value, json};

use super::Discord;
use super::rest::RestError;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
