//! The pure core of Gatehouse: policy, directory, routing, the request state machine,
//! grants and audit events. Nothing here does I/O, logs, or reads the clock; time is a parameter.

pub mod anchor;
pub mod audit;
pub mod card;
pub mod diagnostic;
pub mod directory;
pub mod duration;
pub mod effect;
pub mod fields;
pub mod grant;
pub mod ids;
pub mod jml;
pub mod keys;
pub mod policy;
pub mod reason;
pub mod replay;
pub mod request;
pub mod review;
pub mod routing;
pub mod schedule;
pub mod session;
pub mod validation;

#[cfg(test)]
mod decision_tests;
#[cfg(test)]
mod proptests;
