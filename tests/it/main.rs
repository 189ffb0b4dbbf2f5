//! The one integration-test binary: each area is a module, so the suite links once.

mod api;
mod cli;
mod conformance;
mod daemon;
mod fake_slack;
mod ldap;
mod ldap_directory;
mod postgres;
mod real;
mod slack_inbound;
mod slack_outbound;
mod slack_socket;
mod support;
