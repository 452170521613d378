//! [`IndexError`]: everything that can go wrong in the search index, each
//! with a stable [`IndexError::code`] the server maps to an HTTP status.

/// An error of the search index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A request parameter is out of range; `field` names it.
    #[error("{field}: {message}")]
    InvalidRequest {
        /// The parameter, as the HTTP API names it (`offset`, `min_price`, ...).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The engine failed a read the index needed.
    #[error("the store: {0}")]
    Engine(#[from] mercato_engine::Error),
    /// tantivy failed: a file of the index is unreadable or cannot be
    /// written. Reopening rebuilds an unreadable index.
    #[error("the search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// A file system operation on the index directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Another indexer holds the index directory (one writer per directory).
    #[error("another indexer holds the search index at {0}")]
    Busy(String),
    /// The indexer thread stopped with a panic.
    #[error("the indexer thread panicked")]
    IndexerPanicked,
}

impl IndexError {
    /// A stable snake_case code: `invalid_request`, `index_busy`,
    /// `index_error` (tantivy, files, a panicked indexer), or the engine
    /// error's own code.
    pub fn code(&self) -> &'static str {
        match self {
            IndexError::InvalidRequest { .. } => "invalid_request",
            IndexError::Engine(error) => error.code(),
            IndexError::Busy(_) => "index_busy",
            IndexError::Tantivy(_) | IndexError::Io { .. } | IndexError::IndexerPanicked => {
                "index_error"
            }
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> IndexError {
        IndexError::InvalidRequest {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> IndexError {
        let context = context.into();
        move |source| IndexError::Io { context, source }
    }
}
