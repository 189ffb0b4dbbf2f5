//! Discord interaction parsing: a signed body read into [`Incoming`] through serenity's
//! models, and then into what the responder acts on.

use crate::chat::actions::CardAction;
use crate::chat::command::ChatCommand;
use crate::chat::render::discord_ids::{MAX_CUSTOM_ID, ModalId};
use crate::discord::interaction::{Kind, parse, read_command};
use crate::discord::respond::submission;

/// An HTTP-mode interaction body.
pub fn discord_interaction(data: &[u8]) {
    let incoming = match parse(data) {
        Ok(incoming) => incoming,
        Err(error) => return super::assert_sentence(&error.to_string(), "a parse error"),
    };
    match incoming.kind {
        Kind::Ping => {}
        Kind::Command {
            subcommand,
            options,
        } => match read_command(&subcommand, &options) {
            Ok(command) => asked(&command),
            Err(error) => super::assert_sentence(&error.to_string(), "a Discord command error"),
        },
        Kind::Autocomplete {
            options, focused, ..
        } => assert!(focused.is_empty() || options.contains_key(&focused)),
        Kind::Click { custom_id } => {
            if let Some(card) = CardAction::from_custom_id(&custom_id) {
                assert!(card.custom_id().len() <= MAX_CUSTOM_ID);
                assert_eq!(CardAction::from_custom_id(&card.custom_id()), Some(card));
            }
        }
        Kind::Submit { custom_id, inputs } => {
            if let Some(modal) = ModalId::parse(&custom_id) {
                assert_eq!(ModalId::parse(&modal.custom_id()).as_ref(), Some(&modal));
                let names = inputs.len();
                let (_, form) = submission(modal, inputs);
                assert!(form.inputs.len() <= names);
            }
        }
    }
}

/// A request read from options names a resource and a role, as typed, trimmed.
fn asked(command: &ChatCommand) {
    if let ChatCommand::Request { resource, role, .. }
    | ChatCommand::Emergency { resource, role, .. } = command
    {
        for given in [resource, role] {
            assert!(!given.is_empty() && given.trim() == given, "{given:?}");
        }
    }
}
