//! Mercato's reservation benchmarks.
//!
//! The public surface is [`cli`], the `mercato bench` command line, which
//! the `mercato` binary exposes. Behind it:
//!
//! - a load generator over lean keep-alive HTTP/1.1 connections (closed or
//!   open loop, HdrHistogram latencies), with a zero-oversell check against
//!   the server's own stock figures;
//! - the comparison with the textbook PostgreSQL design
//!   (`benches/postgres/run.sh`), run back to back on the same machine;
//! - the restart benchmark: `Engine::open` after a crash or a clean stop,
//!   against the store's size, with a warm and a cold page cache;
//! - the search benchmark: index build, query latency and throughput per
//!   query type, update-to-visible under reservations, and the indexer's
//!   cost to the reservation path (`benches/postgres/search.sh` is its
//!   PostgreSQL side);
//! - the soak: hours of mixed load at half the peak, sampling the server's
//!   memory, descriptors, data directory and latency, with a verdict on
//!   their growth and an SVG of the curves.
//!
//! The in-process engine benchmark is `benches/reserve.rs` (criterion) and
//! the latency-versus-throughput plot is the `plot` binary (feature `plot`).

pub mod cli;

mod checkout;
mod client;
mod compare;
mod load;
mod reserve;
mod restart;
mod search;
mod server;
mod soak;

/// Errors of a benchmark run: each one ends the run with a message.
type Error = Box<dyn std::error::Error + Send + Sync>;
