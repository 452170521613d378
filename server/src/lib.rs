//! Mercato's HTTP server.
