//! Gatehouse: access requests in chat, approved by the right people, provisioned, revoked on
//! time, and written to a tamper-evident audit log.

pub mod app;
pub mod backoff;
pub mod chat;
pub mod cli;
pub mod config;
pub mod connector;
pub mod discord;
pub mod domain;
pub mod engine;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod hmac;
pub mod http;
pub mod ldap;
pub mod leader;
pub mod metrics;
pub mod outbox;
pub mod scheduler;
pub mod slack;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod web;
