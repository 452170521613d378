//! Search: ranked, typo-tolerant full-text search with facets and filters,
//! and completions as one types, over the search index (`mercato-index`).

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mercato_engine::Decimal;
use mercato_index::{
    IndexError, QUERY_LENGTH_MAX, SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX, SEARCH_OFFSET_MAX,
    SUGGEST_LIMIT_DEFAULT, SUGGEST_LIMIT_MAX, SearchIndex, SearchRequest, Sort, SuggestRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::products::ProductBody;
use crate::extract::ApiQuery;
use crate::money::parse_money;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// Search parameters. Every one is optional, and they combine.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// Words to find in names, descriptions, brands, categories and SKUs,
    /// case and accents folded, English stems, with typos (one from 5
    /// letters, two from 9, a typo on the first letter counting as two,
    /// none in numbers or SKUs) and the last word also as a prefix unless
    /// the text ends with a space. Every word must match; when no product
    /// has them all, products with any of them are listed, those with more
    /// first. Any text is accepted and never parsed as a query language;
    /// only the first 1024 bytes and 10 words are read, the rest ignored.
    /// Empty or absent: browse with the filters.
    q: Option<String>,
    /// Only this category (exact value, as the facets list it).
    category: Option<String>,
    /// Only this brand (exact value, as the facets list it).
    brand: Option<String>,
    /// Only prices at or above this amount (a decimal string with at most
    /// the store's decimal places, as prices are written).
    #[param(value_type = Option<String>, example = "10.00", format = "money")]
    min_price: Option<String>,
    /// Only prices at or below this amount.
    #[param(value_type = Option<String>, example = "99.99", format = "money")]
    max_price: Option<String>,
    /// `true`: only products whose `available` stock is above 0. `false`
    /// (the default) filters nothing.
    #[param(value_type = Option<bool>)]
    in_stock: Option<String>,
    /// `relevance` (default; browsing lists by id), `price_asc`,
    /// `price_desc` or `newest`.
    #[param(
        value_type = Option<String>,
        example = "relevance",
        pattern = r"^(relevance|price_asc|price_desc|newest)?$"
    )]
    sort: Option<String>,
    /// Hits per page: default 20, larger values are clamped to 100; 0
    /// answers only `total` and `facets`.
    #[param(value_type = Option<u64>, minimum = 0)]
    limit: Option<String>,
    /// Hits to skip, 0 to 10000.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 10000)]
    offset: Option<String>,
}

/// Completion parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct SuggestParams {
    /// What has been typed: its last word is completed; the words before it
    /// must match the products suggested.
    q: Option<String>,
    /// The most suggestions: default 8, larger values are clamped to 20.
    #[param(value_type = Option<u64>, minimum = 0)]
    limit: Option<String>,
}

/// A hit: the product (as `GET /api/v1/products/{id}` answers it) and its
/// score.
#[derive(Serialize, ToSchema)]
pub(crate) struct SearchHitBody {
    #[serde(flatten)]
    product: ProductBody,
    /// Relevance to the query, higher is better; comparable only within one
    /// search. 1 when browsing.
    score: f32,
}

/// How many matches have one value.
#[derive(Serialize, ToSchema)]
pub(crate) struct FacetCountBody {
    value: String,
    count: u64,
}

/// Counts over every match (not only the page), most frequent first, at
/// most 100 values each. Products with an empty category or brand are not
/// counted under it.
#[derive(Serialize, ToSchema)]
pub(crate) struct FacetsBody {
    category: Vec<FacetCountBody>,
    brand: Vec<FacetCountBody>,
}

/// A page of search results.
#[derive(Serialize, ToSchema)]
pub(crate) struct SearchBody {
    hits: Vec<SearchHitBody>,
    /// The exact number of matches.
    total: u64,
    facets: FacetsBody,
    /// Time the search took in the server, in whole milliseconds.
    took_ms: u64,
}

/// What a suggestion completes to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SuggestionKindBody {
    Product,
    Category,
    Brand,
}

/// One completion.
#[derive(Serialize, ToSchema)]
pub(crate) struct SuggestionBody {
    /// A product name, a category or a brand.
    text: String,
    kind: SuggestionKindBody,
    /// The product, for `kind` `product`.
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<u64>,
}

/// Completions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SuggestBody {
    items: Vec<SuggestionBody>,
}

fn index_error(error: IndexError) -> ApiError {
    match error {
        IndexError::InvalidRequest { field, message } => ApiError::invalid(&field, message),
        IndexError::Engine(error) => error.into(),
        other => ApiError::internal(other),
    }
}

fn attached(state: &AppState) -> Result<SearchIndex, ApiError> {
    state.search_index().cloned().ok_or_else(|| {
        if state.is_search_required() {
            ApiError::new(
                "search_unavailable",
                "the search index is not open yet; retry shortly",
            )
        } else {
            ApiError::new(
                "search_unavailable",
                "this server has no search index (it runs with --no-search, or is \
                 embedded without one)",
            )
        }
    })
}

/// A count parameter: a whole number up to `u64::MAX`; values too large
/// for any use are clamped by the caller like any other large value.
fn count(field: &str, value: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field,
            "must be a whole number, 0 or more",
        ));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| ApiError::invalid(field, format!("must be at most {}", u64::MAX)))
}

/// A price bound: money as every request spells it (digits, an optional
/// point and at most the store's decimals), see `crate::money`.
fn price(field: &str, value: Option<&str>) -> Result<Option<Decimal>, ApiError> {
    value
        .map(|value| parse_money(value).map_err(|message| ApiError::invalid(field, message)))
        .transpose()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

impl SearchParams {
    fn into_request(self) -> Result<SearchRequest, ApiError> {
        let sort = match self.sort.as_deref() {
            None | Some("") => Sort::Relevance,
            Some(name) => Sort::from_name(name).ok_or_else(|| {
                ApiError::invalid("sort", "must be relevance, price_asc, price_desc or newest")
            })?,
        };
        let in_stock = match self.in_stock.as_deref() {
            None | Some("") | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(ApiError::invalid("in_stock", "must be true or false")),
        };
        let limit = count("limit", self.limit.as_deref())?
            .map_or(SEARCH_LIMIT_DEFAULT as u64, |limit| {
                limit.min(SEARCH_LIMIT_MAX as u64)
            });
        let offset = count("offset", self.offset.as_deref())?.unwrap_or(0);
        if offset > SEARCH_OFFSET_MAX as u64 {
            return Err(ApiError::invalid(
                "offset",
                format!("must be at most {SEARCH_OFFSET_MAX}"),
            ));
        }
        let min_price = price("min_price", self.min_price.as_deref())?;
        let max_price = price("max_price", self.max_price.as_deref())?;
        let mut query = self.q.unwrap_or_default();
        // The index reads no more; cut here so no more is carried around.
        if query.len() > QUERY_LENGTH_MAX * 4 {
            let mut end = QUERY_LENGTH_MAX * 4;
            while !query.is_char_boundary(end) {
                end -= 1;
            }
            query.truncate(end);
        }
        let request = SearchRequest {
            query,
            category: non_empty(self.category),
            brand: non_empty(self.brand),
            min_price,
            max_price,
            in_stock,
            sort,
            limit: limit as usize,
            offset: offset as usize,
        };
        request.validate().map_err(index_error)?;
        Ok(request)
    }
}

/// Search the catalog.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "A page of hits, the exact total and facet counts over every match", body = SearchBody),
        (status = 400, description = "A parameter is malformed or out of range (`invalid_request`, `field` names it)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The search index is not open yet (`search_unavailable`), or the server is stopping (`shutting_down`); `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Response, ApiError> {
    let request = params.into_request()?;
    let index = attached(&state)?;
    let started = Instant::now();
    // The answer is written out on the blocking pool too: a page of
    // products is tens of KB of JSON, work the runtime's thread (one, on
    // two cores) need not do.
    let body = tokio::task::spawn_blocking(move || {
        let results = index.search(&request)?;
        let took_ms = started.elapsed().as_millis() as u64;
        let facet = |counts: Vec<mercato_index::FacetCount>| {
            counts
                .into_iter()
                .map(|facet| FacetCountBody {
                    value: facet.value,
                    count: facet.count,
                })
                .collect()
        };
        let body = SearchBody {
            hits: results
                .hits
                .into_iter()
                .map(|hit| SearchHitBody {
                    product: hit.product.into(),
                    score: hit.score,
                })
                .collect(),
            total: results.total,
            facets: FacetsBody {
                category: facet(results.facets.category),
                brand: facet(results.facets.brand),
            },
            took_ms,
        };
        Ok::<_, IndexError>(serde_json::to_vec(&body).expect("answers serialize"))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(index_error)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Complete the last word typed: categories and brands with a word that
/// starts with it (most products first, up to a quarter of `limit` each
/// unless product names run short), then product names (best match first).
#[utoipa::path(get, path = "/api/v1/search/suggest", tag = "search", params(SuggestParams),
    responses(
        (status = 200, description = "Completions, at most `limit`", body = SuggestBody),
        (status = 400, description = "`limit` is malformed (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The search index is not open yet (`search_unavailable`), or the server is stopping (`shutting_down`); `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn suggest(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SuggestParams>,
) -> Result<Json<SuggestBody>, ApiError> {
    let limit = count("limit", params.limit.as_deref())?
        .map_or(SUGGEST_LIMIT_DEFAULT as u64, |limit| {
            limit.min(SUGGEST_LIMIT_MAX as u64)
        });
    let mut query = params.q.unwrap_or_default();
    if query.len() > QUERY_LENGTH_MAX * 4 {
        let mut end = QUERY_LENGTH_MAX * 4;
        while !query.is_char_boundary(end) {
            end -= 1;
        }
        query.truncate(end);
    }
    let index = attached(&state)?;
    let request = SuggestRequest {
        query,
        limit: limit as usize,
    };
    // One word is completed from memory in microseconds: no thread hop.
    let suggestions = if request.needs_search() {
        tokio::task::spawn_blocking(move || index.suggest(&request))
            .await
            .map_err(ApiError::internal)?
    } else {
        index.suggest(&request)
    }
    .map_err(index_error)?;
    Ok(Json(SuggestBody {
        items: suggestions
            .into_iter()
            .map(|suggestion| SuggestionBody {
                text: suggestion.text,
                kind: match suggestion.kind {
                    mercato_index::SuggestionKind::Product => SuggestionKindBody::Product,
                    mercato_index::SuggestionKind::Category => SuggestionKindBody::Category,
                    _ => SuggestionKindBody::Brand,
                },
                product_id: suggestion.product_id.map(|id| id.0),
            })
            .collect(),
    }))
}
