//! The one integration-test binary: each area is a module, so the suite links once.

mod api;
mod backup;
mod cli;
mod conformance;
mod crash;
mod daemon;
mod deploy;
mod discord;
mod fake_discord;
mod fake_slack;
mod faults;
mod ops;
mod provisioner;
mod slack_inbound;
mod slack_outbound;
mod slack_socket;
mod support;
