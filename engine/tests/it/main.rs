//! The engine's integration tests: only the public API, as an embedder uses it.

mod basics;
mod carts;
mod checkout;
mod checkout_crash;
mod contention;
mod crash;
mod faults;
mod full_disk;
mod model;
mod notifications;
mod orders;
mod powerloss;
mod replication;
mod retention;
mod support;
mod upsert;
