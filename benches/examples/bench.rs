//! `mercato bench` without the `mercato` binary: the same command line, for
//! working on the benchmarks while the server crate does not build, or
//! against a server binary built elsewhere (`--server-bin`).
//!
//! `cargo run --release -p mercato-benches --example bench -- reserve --server-bin target/release/mercato`

use clap::Parser;
use mercato_benches::cli::{self, BenchArgs};

#[derive(Parser)]
#[command(name = "bench", about = "Mercato's reservation benchmarks")]
struct Command {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() -> std::process::ExitCode {
    cli::run(Command::parse().args)
}
