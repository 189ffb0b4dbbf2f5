//! The tests every backend must pass, each taking the backend to open its store on.

pub mod approvers;
pub mod audit;
pub mod backup;
pub mod cards;
pub mod commits;
pub mod concurrency;
pub mod outbox;
pub mod portal;

pub use gatehouse::store::{Commit, Expect, RequestWrite, Sequence, Store, StoreError};

pub use super::backends::Backend;
pub use super::records::*;
