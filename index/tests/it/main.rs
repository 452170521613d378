//! The search index's integration tests, through the public API only: a
//! small fixed catalog searched every way, and an indexer following a live
//! engine through changes, restarts and damage.

mod freshness;
mod search;
mod support;
