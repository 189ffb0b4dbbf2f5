//! What Discord sends, read into [`Incoming`] before anything else looks at it. Both ways
//! in end here: HTTP mode deserializes the signed body into serenity's `Interaction`, and
//! gateway mode receives serenity's `Interaction` from its client; either way only ids,
//! names and typed text come out. Nothing here trusts the content: ids are parsed later,
//! and who may do what is the engine's call.

use std::collections::BTreeMap;

use serenity::model::application::{
    ActionRowComponent, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction, Interaction, ModalInteraction,
};

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
