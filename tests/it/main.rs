//! The one integration-test binary: each area is a module, so the suite links once.

mod api;
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
mod failover;
mod fake_discord;
mod fake_slack;
mod faults;
mod ldap;
mod ldap_directory;
mod ops;
mod postgres;
mod provisioner;
mod real;
mod slack_inbound;
mod slack_outbound;
mod slack_socket;
mod store;
mod support;
