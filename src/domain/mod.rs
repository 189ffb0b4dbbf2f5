//! The pure core of Gatehouse: policy, directory, routing, the request state machine,
//! grants and audit events. Nothing here does I/O, logs, or reads the clock; time is a parameter.

pub mod diagnostic;
pub mod directory;
pub mod duration;
pub mod ids;
pub mod policy;
