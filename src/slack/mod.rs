//! The Slack front end: authenticating what Slack sends us (request signatures, retry dedup
//! keys) and talking to Slack's Web API through slack-morphism. Everything Slack-specific lives
//! under this module; the engine never sees a Slack type.

pub mod client;
pub mod verify;
