//! `mercato reindex`: rebuild the search index of a stopped server's store,
//! with a progress bar. The server also rebuilds it by itself at start when
//! it is missing, damaged or of another version; this is for doing it on
//! demand (say, after restoring a store from a backup).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use mercato_engine::{DATABASE_FILE_NAME, Engine, EngineConfig};
use mercato_index::{INDEX_DIRECTORY_NAME, SearchIndex};

/// `mercato reindex` flags.
#[derive(clap::Args, Debug)]
pub struct ReindexArgs {
    /// The data directory of the stopped server (the index is rebuilt in
    /// its `search` directory).
    #[arg(long, env = "MERCATO_DATA_DIR", default_value = "data/db")]
    pub data_dir: PathBuf,
    /// The store's currency, as given to `mercato serve`.
    #[arg(long, env = "MERCATO_CURRENCY", default_value = "USD")]
    pub currency: String,
}

/// Runs `mercato reindex`: 0 when the index was rebuilt, 2 when there is no
/// store, 1 on any other failure (the store is open in a running server,
/// a file cannot be written, ...).
pub fn reindex(args: ReindexArgs) -> ExitCode {
    if !args.data_dir.join(DATABASE_FILE_NAME).is_file() {
        eprintln!(
            "error: {} holds no store ({DATABASE_FILE_NAME})",
            args.data_dir.display()
        );
        return ExitCode::from(2);
    }
    let mut config = EngineConfig::new(&args.data_dir);
    config.currency = args.currency;
    let engine = match Engine::open(config) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("error: cannot open the store (is a server running on it?): {error}");
            return ExitCode::FAILURE;
        }
    };
    let directory = args.data_dir.join(INDEX_DIRECTORY_NAME);
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "indexing {bar:40} {pos}/{len} products ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    let started = Instant::now();
    let rebuilt = SearchIndex::rebuild(&directory, &engine, &mut |progress| {
        bar.set_length(progress.total);
        bar.set_position(progress.indexed);
    });
    bar.finish_and_clear();
    engine.shutdown();
    match rebuilt {
        Ok(report) => {
            println!(
                "rebuilt the search index in {}: {} products, up to event {}, in {:.1?}",
                directory.display(),
                report.products,
                report.position,
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot rebuild the search index: {error}");
            ExitCode::FAILURE
        }
    }
}
