//! What a search asks and what it answers, with the limits on both.

use mercato_engine::{Decimal, Product, ProductId};

use crate::error::IndexError;

/// Hits per page when a request does not say.
pub const SEARCH_LIMIT_DEFAULT: usize = 20;
/// The most hits per page; larger limits are clamped to it.
pub const SEARCH_LIMIT_MAX: usize = 100;
/// The furthest a search pages: offsets beyond it are refused. Ranked
/// results are made in one pass that keeps `offset + limit` hits.
pub const SEARCH_OFFSET_MAX: usize = 10_000;
/// The longest query read, in bytes: the rest of a longer one is ignored
/// (cut at a character boundary).
pub const QUERY_LENGTH_MAX: usize = 1_024;
/// The most query words read (after analysis: `usb-c` is two); the rest
/// are ignored. Each word becomes a dozen term lookups, so this bounds the
/// cost of a query.
pub const QUERY_WORDS_MAX: usize = 10;
/// Suggestions when a request does not say.
pub const SUGGEST_LIMIT_DEFAULT: usize = 8;
/// The most suggestions; larger limits are clamped to it.
pub const SUGGEST_LIMIT_MAX: usize = 20;
/// The most values listed per facet (the most frequent first).
pub const FACET_VALUES_MAX: usize = 100;

const _: () = assert!(SEARCH_LIMIT_DEFAULT <= SEARCH_LIMIT_MAX);
const _: () = assert!(SUGGEST_LIMIT_DEFAULT <= SUGGEST_LIMIT_MAX);
const _: () = assert!(SUGGEST_LIMIT_MAX <= SEARCH_LIMIT_MAX);

/// The order of the hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sort {
    /// Best match first (ties: lower id first). Browsing (no query) lists
    /// by id.
    #[default]
    Relevance,
    /// Cheapest first (ties: best match, then lower id).
    PriceAscending,
    /// Dearest first (ties: best match, then lower id).
    PriceDescending,
    /// Most recently created first (ties: higher id first).
    Newest,
}

impl Sort {
    /// The name the HTTP API uses: `relevance`, `price_asc`, `price_desc`,
    /// `newest`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::PriceAscending => "price_asc",
            Sort::PriceDescending => "price_desc",
            Sort::Newest => "newest",
        }
    }

    /// The sort named `name` (see [`Sort::as_str`]).
    pub fn from_name(name: &str) -> Option<Sort> {
        [
            Sort::Relevance,
            Sort::PriceAscending,
            Sort::PriceDescending,
            Sort::Newest,
        ]
        .into_iter()
        .find(|sort| sort.as_str() == name)
    }
}

/// A search: full-text `query` (empty: browse) and filters, all combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchRequest {
    /// The words to find. Any text is accepted: it is split into words,
    /// never parsed as a query language. See [`QUERY_LENGTH_MAX`] and
    /// [`QUERY_WORDS_MAX`].
    pub query: String,
    /// Only this category (exact value, as facets list it).
    pub category: Option<String>,
    /// Only this brand (exact value, as facets list it).
    pub brand: Option<String>,
    /// Only prices at or above this.
    pub min_price: Option<Decimal>,
    /// Only prices at or below this.
    pub max_price: Option<Decimal>,
    /// Only products whose `available` stock is above 0.
    pub in_stock: bool,
    /// The order of the hits.
    pub sort: Sort,
    /// Hits per page, clamped to [`SEARCH_LIMIT_MAX`]; 0 answers only the
    /// total and the facets.
    pub limit: usize,
    /// Hits to skip, at most [`SEARCH_OFFSET_MAX`].
    pub offset: usize,
}

impl Default for SearchRequest {
    fn default() -> SearchRequest {
        SearchRequest {
            query: String::new(),
            category: None,
            brand: None,
            min_price: None,
            max_price: None,
            in_stock: false,
            sort: Sort::Relevance,
            limit: SEARCH_LIMIT_DEFAULT,
            offset: 0,
        }
    }
}

impl SearchRequest {
    /// A search for `query` with no filters.
    pub fn new(query: impl Into<String>) -> SearchRequest {
        SearchRequest {
            query: query.into(),
            ..SearchRequest::default()
        }
    }

    /// Refuses what no search can answer: an offset past
    /// [`SEARCH_OFFSET_MAX`], a negative price bound.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.offset > SEARCH_OFFSET_MAX {
            return Err(IndexError::invalid(
                "offset",
                format!("must be at most {SEARCH_OFFSET_MAX}"),
            ));
        }
        for (field, bound) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if bound.is_some_and(|price| price.is_sign_negative() && !price.is_zero()) {
                return Err(IndexError::invalid(field, "must not be negative"));
            }
        }
        Ok(())
    }

    /// The page size actually used.
    pub fn effective_limit(&self) -> usize {
        self.limit.min(SEARCH_LIMIT_MAX)
    }
}

/// One hit: the product as the store holds it now, and its score.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    /// The product, read from the engine when the search ran.
    pub product: Product,
    /// Its relevance to the query (higher is better; 1 when browsing).
    /// Comparable only within one search.
    pub score: f32,
}

/// How many matches have one value of a facet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacetCount {
    /// The category or brand.
    pub value: String,
    /// The matches with it, over the whole result set.
    pub count: u64,
}

/// Facet counts over every match (not only the page): most frequent first,
/// ties by value, at most [`FACET_VALUES_MAX`] each. Products with an empty
/// category or brand are not counted under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facets {
    /// By category.
    pub category: Vec<FacetCount>,
    /// By brand.
    pub brand: Vec<FacetCount>,
}

/// A page of results.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResults {
    /// The page of hits. A product archived since the index last committed
    /// is left out of the page (so a page may fall one short of `limit`
    /// for a moment).
    pub hits: Vec<SearchHit>,
    /// The exact number of matches.
    pub total: u64,
    /// Counts by category and brand over every match.
    pub facets: Facets,
}

/// A request for completions of the last word of `query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuggestRequest {
    /// What has been typed so far; the earlier words narrow the products.
    pub query: String,
    /// The most suggestions, clamped to [`SUGGEST_LIMIT_MAX`].
    pub limit: usize,
}

impl SuggestRequest {
    /// Completions of `query`, [`SUGGEST_LIMIT_DEFAULT`] of them at most.
    pub fn new(query: impl Into<String>) -> SuggestRequest {
        SuggestRequest {
            query: query.into(),
            limit: SUGGEST_LIMIT_DEFAULT,
        }
    }

    /// Whether completing this searches the index (several words typed:
    /// the earlier ones must match), which takes up to milliseconds and
    /// belongs on a blocking thread. One word is completed from a table in
    /// memory in microseconds, fine to run on an async task.
    pub fn needs_search(&self) -> bool {
        if self.limit == 0 {
            return false;
        }
        let words = crate::query::QueryWords::parse(&self.query);
        match words.words.as_slice() {
            [] => false,
            [word] => word.tokens.len() > 1,
            [.., last] => !last.tokens.is_empty(),
        }
    }
}

/// What a suggestion completes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SuggestionKind {
    /// A product's name.
    Product,
    /// A category.
    Category,
    /// A brand.
    Brand,
}

impl SuggestionKind {
    /// `product`, `category` or `brand`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SuggestionKind::Product => "product",
            SuggestionKind::Category => "category",
            SuggestionKind::Brand => "brand",
        }
    }
}

/// One completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// The text to show (a product name, a category, a brand).
    pub text: String,
    /// What it is.
    pub kind: SuggestionKind,
    /// The product, for [`SuggestionKind::Product`].
    pub product_id: Option<ProductId>,
}
