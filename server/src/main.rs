//! The `mercato` command line.

fn main() {}
