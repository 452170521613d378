//! The server's integration tests: the router in process, a real socket,
//! and the real binary killed and restarted.

mod authz;
mod binary;
mod carts;
mod connections;
mod full_disk;
mod hostile;
mod notifications;
mod orders;
mod payments;
mod routes;
mod search;
mod support;
