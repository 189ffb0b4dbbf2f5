//! The part of chat that does not depend on the platform, shared by the Slack and Discord
//! adapters so that both behave the same: what people type and click is read here into typed
//! commands, and only the way each platform delivers and displays them lives in its adapter.

pub mod actions;
pub mod command;
pub mod deliver;
pub mod forms;
pub mod render;
pub mod respond;
pub mod say;
pub mod suggest;
pub mod views;

#[cfg(test)]
mod respond_tests;
