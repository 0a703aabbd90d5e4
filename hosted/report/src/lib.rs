//! What Atoll's hosted benchmarks share: their command line ([`args`]),
//! order statistics ([`stats`]), the
//! machine a run used ([`machine`]), SVG plots ([`report`]) and the result
//! files ([`output`]).
//!
//! The benchmarks (`hosted/benches/urpc` and `hosted/benches/scaling`, run
//! by `cargo xtask bench <name>`) depend on it as a dev-dependency, so that
//! `cargo test` builds none of their code. It depends on `plotters` (SVG
//! backend only) and `serde_json`.

pub mod args;
pub mod machine;
pub mod output;
pub mod report;
pub mod stats;
