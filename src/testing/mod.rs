//! Test support shared by the unit tests, the integration tests (tests/it), the benches and the
//! fuzz crate. Compiled only for them: behind `cfg(test)` or the `testing` feature, which the
//! release binary never has.

pub mod tls;
