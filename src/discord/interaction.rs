//! What Discord sends, read into [`Incoming`] before anything else looks at it. Both ways
//! in end here: HTTP mode deserializes the signed body into serenity's `Interaction`, and
//! gateway mode receives serenity's `Interaction` from its client; either way only ids,
//! names and typed text come out. A subcommand and its options are then read into the same
//! [`ChatCommand`] Slack's text is ([`read_command`]), or a [`CommandError`] that says what
//! to type. Nothing here trusts the content: who may do what is the engine's call.

use std::collections::BTreeMap;
use std::str::FromStr;

use serenity::model::application::{
    ActionRowComponent, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction, Interaction, ModalInteraction,
};

use crate::chat::command::ChatCommand;
use crate::domain::duration::{Duration, DurationError};
use crate::domain::ids::{GrantId, RequestId};

/// One interaction: who, how to answer it, and what it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub id: String,
    /// Answers the interaction (callback, follow-ups, the original response).
    pub token: String,
    /// The Discord user id of whoever typed or clicked.
    pub user: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Discord checking the endpoint (HTTP mode).
    Ping,
    /// `/access <subcommand> [options]`: option name → value as text.
    Command {
        subcommand: String,
        options: BTreeMap<String, String>,
    },
    /// The person is typing option `focused`; the others typed so far come along.
    Autocomplete {
        subcommand: String,
        options: BTreeMap<String, String>,
        focused: String,
    },
    /// A button on one of our messages.
    Click { custom_id: String },
    /// A modal sent: its `custom_id`, and text input `custom_id` → what was typed.
    Submit {
        custom_id: String,
        inputs: BTreeMap<String, String>,
    },
}

/// Why a body is not an interaction Gatehouse can read.
#[derive(Debug, thiserror::Error)]
#[error("not a Discord interaction: {0}")]
pub struct ParseError(String);

/// Reads an HTTP-mode body (already authenticated).
pub fn parse(body: &[u8]) -> Result<Incoming, ParseError> {
    let interaction: Interaction =
        serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    Ok(Incoming::from(interaction))
}

impl From<Interaction> for Incoming {
    fn from(interaction: Interaction) -> Self {
        match interaction {
            Interaction::Ping(ping) => Incoming {
                id: ping.id.to_string(),
                token: ping.token,
                user: String::new(),
                kind: Kind::Ping,
            },
            Interaction::Command(command) => {
                let (subcommand, options, _) = flatten(&command);
                incoming_command(
                    command,
                    Kind::Command {
                        subcommand,
                        options,
                    },
                )
            }
            Interaction::Autocomplete(command) => {
                let (subcommand, options, focused) = flatten(&command);
                incoming_command(
                    command,
                    Kind::Autocomplete {
                        subcommand,
                        options,
                        focused: focused.unwrap_or_default(),
                    },
                )
            }
            Interaction::Component(click) => from_click(click),
            Interaction::Modal(modal) => from_modal(modal),
            // Interaction is non-exhaustive: anything newer is read as a ping, which every
            // path answers without acting.
            _ => Incoming {
                id: String::new(),
                token: String::new(),
                user: String::new(),
                kind: Kind::Ping,
            },
        }
    }
}

fn incoming_command(command: CommandInteraction, kind: Kind) -> Incoming {
    Incoming {
        id: command.id.to_string(),
        token: command.token,
        user: command.user.id.to_string(),
        kind,
    }
}

/// The subcommand, its options as text, and the option being typed (autocomplete).
fn flatten(command: &CommandInteraction) -> (String, BTreeMap<String, String>, Option<String>) {
    let mut options = BTreeMap::new();
    let mut focused = None;
    let mut subcommand = String::new();
    let mut pending: Vec<&CommandDataOption> = command.data.options.iter().collect();
    while let Some(option) = pending.pop() {
        match &option.value {
            CommandDataOptionValue::SubCommand(inner)
            | CommandDataOptionValue::SubCommandGroup(inner) => {
                subcommand = option.name.clone();
                pending.extend(inner.iter());
            }
            CommandDataOptionValue::Autocomplete { value, .. } => {
                focused = Some(option.name.clone());
                options.insert(option.name.clone(), value.clone());
            }
            other => {
                if let Some(text) = text_of(other) {
                    options.insert(option.name.clone(), text);
                }
            }
        }
    }
    (subcommand, options, focused)
}

fn text_of(value: &CommandDataOptionValue) -> Option<String> {
    Some(match value {
        CommandDataOptionValue::String(s) => s.clone(),
        CommandDataOptionValue::Integer(i) => i.to_string(),
        CommandDataOptionValue::Number(n) => n.to_string(),
        CommandDataOptionValue::Boolean(b) => b.to_string(),
        CommandDataOptionValue::User(u) => u.to_string(),
        _ => return None,
    })
}

fn from_click(click: ComponentInteraction) -> Incoming {
    Incoming {
        id: click.id.to_string(),
        token: click.token,
        user: click.user.id.to_string(),
        kind: Kind::Click {
            custom_id: click.data.custom_id,
        },
    }
}

fn from_modal(modal: ModalInteraction) -> Incoming {
    let inputs = modal
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .filter_map(|component| match component {
            ActionRowComponent::InputText(input) => Some((
                input.custom_id.clone(),
                input.value.clone().unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    Incoming {
        id: modal.id.to_string(),
        token: modal.token,
        user: modal.user.id.to_string(),
        kind: Kind::Submit {
            custom_id: modal.data.custom_id,
            inputs,
        },
    }
}

/// Why a subcommand and its options are not a command. Its `Display` is the sentence the
/// person reads, saying what to type instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("`{0}` is not something Gatehouse knows; try `help`.")]
    Unknown(String),
    #[error("Give `{option}`, like {example}.")]
    Missing {
        option: &'static str,
        example: &'static str,
    },
    #[error("Emergency access needs `resource`, `role` and `reason`.")]
    EmergencyIncomplete,
    #[error("`{option}`: {error}")]
    BadDuration {
        option: &'static str,
        error: DurationError,
    },
    #[error("`{0}` is not an id Gatehouse gave; `list` shows yours.")]
    BadId(String),
}

/// A subcommand and its options (as [`Kind::Command`] carries them) as a chat command.
/// `request` without all of resource, role and reason opens the form instead.
pub fn read_command(
    subcommand: &str,
    options: &BTreeMap<String, String>,
) -> Result<ChatCommand, CommandError> {
    let text = |name: &str| {
        options
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let duration = |option: &'static str| -> Result<Option<Duration>, CommandError> {
        text(option)
            .map(|d| {
                d.parse::<Duration>()
                    .map_err(|error| CommandError::BadDuration { option, error })
            })
            .transpose()
    };
    let id = |option: &'static str, example: &'static str| -> Result<&str, CommandError> {
        text(option).ok_or(CommandError::Missing { option, example })
    };
    Ok(match subcommand {
        "help" => ChatCommand::Help,
        "list" => ChatCommand::List,
        "pending" => ChatCommand::Pending,
        "request" | "emergency" => {
            let (resource, role, reason) = (text("resource"), text("role"), text("reason"));
            match (resource, role, reason) {
                (Some(resource), Some(role), Some(reason)) => {
                    let (resource, role) = (resource.to_owned(), role.to_owned());
                    let (duration, words) = (duration("duration")?, reason.to_owned());
                    if subcommand == "emergency" {
                        ChatCommand::Emergency {
                            resource,
                            role,
                            duration,
                            words,
                        }
                    } else {
                        ChatCommand::Request {
                            resource,
                            role,
                            duration,
                            words,
                        }
                    }
                }
                _ if subcommand == "request" => ChatCommand::OpenForm,
                _ => return Err(CommandError::EmergencyIncomplete),
            }
        }
        "cancel" => ChatCommand::Cancel(parse_id::<RequestId>(id("request", "AR-12")?)?),
        "done" => ChatCommand::Done(parse_id::<GrantId>(id("grant", "G-7")?)?),
        "extend" => ChatCommand::Extend {
            grant: parse_id::<GrantId>(id("grant", "G-7")?)?,
            by: duration("duration")?.ok_or(CommandError::Missing {
                option: "duration",
                example: "2h",
            })?,
            reason: text("reason").unwrap_or_default().to_owned(),
        },
        other => return Err(CommandError::Unknown(other.to_owned())),
    })
}

fn parse_id<T: FromStr>(text: &str) -> Result<T, CommandError> {
    text.parse()
        .map_err(|_| CommandError::BadId(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_request_with_every_option_is_asked_at_once_and_without_them_opens_the_form() {
        let full = options(&[
            ("resource", "prod-db"),
            ("role", "read"),
            ("duration", "2h"),
            ("reason", "INC-1 debugging"),
        ]);
        assert!(matches!(
            read_command("request", &full),
            Ok(ChatCommand::Request {
                duration: Some(_),
                ..
            })
        ));
        assert_eq!(
            read_command("request", &options(&[])),
            Ok(ChatCommand::OpenForm)
        );
        assert_eq!(
            read_command("request", &options(&[("resource", "prod-db")])),
            Ok(ChatCommand::OpenForm)
        );
        assert_eq!(
            read_command("emergency", &options(&[("resource", "prod-db")])),
            Err(CommandError::EmergencyIncomplete)
        );
    }

    #[test]
    fn ids_and_durations_are_read_or_explained() {
        assert_eq!(
            read_command("cancel", &options(&[("request", "AR-12")])),
            Ok(ChatCommand::Cancel(RequestId(12)))
        );
        let bad = read_command("cancel", &options(&[("request", "twelve")])).unwrap_err();
        assert_eq!(bad, CommandError::BadId("twelve".to_owned()));
        assert_eq!(
            bad.to_string(),
            "`twelve` is not an id Gatehouse gave; `list` shows yours."
        );
        let bad = read_command(
            "extend",
            &options(&[("grant", "G-7"), ("duration", "soon")]),
        )
        .unwrap_err();
        assert!(
            matches!(
                bad,
                CommandError::BadDuration {
                    option: "duration",
                    ..
                }
            ),
            "{bad:?}"
        );
        assert!(bad.to_string().starts_with("`duration`: "), "{bad}");
        assert_eq!(
            read_command("extend", &options(&[("grant", "G-7")])),
            Err(CommandError::Missing {
                option: "duration",
                example: "2h"
            })
        );
        assert_eq!(
            read_command("done", &options(&[])).unwrap_err().to_string(),
            "Give `grant`, like G-7."
        );
        assert_eq!(
            read_command("sudo", &options(&[])).unwrap_err().to_string(),
            "`sudo` is not something Gatehouse knows; try `help`."
        );
    }
}
