//! [`Indexer`]: the thread that keeps the index fresh by following the
//! store's event log.
//!
//! It reads events from the position of the index's last commit (consumer
//! `search`), gathers them for at least [`COMMIT_INTERVAL_MIN`] since the
//! previous commit, and looks once per batch at each product they concern,
//! whatever its events. A product touched only by stock events (most of
//! them: every reservation is one) needs only its stock read, compared
//! with the document's `in_stock`; the product itself is read, its
//! document made and compared by fingerprint only after a catalog event or
//! when `in_stock` flipped. A document is rewritten only when something a
//! search sees changed: most inventory events change nothing visible. Then one commit carries
//! the documents and the new position (tantivy's commit payload), and the
//! reader is reloaded at once. Batches that change nothing only move the
//! position in memory; it is committed every [`POSITION_SAVE_INTERVAL`]
//! and at stop. After a crash the indexer resumes from the last commit and
//! applies those events again, which changes nothing.
//!
//! The index keeps no position in the store, so it does not hold back the
//! engine's event retention: should events it has not applied be removed
//! (an index a month behind), the gap in the sequence numbers is noticed
//! and every document is written afresh from the store, in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mercato_engine::{Event, EventEnvelope, PAGE_LIMIT_MAX, ProductId, Subscription};
use tantivy::columnar::Column;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, IndexWriter, Searcher, SegmentReader, TERMINATED, TantivyDocument, Term};
use tokio::sync::watch;

use crate::error::IndexError;
use crate::index::{Inner, add_every_product};
use crate::schema::{CommitPayload, FINGERPRINT_COLUMN, Fields, IN_STOCK, document};

/// The consumer name the indexer reads the log as.
pub const INDEXER_CONSUMER: &str = "search";
/// The shortest time between two commits: events meanwhile are gathered
/// into one commit. Well under the one second the contract allows.
pub const COMMIT_INTERVAL_MIN: Duration = Duration::from_millis(400);
/// The longest a position moved by batches that changed nothing stays
/// uncommitted.
pub const POSITION_SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// The most events gathered into one commit.
pub const EVENTS_PER_COMMIT_MAX: usize = 50_000;
/// Pause after a failure (a read of the store, a commit), before retrying
/// from the last commit.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The indexer's writer memory.
const WRITER_MEMORY_BYTES: usize = 32 << 20;

const _: () = assert!(EVENTS_PER_COMMIT_MAX >= PAGE_LIMIT_MAX);

/// The running indexer. Stop it with [`Indexer::stop`] (dropping it stops
/// it too, and waits).
pub struct Indexer {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), IndexError>>>,
}

impl Indexer {
    pub(crate) fn start(inner: Arc<Inner>) -> Result<Indexer, IndexError> {
        let writer: IndexWriter<TantivyDocument> = inner
            .index
            .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
            .map_err(|error| match error {
                tantivy::TantivyError::LockFailure(..) => {
                    IndexError::Busy(inner.directory.display().to_string())
                }
                other => IndexError::Tantivy(other),
            })?;
        let position = *inner.indexed.borrow();
        let subscription = inner.engine.subscribe_after(INDEXER_CONSUMER, position)?;
        let (stop, stopped) = watch::channel(false);
        let run = Run {
            inner,
            writer,
            subscription,
            stopped,
            position,
            committed: position,
            last_commit: Instant::now() - COMMIT_INTERVAL_MIN,
        };
        let thread = std::thread::Builder::new()
            .name("mercato-search".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(IndexError::io("cannot start the indexer's runtime"))?;
                runtime.block_on(run.run())
            })
            .map_err(IndexError::io("cannot start the indexer thread"))?;
        Ok(Indexer {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the indexer after the batch in hand, commits its position,
    /// and waits for its thread. The error is the one that stopped it, if
    /// any.
    pub fn stop(mut self) -> Result<(), IndexError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), IndexError> {
        self.stop.send_replace(true);
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| IndexError::IndexerPanicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        if let Err(error) = self.stop_and_join() {
            tracing::error!(%error, "the search indexer stopped with an error");
        }
    }
}

struct Run {
    inner: Arc<Inner>,
    writer: IndexWriter<TantivyDocument>,
    subscription: Subscription,
    stopped: watch::Receiver<bool>,
    /// The last event applied (committed or not).
    position: u64,
    /// The position in the index's last commit.
    committed: u64,
    last_commit: Instant,
}

/// Products to refresh and where the events end.
struct Gathered {
    /// Each product the events concern, and whether any of them was a
    /// catalog event (anything but a stock change).
    products: BTreeMap<ProductId, bool>,
    events: usize,
    last: Option<u64>,
    /// The seq the next event must have.
    next: u64,
    /// Events were missing: retention removed them before they were
    /// applied (the index keeps no position in the store to hold them).
    gap: bool,
}

impl Gathered {
    fn after(position: u64) -> Gathered {
        Gathered {
            products: BTreeMap::new(),
            events: 0,
            last: None,
            next: position + 1,
            gap: false,
        }
    }

    fn add(&mut self, events: Vec<EventEnvelope>) {
        for envelope in events {
            if envelope.seq != self.next {
                self.gap = true;
                return;
            }
            let catalog = !changes_only_stock(&envelope.event);
            for product_id in envelope.event.product_ids() {
                *self.products.entry(product_id).or_default() |= catalog;
            }
            self.events += 1;
            self.last = Some(envelope.seq);
            self.next = envelope.seq + 1;
        }
    }
}

impl Run {
    async fn run(mut self) -> Result<(), IndexError> {
        loop {
            if *self.stopped.borrow() {
                break;
            }
            let unsaved = self.committed < self.position;
            let batch = tokio::select! {
                _ = self.stopped.changed() => break,
                batch = self.subscription.next_batch(PAGE_LIMIT_MAX) => batch,
                () = tokio::time::sleep(POSITION_SAVE_INTERVAL), if unsaved => {
                    if let Err(error) = self.commit(self.position) {
                        self.recover(error).await;
                    }
                    continue;
                }
            };
            let events = match batch {
                Ok(events) => events,
                Err(mercato_engine::Error::ShuttingDown) => break,
                Err(error) => {
                    self.recover(error.into()).await;
                    continue;
                }
            };
            let mut gathered = Gathered::after(self.position);
            gathered.add(events);
            // Gather until the commit interval has passed, then take
            // whatever else is there.
            let wait = COMMIT_INTERVAL_MIN.saturating_sub(self.last_commit.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    _ = self.stopped.changed() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let result = self.gather_more(&mut gathered).and_then(|()| {
                if gathered.gap {
                    self.rebuild_in_place()
                } else {
                    self.apply(&gathered)
                }
            });
            if let Err(error) = result {
                self.recover(error).await;
            }
        }
        if self.committed < self.position {
            self.commit(self.position)?;
        }
        tracing::debug!(position = self.position, "search indexer stopped");
        Ok(())
    }

    fn gather_more(&mut self, gathered: &mut Gathered) -> Result<(), IndexError> {
        while gathered.events < EVENTS_PER_COMMIT_MAX && !gathered.gap {
            let events = self.subscription.try_next_batch(PAGE_LIMIT_MAX)?;
            if events.is_empty() {
                break;
            }
            gathered.add(events);
        }
        Ok(())
    }

    /// Rewrites the documents that changed, commits them with the position
    /// when any did, and publishes the position.
    fn apply(&mut self, gathered: &Gathered) -> Result<(), IndexError> {
        let Some(last) = gathered.last else {
            return Ok(());
        };
        let fields = self.inner.fields;
        let engine = &self.inner.engine;
        let searcher = self.inner.reader.searcher();
        let live = LiveDocuments::of(&searcher, &fields)?;
        let mut changed = 0usize;
        for (&product_id, &catalog) in &gathered.products {
            let indexed = live.find(product_id)?;
            if !catalog
                && let Some(indexed) = indexed
                && let Some(stock) = engine.stock(product_id)?
                && (stock.available() > 0) == indexed.in_stock
            {
                continue;
            }
            let indexed = indexed.map(|indexed| indexed.fingerprint);
            let wanted = match engine.product(product_id)? {
                Some(product) => engine
                    .stock(product_id)?
                    .map(|stock| (document(&fields, &product, &stock), product)),
                None => None,
            };
            let id = Term::from_field_u64(fields.id, product_id.0);
            match (indexed, wanted) {
                (None, None) => {}
                (Some(indexed), Some(((_, fingerprint), _))) if indexed == fingerprint => {}
                (_, Some(((document, _), product))) => {
                    self.writer.delete_term(id);
                    self.writer.add_document(document)?;
                    self.inner.completions.upsert(&product);
                    changed += 1;
                }
                (Some(_), None) => {
                    self.writer.delete_term(id);
                    self.inner.completions.remove(product_id);
                    changed += 1;
                }
            }
        }
        if changed > 0 {
            self.commit(last)?;
        }
        self.position = last;
        self.inner.indexed.send_replace(last);
        Ok(())
    }

    /// After a gap in the log: every document written afresh from the
    /// store, committed at the log's head as read before the products, and
    /// the log followed from there. Searches see the old documents until the
    /// commit.
    fn rebuild_in_place(&mut self) -> Result<(), IndexError> {
        let engine = self.inner.engine.clone();
        let position = engine.last_event_seq();
        tracing::warn!(
            from = self.position,
            to = position,
            "the event log no longer holds events the search index has not applied; rebuilding it from the store"
        );
        self.writer.delete_all_documents()?;
        self.inner.completions.clear();
        let products = add_every_product(
            &engine,
            &self.inner.fields,
            &self.writer,
            Some(&self.inner.completions),
            0,
            &mut |_| {},
        )?;
        self.commit(position)?;
        self.subscription = engine.subscribe_after(INDEXER_CONSUMER, position)?;
        self.position = position;
        self.inner.indexed.send_replace(position);
        tracing::info!(products, position, "rebuilt the search index");
        Ok(())
    }

    /// Commits what the writer holds with `position`, then reloads the
    /// reader so searches see it at once.
    fn commit(&mut self, position: u64) -> Result<(), IndexError> {
        let mut commit = self.writer.prepare_commit()?;
        commit.set_payload(&CommitPayload::new(position).encode());
        commit.commit()?;
        self.inner.completions.publish();
        self.inner.reader.reload()?;
        let live: Vec<_> = self
            .inner
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|segment| segment.segment_id())
            .collect();
        self.inner.columns.retain(&live);
        self.committed = position;
        self.position = self.position.max(position);
        self.last_commit = Instant::now();
        Ok(())
    }

    /// After a failure: drops what is not committed and reads the log again
    /// from the last commit, after a pause.
    async fn recover(&mut self, error: IndexError) {
        tracing::error!(%error, position = self.committed, "the search indexer failed; retrying from its last commit");
        if let Err(error) = self.writer.rollback() {
            tracing::error!(%error, "the search indexer cannot roll back");
        }
        tokio::select! {
            _ = self.stopped.changed() => {}
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
        match self
            .inner
            .engine
            .subscribe_after(INDEXER_CONSUMER, self.committed)
        {
            Ok(subscription) => {
                self.subscription = subscription;
                self.position = self.committed;
            }
            Err(error) => {
                tracing::error!(%error, "the search indexer cannot read the log again");
            }
        }
    }
}

/// Whether an event changes nothing about a product but its stock, so
/// only `in_stock` can need a rewrite.
fn changes_only_stock(event: &Event) -> bool {
    matches!(
        event,
        Event::StockUpdated { .. }
            | Event::StockLow { .. }
            | Event::StockDepleted { .. }
            | Event::InventoryReserved { .. }
            | Event::InventoryCommitted { .. }
            | Event::InventoryReleased { .. }
            | Event::ReservationExpired { .. }
            | Event::OrderCreated { .. }
    )
}

/// What the index holds of a product.
#[derive(Clone, Copy, Debug)]
struct Indexed {
    fingerprint: u64,
    in_stock: bool,
}

/// The live documents of a searcher, found by product id: the columns
/// opened once per batch rather than once per product.
struct LiveDocuments<'a> {
    segments: Vec<LiveSegment<'a>>,
    id: tantivy::schema::Field,
}

/// A segment, its ids' postings, and its `fingerprint` and `in_stock`
/// columns.
type LiveSegment<'a> = (
    &'a SegmentReader,
    Arc<tantivy::InvertedIndexReader>,
    Column<u64>,
    Column<u64>,
);

impl<'a> LiveDocuments<'a> {
    fn of(searcher: &'a Searcher, fields: &Fields) -> Result<LiveDocuments<'a>, IndexError> {
        let mut segments = Vec::new();
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            segments.push((
                segment,
                segment.inverted_index(fields.id)?,
                fast.u64(FINGERPRINT_COLUMN)?,
                fast.u64(IN_STOCK)?,
            ));
        }
        Ok(LiveDocuments {
            segments,
            id: fields.id,
        })
    }

    /// The live document of `product_id`, if it has one.
    fn find(&self, product_id: ProductId) -> Result<Option<Indexed>, IndexError> {
        let term = Term::from_field_u64(self.id, product_id.0);
        for (segment, inverted, fingerprints, in_stock) in &self.segments {
            let Some(mut postings) = inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(IndexError::io("cannot read the search index"))?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !segment.is_deleted(doc) {
                    return Ok(fingerprints.first(doc).map(|fingerprint| Indexed {
                        fingerprint,
                        in_stock: in_stock.first(doc) == Some(1),
                    }));
                }
                doc = postings.advance();
            }
        }
        Ok(None)
    }
}
