//! The end-to-end tests: the real component in the real host against the
//! simulator over loopback. One module per concern; run one with
//! `cargo test -p tests --test e2e <module>::`.

mod batching;
mod cli;
mod download;
mod faults;
mod feed;
mod filters;
mod full_sync;
mod incremental;
mod kill;
mod least_privilege;
mod pacing;
mod permissions;
mod postgres;
mod real;
mod sandbox;
mod scenario;
mod schedule;
mod workers;
