//! The wasmtime side: engine, component loading, the sandboxed store and the
//! connector's imports.

pub mod bindings;
pub mod component;
mod convert;
pub mod engine;
mod host;
mod output;
mod session;

pub use component::{COMPONENT_ENV, WIT_PACKAGE, WIT_VERSION, cache_dir, locate_component};
pub use convert::guest_config;
pub use host::SinkStats;
pub use session::{LoadedComponent, Session, SessionParts};
