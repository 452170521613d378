//! The server's integration tests: the router in process, a real socket,
//! the real binary killed and restarted, catalog files imported and exported,
//! a short soak.

mod authz;
mod binary;
mod browser;
mod carts;
mod catalog_files;
mod connections;
mod full_disk;
mod fuzz;
mod hostile;
mod notifications;
mod orders;
mod payments;
mod replication;
mod routes;
mod schemathesis;
mod search;
mod soak;
mod streams;
mod support;
