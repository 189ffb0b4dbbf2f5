//! The one integration-test binary: each area is a module, so the suite links once.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod api;
mod aws_sso;
mod backup;
mod bundles;
mod cli;
mod conformance;
mod contract;
mod crash;
mod daemon;
mod deploy;
mod discord;
mod docs;
mod entra;
mod failover;
mod fake_discord;
mod fake_slack;
/// The fake Slack's own tests, declared here rather than in the fake, which the benches include.
#[path = "fake_slack"]
mod fake_slack_tests {
    use crate::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack, Fault};

    mod tests;
    mod tests_morphism;
    mod tests_rules;
}
mod faults;
mod github;
mod google;
mod ldap;
mod ldap_directory;
mod okta;
mod openapi;
mod ops;
mod portal;
mod postgres;
mod provisioner;
mod real;
mod slack_inbound;
mod slack_outbound;
mod slack_socket;
mod slow_clients;
mod store;
mod support;
mod tls;
