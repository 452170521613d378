//! [`SearchIndex`]: the tantivy index of the live catalog, opened (or
//! rebuilt from the store) in one directory, searched from any thread.
//!
//! The index is derived data: the store is the source of truth, and an
//! index that is missing, unreadable, of another schema version or ahead of
//! the store is rebuilt from it at open. A rebuild is written to a sibling
//! directory and swapped in whole, so a crash mid-rebuild leaves the old
//! index (or none), never half of a new one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mercato_engine::{Decimal, Engine, PAGE_LIMIT_MAX, PRODUCT_PRICE_SCALE_MAX, ProductId};
use rust_decimal::prelude::ToPrimitive;
use tantivy::directory::{Directory, INDEX_WRITER_LOCK, MmapDirectory};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};
use tokio::sync::watch;

use crate::collector::{Collected, SearchCollector, SegmentColumnsCache};
use crate::completions::Completions;
use crate::error::IndexError;
use crate::indexer::Indexer;
use crate::query::{Matching, QueryWords, search_query, suggest_query};
use crate::request::{
    Facets, SUGGEST_LIMIT_MAX, SearchHit, SearchRequest, SearchResults, Sort, SuggestRequest,
    Suggestion, SuggestionKind,
};
use crate::schema::{
    CommitPayload, Fields, SCHEMA_VERSION, has_word_starting_with, register_analyzers, schema,
};

/// The index's directory inside a data directory, beside the store:
/// `<data-dir>/search`.
pub const INDEX_DIRECTORY_NAME: &str = "search";

/// The writer's memory for a rebuild: segments are flushed when it fills.
const REBUILD_MEMORY_BYTES: usize = 64 << 20;

/// How far a rebuild has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Products written so far.
    pub indexed: u64,
    /// Products to write (counted when the rebuild started; products
    /// created since raise it).
    pub total: u64,
}

/// What a rebuild wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// Live products indexed.
    pub products: u64,
    /// The event log's head when the rebuild started: the indexer resumes
    /// after it (events after it may be in the index already; applying
    /// them again changes nothing).
    pub position: u64,
}

/// The search index of one store. Cheap to clone; searches run on any
/// thread and never wait for the indexer.
#[derive(Clone)]
pub struct SearchIndex {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) directory: PathBuf,
    pub(crate) engine: Engine,
    pub(crate) index: Index,
    /// Reloaded by the indexer after each of its commits, never by a timer.
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
    /// The last event whose effects searches see.
    pub(crate) indexed: watch::Sender<u64>,
    /// Names, brands and categories of the indexed products, for
    /// suggestions: kept in step by the indexer.
    pub(crate) completions: Completions,
    /// The fast-field columns by segment, opened once.
    pub(crate) columns: SegmentColumnsCache,
    /// Why open rebuilt the index, if it did.
    rebuilt_because: Option<String>,
}

/// An index opened as it is on disk.
struct Opened {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    position: u64,
}

impl SearchIndex {
    /// Opens the index in `directory` (see [`INDEX_DIRECTORY_NAME`]) over
    /// `engine`'s store, rebuilding it first when it is missing,
    /// unreadable, of another schema version, holds events the store does
    /// not have (a store restored from an older copy), or is so far behind
    /// that the store's retention removed events it has not applied. Start
    /// an [`Indexer`] to follow the store's changes.
    pub fn open(directory: impl AsRef<Path>, engine: &Engine) -> Result<SearchIndex, IndexError> {
        let directory = directory.as_ref().to_path_buf();
        let reason = match open_existing(&directory, engine) {
            Ok(opened) => return SearchIndex::new(directory, engine, opened, None),
            Err(reason) => reason,
        };
        tracing::warn!(directory = %directory.display(), %reason, "rebuilding the search index from the store");
        let report = SearchIndex::rebuild(&directory, engine, &mut |_| {})?;
        tracing::info!(
            products = report.products,
            position = report.position,
            "rebuilt the search index"
        );
        let opened = open_existing(&directory, engine).map_err(|error| IndexError::Io {
            context: format!("cannot open the rebuilt index at {}", directory.display()),
            source: std::io::Error::other(error),
        })?;
        SearchIndex::new(directory, engine, opened, Some(reason))
    }

    fn new(
        directory: PathBuf,
        engine: &Engine,
        opened: Opened,
        rebuilt_because: Option<String>,
    ) -> Result<SearchIndex, IndexError> {
        let (indexed, _) = watch::channel(opened.position);
        // From the store as it is now, which may be ahead of the index:
        // the indexer applies those events again, to both.
        let completions = Completions::default();
        let mut after = None;
        loop {
            let page = engine.list_products(None, after, PAGE_LIMIT_MAX)?;
            for product in &page.items {
                completions.upsert(product);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        completions.publish();
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                directory,
                engine: engine.clone(),
                index: opened.index,
                reader: opened.reader,
                fields: opened.fields,
                indexed,
                completions,
                columns: SegmentColumnsCache::default(),
                rebuilt_because,
            }),
        })
    }

    /// Writes the index of every live product of `engine`'s store into
    /// `directory` afresh, replacing what was there, and reports progress
    /// to `progress` after every page of products. Fails with
    /// [`IndexError::Busy`] while an [`Indexer`] holds the directory.
    pub fn rebuild(
        directory: impl AsRef<Path>,
        engine: &Engine,
        progress: &mut dyn FnMut(RebuildProgress),
    ) -> Result<RebuildReport, IndexError> {
        let directory = directory.as_ref();
        let parent = directory
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(IndexError::io(format!(
            "cannot create {}",
            parent.display()
        )))?;
        // Held until the new index is in place: no indexer may write the
        // old one meanwhile.
        let _lock = lock_existing(directory)?;
        let staging = sibling(directory, "rebuild");
        remove_if_present(&staging)?;
        fs::create_dir_all(&staging).map_err(IndexError::io(format!(
            "cannot create {}",
            staging.display()
        )))?;

        let index = Index::create_in_dir(&staging, schema())?;
        register_analyzers(&index);
        let fields = Fields::of(&index.schema())?;
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, REBUILD_MEMORY_BYTES)?;
        // The head first: whatever changes while the products are read is
        // after it, so the indexer applies it again after the rebuild.
        let position = engine.last_event_seq();
        let total = count_products(engine)?;
        let indexed = add_every_product(engine, &fields, &writer, None, total, progress)?;
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&CommitPayload::new(position).encode());
        commit.commit()?;
        writer.wait_merging_threads()?;
        drop(index);

        let old = sibling(directory, "old");
        remove_if_present(&old)?;
        if directory.exists() {
            fs::rename(directory, &old).map_err(IndexError::io(format!(
                "cannot move {} aside",
                directory.display()
            )))?;
        }
        fs::rename(&staging, directory).map_err(IndexError::io(format!(
            "cannot move the rebuilt index to {}",
            directory.display()
        )))?;
        sync_directory(parent)?;
        if let Err(error) = fs::remove_dir_all(&old)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, old = %old.display(), "cannot remove the replaced index");
        }
        Ok(RebuildReport {
            products: indexed,
            position,
        })
    }

    /// The directory the index lives in.
    pub fn directory(&self) -> &Path {
        &self.inner.directory
    }

    /// Why [`SearchIndex::open`] rebuilt the index, or `None` when it
    /// opened it as it was.
    pub fn rebuilt_because(&self) -> Option<&str> {
        self.inner.rebuilt_because.as_deref()
    }

    /// The last event whose effects searches see: every change the event
    /// log holds up to it is searchable.
    pub fn indexed_seq(&self) -> u64 {
        *self.inner.indexed.borrow()
    }

    /// Resolves once searches see every event up to `seq` (at once when
    /// they already do). Needs a running [`Indexer`] to make progress.
    pub async fn wait_for_seq(&self, seq: u64) {
        let mut indexed = self.inner.indexed.subscribe();
        // The sender lives as long as `self`, so this never fails.
        let _ = indexed.wait_for(|&indexed| indexed >= seq).await;
    }

    /// Documents (live products) the searches see.
    pub fn document_count(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// Starts the indexer: a thread that follows the store's event log from
    /// the index's last commit and keeps the index fresh. One per index;
    /// stop it with [`Indexer::stop`] before the engine shuts down.
    pub fn start_indexer(&self) -> Result<Indexer, IndexError> {
        Indexer::start(self.inner.clone())
    }

    /// Runs a search: see [`SearchRequest`]. Any query text is accepted.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, IndexError> {
        request.validate()?;
        let limit = request.effective_limit();
        let (price_min, price_max) = price_bounds(request.min_price, request.max_price);
        let collector = SearchCollector {
            columns: &self.inner.columns,
            sort: request.sort,
            keep: request.offset + limit,
            price_min,
            price_max,
            in_stock: request.in_stock,
        };
        let words = QueryWords::parse(&request.query);
        let category = request
            .category
            .as_deref()
            .filter(|value| !value.is_empty());
        let brand = request.brand.as_deref().filter(|value| !value.is_empty());
        let fields = &self.inner.fields;
        let searcher = self.inner.reader.searcher();
        let query = search_query(fields, &words, Matching::All, category, brand);
        let mut collected = searcher.search(&*query, &collector)?;
        if collected.total == 0 && words.len() > 1 {
            let query = search_query(fields, &words, Matching::Any, category, brand);
            collected = searcher.search(&*query, &collector)?;
        }
        let Collected {
            total,
            top,
            category,
            brand,
        } = collected;
        let page: Vec<_> = top.into_iter().skip(request.offset).take(limit).collect();
        let ids: Vec<ProductId> = page.iter().map(|ranked| ProductId(ranked.id)).collect();
        let hits = self
            .inner
            .engine
            .products(&ids)?
            .into_iter()
            .zip(&page)
            .filter_map(|(product, ranked)| {
                product.map(|product| SearchHit {
                    product,
                    score: ranked.score,
                })
            })
            .collect();
        Ok(SearchResults {
            hits,
            total,
            facets: Facets {
                category: Collected::facet(category),
                brand: Collected::facet(brand),
            },
        })
    }

    /// Completions of the last word of the request's text: categories and
    /// brands with a word starting with it (most products first, at most a
    /// quarter of the limit each unless products run short), then product
    /// names (best match first). The earlier words must match the products,
    /// as in a search.
    pub fn suggest(&self, request: &SuggestRequest) -> Result<Vec<Suggestion>, IndexError> {
        let limit = request.limit.min(SUGGEST_LIMIT_MAX);
        let words = QueryWords::parse(&request.query);
        let fields = &self.inner.fields;
        let (Some(query), Some(last)) = (
            suggest_query(fields, &words),
            words.words.last().and_then(|word| word.tokens.last()),
        ) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = last.text.as_str();
        let keep = limit * 4;
        let snapshot = self.inner.completions.snapshot();
        let mut labels = Vec::new();
        let mut products: Vec<Suggestion> = Vec::new();
        let add_product = |products: &mut Vec<Suggestion>, id: ProductId, name: &str| {
            let duplicate = products.iter().any(|suggestion| suggestion.text == name);
            if products.len() < limit && !duplicate {
                products.push(Suggestion {
                    text: name.to_owned(),
                    kind: SuggestionKind::Product,
                    product_id: Some(id),
                });
            }
        };
        if words.words.len() == 1 && words.words[0].tokens.len() == 1 {
            // One word: no search needed (see `completions`).
            let completed = snapshot.complete(prefix, keep);
            labels.push((SuggestionKind::Category, completed.categories));
            labels.push((SuggestionKind::Brand, completed.brands));
            for (id, name) in &completed.products {
                add_product(&mut products, *id, name);
            }
        } else {
            let collector = SearchCollector {
                columns: &self.inner.columns,
                sort: Sort::Relevance,
                keep,
                price_min: None,
                price_max: None,
                in_stock: false,
            };
            let collected = self.inner.reader.searcher().search(&*query, &collector)?;
            let mut analyzer = crate::schema::words_analyzer();
            let mut completes = |text: &str| has_word_starting_with(&mut analyzer, text, prefix);
            for (kind, counts) in [
                (SuggestionKind::Category, collected.category),
                (SuggestionKind::Brand, collected.brand),
            ] {
                let mut values: Vec<(String, u64)> = counts
                    .into_iter()
                    .filter(|(value, _)| completes(value))
                    .map(|(value, count)| (value.to_string(), count))
                    .collect();
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                labels.push((kind, values));
            }
            for ranked in &collected.top {
                if products.len() == limit {
                    break;
                }
                let id = ProductId(ranked.id);
                // The snapshot lags the reader by at most one commit.
                let name = match snapshot.name(id) {
                    Some(name) => name,
                    None => match self.inner.engine.product(id)? {
                        Some(product) => product.name.into(),
                        None => continue,
                    },
                };
                if completes(&name) {
                    add_product(&mut products, id, &name);
                }
            }
        }

        // Labels get a quarter of the room each, products the rest; room
        // one kind leaves goes to the others.
        let quota = (limit / 4).max(1);
        let mut label_room: Vec<usize> = labels
            .iter()
            .map(|(_, values)| values.len().min(quota))
            .collect();
        let product_room = products
            .len()
            .min(limit.saturating_sub(label_room.iter().sum()));
        let mut spare = limit - product_room - label_room.iter().sum::<usize>();
        for (room, (_, values)) in label_room.iter_mut().zip(&labels) {
            let more = values.len().saturating_sub(*room).min(spare);
            *room += more;
            spare -= more;
        }
        let mut suggestions = Vec::with_capacity(limit);
        for ((kind, values), room) in labels.into_iter().zip(label_room) {
            suggestions.extend(values.into_iter().take(room).map(|(value, _)| Suggestion {
                text: value,
                kind,
                product_id: None,
            }));
        }
        suggestions.extend(products.into_iter().take(product_room));
        assert!(suggestions.len() <= limit);
        Ok(suggestions)
    }
}

/// Opens the index in `directory` as it is, or says why it cannot be used
/// over `engine`'s store.
fn open_existing(directory: &Path, engine: &Engine) -> Result<Opened, String> {
    let head = engine.last_event_seq();
    let opened = open_at(directory, head)?;
    // Retention may have removed events the index has not applied (it
    // keeps no position in the store, so it does not hold them back).
    let next = engine
        .events_after(opened.position, 1)
        .map_err(|error| format!("cannot read the event log: {error}"))?;
    if let Some(first) = next.first()
        && first.seq != opened.position + 1
    {
        return Err(format!(
            "the log no longer holds the events after the index's position {} \
             (retention removed them up to {})",
            opened.position,
            first.seq - 1
        ));
    }
    Ok(opened)
}

/// Opens the index in `directory` as it is, or says why it cannot be used
/// with a store whose log ends at `head`.
fn open_at(directory: &Path, head: u64) -> Result<Opened, String> {
    if !directory.join("meta.json").is_file() {
        return Err(format!("no index in {}", directory.display()));
    }
    let index = Index::open_in_dir(directory).map_err(|error| format!("unreadable: {error}"))?;
    if index.schema() != schema() {
        return Err("the index has another schema".to_owned());
    }
    let metas = index
        .load_metas()
        .map_err(|error| format!("unreadable: {error}"))?;
    let payload = metas
        .payload
        .as_deref()
        .and_then(CommitPayload::decode)
        .ok_or_else(|| "the index's last commit names no position".to_owned())?;
    if payload.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "the index is of schema version {}, this build writes {SCHEMA_VERSION}",
            payload.schema_version
        ));
    }
    if payload.position > head {
        return Err(format!(
            "the index holds events up to {}, the store only up to {head}",
            payload.position
        ));
    }
    register_analyzers(&index);
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|error| format!("unreadable: {error}"))?;
    let fields = Fields::of(&index.schema()).map_err(|error| error.to_string())?;
    Ok(Opened {
        index,
        reader,
        fields,
        position: payload.position,
    })
}

/// The writer lock of the index in `directory`, when there is one.
fn lock_existing(
    directory: &Path,
) -> Result<Option<tantivy::directory::DirectoryLock>, IndexError> {
    if !directory.is_dir() {
        return Ok(None);
    }
    let mmap = MmapDirectory::open(directory).map_err(|error| IndexError::Io {
        context: format!("cannot open {}", directory.display()),
        source: std::io::Error::other(error),
    })?;
    match mmap.acquire_lock(&INDEX_WRITER_LOCK) {
        Ok(lock) => Ok(Some(lock)),
        Err(tantivy::directory::error::LockError::LockBusy) => {
            Err(IndexError::Busy(directory.display().to_string()))
        }
        Err(tantivy::directory::error::LockError::IoError(error)) => Err(IndexError::Io {
            context: format!("cannot lock {}", directory.display()),
            source: std::io::Error::new(error.kind(), error.to_string()),
        }),
    }
}

/// `search` → `search.<suffix>` beside it.
fn sibling(directory: &Path, suffix: &str) -> PathBuf {
    let mut name = directory
        .file_name()
        .map(|name| name.to_os_string())
        .unwrap_or_else(|| INDEX_DIRECTORY_NAME.into());
    name.push(".");
    name.push(suffix);
    directory.with_file_name(name)
}

fn remove_if_present(directory: &Path) -> Result<(), IndexError> {
    match fs::remove_dir_all(directory) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(IndexError::Io {
            context: format!("cannot remove {}", directory.display()),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Makes renames in `directory` durable.
fn sync_directory(directory: &Path) -> Result<(), IndexError> {
    #[cfg(unix)]
    {
        fs::File::open(directory)
            .and_then(|file| file.sync_all())
            .map_err(IndexError::io(format!(
                "cannot sync {}",
                directory.display()
            )))?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Adds a document for every live product of the store to `writer` (and
/// records it in `completions`), reporting progress after every page; how many.
pub(crate) fn add_every_product(
    engine: &Engine,
    fields: &Fields,
    writer: &IndexWriter<TantivyDocument>,
    completions: Option<&Completions>,
    total: u64,
    progress: &mut dyn FnMut(RebuildProgress),
) -> Result<u64, IndexError> {
    let mut indexed = 0u64;
    progress(RebuildProgress { indexed, total });
    let mut after = None;
    loop {
        let page = engine.list_products(None, after, PAGE_LIMIT_MAX)?;
        for product in &page.items {
            // No stock: archived since the page was read.
            if let Some(stock) = engine.stock(product.id)? {
                let (document, _) = crate::schema::document(fields, product, &stock);
                writer.add_document(document)?;
                if let Some(completions) = completions {
                    completions.upsert(product);
                }
                indexed += 1;
            }
        }
        progress(RebuildProgress {
            indexed,
            total: total.max(indexed),
        });
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(indexed),
        }
    }
}

fn count_products(engine: &Engine) -> Result<u64, IndexError> {
    let mut count = 0u64;
    let mut after = None;
    loop {
        let page = engine.list_products(None, after, PAGE_LIMIT_MAX)?;
        count += page.items.len() as u64;
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(count),
        }
    }
}

/// Inclusive price bounds in minor units: the lowest whole minor unit at
/// or above `min`, the highest at or below `max`. A `min` beyond any price
/// keeps nothing; a `max` beyond any price keeps everything.
fn price_bounds(min: Option<Decimal>, max: Option<Decimal>) -> (Option<u128>, Option<u128>) {
    let scale = Decimal::from(10u64.pow(PRODUCT_PRICE_SCALE_MAX));
    let min = min.map(|min| {
        min.checked_mul(scale)
            .and_then(|units| units.ceil().to_u128())
            .unwrap_or(u128::MAX)
    });
    let max = max.and_then(|max| {
        max.checked_mul(scale)
            .and_then(|units| units.floor().to_u128())
    });
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_bounds_round_inwards() {
        let bounds = |min: &str, max: &str| price_bounds(min.parse().ok(), max.parse().ok());
        assert_eq!(bounds("10", "20"), (Some(1000), Some(2000)));
        assert_eq!(bounds("9.999", "19.991"), (Some(1000), Some(1999)));
        assert_eq!(bounds("0", ""), (Some(0), None));
        let huge = "79228162514264337593543950335";
        assert_eq!(bounds(huge, huge), (Some(u128::MAX), None));
    }

    #[test]
    fn an_index_of_another_schema_version_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create_in_dir(dir.path(), schema()).unwrap();
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, 15 << 20).unwrap();
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(r#"{"schema_version":0,"position":0}"#);
        commit.commit().unwrap();
        drop(writer);
        let refused = open_at(dir.path(), 0).err().unwrap();
        assert!(refused.contains("schema version 0"), "{refused}");

        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, 15 << 20).unwrap();
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(&CommitPayload::new(3).encode());
        commit.commit().unwrap();
        drop(writer);
        assert!(
            open_at(dir.path(), 2)
                .err()
                .unwrap()
                .contains("only up to 2")
        );
        assert_eq!(open_at(dir.path(), 3).ok().unwrap().position, 3);
    }

    #[test]
    fn siblings_sit_beside_the_directory() {
        assert_eq!(
            sibling(Path::new("/data/search"), "rebuild"),
            Path::new("/data/search.rebuild")
        );
    }
}
