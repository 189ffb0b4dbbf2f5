//! Views of replies to a command: an ephemeral answer only its reader sees, and the help.

use serde::Serialize;

/// A reply only its reader sees: a sentence, optional bullet lines, optional blocks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EphemeralView {
    pub text: String,
    pub lines: Vec<String>,
    /// Already-built platform blocks, appended as they are.
    pub blocks: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HelpView {
    /// The slash command, `/access`.
    pub command: String,
}
