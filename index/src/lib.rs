//! Mercato's search index: relevance-ranked, typo-tolerant full-text
//! search over the live catalog, with facets, filters and completions.
//!
//! The index is a tantivy index in `<data-dir>/search`, derived from the
//! engine's store and always rebuildable from it. An [`Indexer`] follows
//! the engine's event log and keeps it fresh within a second; the position
//! it has applied is stored in each tantivy commit, with the documents, so
//! the two never disagree. This crate sits between the server and the
//! engine: `server → index → engine`.
//!
//! ```no_run
//! use mercato_engine::{Engine, EngineConfig};
//! use mercato_index::{INDEX_DIRECTORY_NAME, SearchIndex, SearchRequest, SuggestRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open(EngineConfig::new("./data/db"))?;
//! let index = SearchIndex::open(std::path::Path::new("./data/db").join(INDEX_DIRECTORY_NAME), &engine)?;
//! let indexer = index.start_indexer()?;
//! index.wait_for_seq(engine.last_event_seq()).await;
//! let results = index.search(&SearchRequest::new("wireless headphnes"))?;
//! for hit in &results.hits {
//!     println!("{} ({})", hit.product.name, hit.score);
//! }
//! let completions = index.suggest(&SuggestRequest::new("headp"))?;
//! # let _ = completions;
//! indexer.stop()?;
//! engine.shutdown();
//! # Ok(())
//! # }
//! ```

mod collector;
mod completions;
mod error;
mod index;
mod indexer;
mod query;
mod request;
mod schema;
mod tiers;

pub use error::IndexError;
pub use index::{INDEX_DIRECTORY_NAME, RebuildProgress, RebuildReport, SearchIndex};
pub use indexer::{
    COMMIT_INTERVAL_MIN, EVENTS_PER_COMMIT_MAX, INDEXER_CONSUMER, Indexer, POSITION_SAVE_INTERVAL,
};
pub use request::{
    FACET_VALUES_MAX, FacetCount, Facets, QUERY_LENGTH_MAX, QUERY_WORDS_MAX, SEARCH_LIMIT_DEFAULT,
    SEARCH_LIMIT_MAX, SEARCH_OFFSET_MAX, SUGGEST_LIMIT_DEFAULT, SUGGEST_LIMIT_MAX, SearchHit,
    SearchRequest, SearchResults, Sort, SuggestRequest, Suggestion, SuggestionKind,
};
