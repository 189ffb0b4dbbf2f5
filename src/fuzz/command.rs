//! The `/access` text parser: whatever is typed, a command or a sentence saying what to type;
//! a command printed back the way help shows it parses to the same command.

use crate::chat::command::{ChatCommand, help, parse};

/// `/access <input>`.
pub fn access_command(data: &[u8]) {
    let typed = super::text(data);
    match parse(&typed) {
        Ok(command) => {
            let printed = print(&command);
            assert_eq!(
                parse(&printed).as_ref(),
                Ok(&command),
                "{typed:?} printed as {printed:?} reads differently"
            );
        }
        Err(error) => {
            let sentence = error.render("/gate");
            super::assert_sentence(&sentence, "a command error");
            assert!(sentence.starts_with('`'), "{sentence}");
            // It shows the form that works, or points at help; never another command's name.
            assert!(
                sentence.contains(": /gate ") || sentence.ends_with("`/gate help` lists them"),
                "{sentence}"
            );
            assert!(!sentence.contains("/access"), "{sentence}");
            assert_eq!(error.to_string(), error.render("/access"));
        }
    }
    assert!(help("/gate").lines().all(|line| line.starts_with("`/gate")));
}

/// The text that reads as `command`, in the forms of help.
fn print(command: &ChatCommand) -> String {
    let ask = |verb: &str, resource: &str, role: &str, duration: &Option<_>, words: &str| {
        let mut text = format!("{verb} {resource} {role}");
        if let Some(duration) = duration {
            text += &format!(" for {duration}");
        }
        text + " " + words
    };
    match command {
        ChatCommand::OpenForm => String::new(),
        ChatCommand::Request {
            resource,
            role,
            duration,
            words,
        } => ask("request", resource, role, duration, words),
        ChatCommand::Emergency {
            resource,
            role,
            duration,
            words,
        } => ask("emergency", resource, role, duration, words),
        ChatCommand::List => "list".into(),
        ChatCommand::Pending => "pending".into(),
        ChatCommand::Cancel(id) => format!("cancel {id}"),
        ChatCommand::Extend { grant, by, reason } => format!("extend {grant} {by} {reason}"),
        ChatCommand::Done(id) => format!("done {id}"),
        ChatCommand::Approve(id) => format!("approve {id}"),
        ChatCommand::Reject { request, reason } => format!("reject {request} {reason}"),
        ChatCommand::Help => "help".into(),
    }
}
