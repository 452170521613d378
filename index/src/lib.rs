//! Mercato's search index.
//!
//! The index follows the engine's event log and can always be rebuilt from
//! the engine's store, which is the source of truth. This crate sits between
//! the server and the engine: `server → index → engine`.

pub use mercato_engine as engine;
