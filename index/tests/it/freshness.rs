//! The indexer following a live engine: every kind of change shows in
//! searches, a restart catches up from the index's last commit, and an
//! index that is missing, damaged or from elsewhere is rebuilt.

use std::time::Duration;

use mercato_engine::{OrderId, ProductId, ProductPatch, ReservationLine, ReserveRequest, Uuid};
use mercato_index::{RebuildProgress, SearchIndex, SearchRequest, SuggestRequest};

use crate::support::{CATALOG, Store, find, ids, new_product, until};

/// Waits (up to 5 s) until searches see every event the store has.
/// The products suggested for `query`.
fn suggested(index: &SearchIndex, query: &str) -> Vec<u64> {
    index
        .suggest(&SuggestRequest::new(query))
        .unwrap()
        .iter()
        .filter_map(|suggestion| suggestion.product_id.map(|id| id.0))
        .collect()
}

async fn caught_up(store: &Store, index: &SearchIndex) {
    let head = store.engine.last_event_seq();
    tokio::time::timeout(Duration::from_secs(5), index.wait_for_seq(head))
        .await
        .expect("the indexer catches up within 5 s");
    assert!(index.indexed_seq() >= head);
}

fn reserve(order: u128, product: u64, quantity: u64) -> ReserveRequest {
    ReserveRequest {
        order_id: OrderId(Uuid::from_u128(order)),
        items: vec![ReservationLine {
            product_id: ProductId(product),
            quantity,
        }],
        ttl: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_shows_in_searches() {
    let store = Store::new();
    store.load(CATALOG);
    let index = store.open_index();
    let indexer = index.start_indexer().unwrap();
    let engine = &store.engine;

    // Created.
    let grinder = (
        13,
        "Espresso Grinder",
        "Baristo",
        "kitchen",
        "Conical burrs.",
        "89.00",
        4,
        None,
    );
    engine.create_product(new_product(&grinder)).await.unwrap();
    until(&index, &SearchRequest::new("grinder "), |r| ids(r) == [13]).await;
    assert_eq!(
        suggested(&index, "grin"),
        [13],
        "suggested as soon as found"
    );

    // Renamed: found by the new name only.
    engine
        .update_product(
            ProductId(13),
            ProductPatch {
                name: Some("Burr Mill".into()),
                ..ProductPatch::default()
            },
        )
        .await
        .unwrap();
    until(&index, &SearchRequest::new("mill "), |r| ids(r) == [13]).await;
    assert!(find(&index, "grinder ").is_empty());
    assert!(suggested(&index, "grin").is_empty());
    assert_eq!(suggested(&index, "mil"), [13]);
    let hit = index
        .search(&SearchRequest::new("mill "))
        .unwrap()
        .hits
        .remove(0);
    assert_eq!(
        hit.product.name, "Burr Mill",
        "hits carry the product as it is"
    );

    // Repriced.
    let cheap = SearchRequest {
        query: "mill".into(),
        max_price: Some("10".parse().unwrap()),
        ..SearchRequest::default()
    };
    assert!(index.search(&cheap).unwrap().hits.is_empty());
    engine
        .update_product(
            ProductId(13),
            ProductPatch {
                price: Some("9.50".parse().unwrap()),
                ..ProductPatch::default()
            },
        )
        .await
        .unwrap();
    until(&index, &cheap, |r| ids(r) == [13]).await;

    // Archived: gone from every search.
    engine.archive_product(ProductId(13)).await.unwrap();
    until(&index, &SearchRequest::new("mill "), |r| r.total == 0).await;
    assert!(suggested(&index, "mil").is_empty());
    let browse = index.search(&SearchRequest::default()).unwrap();
    assert!(!ids(&browse).contains(&13));

    // Sold out by a reservation: no longer in stock, still found.
    let yoga_in_stock = SearchRequest {
        query: "yoga".into(),
        in_stock: true,
        ..SearchRequest::default()
    };
    assert_eq!(ids(&index.search(&yoga_in_stock).unwrap()), [5]);
    engine.reserve(reserve(1, 5, 6)).await.unwrap();
    engine.reserve(reserve(2, 5, 1)).await.unwrap();
    until(&index, &yoga_in_stock, |r| r.total == 0).await;
    assert_eq!(find(&index, "yoga"), [5]);

    // Back in stock when a reservation is released.
    engine
        .release_reservation(OrderId(Uuid::from_u128(2)))
        .await
        .unwrap();
    until(&index, &yoga_in_stock, |r| ids(r) == [5]).await;

    // Sold out by a commit, then restocked by hand.
    engine.reserve(reserve(3, 5, 1)).await.unwrap();
    engine
        .commit_reservation(OrderId(Uuid::from_u128(3)))
        .await
        .unwrap();
    until(&index, &yoga_in_stock, |r| r.total == 0).await;
    engine.set_stock(ProductId(5), 20).await.unwrap();
    until(&index, &yoga_in_stock, |r| ids(r) == [5]).await;
    engine.adjust_stock(ProductId(2), 3).await.unwrap();
    let stands = SearchRequest {
        query: "stand".into(),
        in_stock: true,
        ..SearchRequest::default()
    };
    until(&index, &stands, |r| ids(r) == [2]).await;

    caught_up(&store, &index).await;
    // The index agrees with the store on every live product.
    let all = index
        .search(&SearchRequest {
            limit: 100,
            ..SearchRequest::default()
        })
        .unwrap();
    assert_eq!(all.total, CATALOG.len() as u64);
    let in_stock = index
        .search(&SearchRequest {
            limit: 100,
            in_stock: true,
            ..SearchRequest::default()
        })
        .unwrap();
    for id in 1..=12 {
        let available = engine.stock(ProductId(id)).unwrap().unwrap().available();
        assert_eq!(ids(&in_stock).contains(&id), available > 0, "product {id}");
    }
    indexer.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_index_catches_up_from_its_last_commit() {
    let mut store = Store::new();
    store.load(&CATALOG[..6]);
    let index = store.open_index();
    assert!(index.rebuilt_because().is_some(), "there was no index yet");
    let indexer = index.start_indexer().unwrap();
    store.engine.reserve(reserve(1, 5, 7)).await.unwrap();
    caught_up(&store, &index).await;
    indexer.stop().unwrap();
    let stopped_at = index.indexed_seq();
    drop(index);

    // Changes while no indexer runs, across a restart of the store.
    store.load(&CATALOG[6..]);
    store.engine.archive_product(ProductId(1)).await.unwrap();
    store.close();
    store.reopen();
    assert!(store.engine.last_event_seq() > stopped_at);

    let index = store.open_index();
    assert_eq!(index.rebuilt_because(), None, "opened as it was");
    assert_eq!(index.indexed_seq(), stopped_at, "resumes from its commit");
    assert!(find(&index, "keyboard").is_empty(), "not applied yet");
    let indexer = index.start_indexer().unwrap();
    caught_up(&store, &index).await;
    assert_eq!(find(&index, "keyboard"), [11]);
    assert!(find(&index, "wireless").is_empty(), "archived meanwhile");
    assert_eq!(suggested(&index, "keyb"), [11]);
    assert!(!suggested(&index, "wirel").contains(&1));
    assert_eq!(index.document_count(), 11);
    let in_stock = SearchRequest {
        query: "yoga".into(),
        in_stock: true,
        ..SearchRequest::default()
    };
    assert_eq!(index.search(&in_stock).unwrap().total, 0);

    // One indexer per index.
    let second = index.start_indexer();
    assert_eq!(second.err().unwrap().code(), "index_busy");
    let rebuilt = SearchIndex::rebuild(store.index_dir(), &store.engine, &mut |_| {});
    assert_eq!(rebuilt.unwrap_err().code(), "index_busy");
    indexer.stop().unwrap();
}

#[test]
fn a_missing_or_damaged_index_is_rebuilt_from_the_store() {
    let store = Store::new();
    store.load(CATALOG);
    store.engine.archive_product(ProductId(12)).wait().unwrap();

    let index = store.open_index();
    assert!(index.rebuilt_because().is_some());
    assert_eq!(index.indexed_seq(), store.engine.last_event_seq());
    assert_eq!(index.document_count(), 11);
    drop(index);
    let index = store.open_index();
    assert_eq!(index.rebuilt_because(), None);
    drop(index);

    // Deleted.
    std::fs::remove_dir_all(store.index_dir()).unwrap();
    let index = store.open_index();
    let reason = index.rebuilt_because().unwrap().to_owned();
    assert!(reason.contains("no index"), "{reason}");
    assert_eq!(find(&index, "keyboard"), [11]);
    drop(index);

    // Garbage in its meta.json.
    std::fs::write(store.index_dir().join("meta.json"), b"\x00\xffnot json{{{").unwrap();
    let index = store.open_index();
    let reason = index.rebuilt_because().unwrap().to_owned();
    assert!(reason.contains("unreadable"), "{reason}");
    assert_eq!(find(&index, "keyboard"), [11]);
    assert_eq!(index.document_count(), 11);
    drop(index);

    // A segment file emptied: unreadable, rebuilt.
    let segment = std::fs::read_dir(store.index_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|extension| extension == "idx"))
        .expect("a segment's postings");
    std::fs::write(&segment, b"").unwrap();
    let index = store.open_index();
    assert!(index.rebuilt_because().is_some());
    assert_eq!(find(&index, "keyboard"), [11]);
    drop(index);

    // Rebuilt on demand, with progress.
    let mut progress: Vec<RebuildProgress> = Vec::new();
    let report = SearchIndex::rebuild(store.index_dir(), &store.engine, &mut |step| {
        progress.push(step)
    })
    .unwrap();
    assert_eq!(report.products, 11);
    assert_eq!(report.position, store.engine.last_event_seq());
    let last = progress.last().unwrap();
    assert_eq!((last.indexed, last.total), (11, 11));
    assert_eq!(progress[0].indexed, 0);
    assert!(!store.dir.path().join("search.rebuild").exists());
    assert!(!store.dir.path().join("search.old").exists());
    let index = store.open_index();
    assert_eq!(index.rebuilt_because(), None);
    assert_eq!(index.document_count(), 11);
}

#[test]
fn an_index_ahead_of_its_store_is_rebuilt() {
    let bigger = Store::new();
    bigger.load(CATALOG);
    drop(bigger.open_index());

    // Another store with fewer events, pointed at that index (a store
    // restored from an older copy looks the same).
    let smaller = Store::new();
    smaller.load(&CATALOG[..1]);
    let index = SearchIndex::open(bigger.index_dir(), &smaller.engine).unwrap();
    let reason = index.rebuilt_because().unwrap();
    assert!(reason.contains("only up to"), "{reason}");
    assert_eq!(index.document_count(), 1);
}

/// A deterministic random walk of catalog and stock changes; at checkpoints,
/// once the indexer has caught up, the index must agree with the store on
/// which products are live, what they are called, what they cost and which
/// are in stock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_any_sequence_of_changes_the_index_agrees_with_the_store() {
    use std::collections::BTreeSet;

    use mercato_engine::{Decimal, NewProduct};

    let store = Store::new();
    let index = store.open_index();
    let indexer = index.start_indexer().unwrap();
    let engine = &store.engine;
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |bound: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % bound
    };
    let colours = ["red", "green", "blue", "amber", "violet"];
    let mut created: Vec<u64> = Vec::new();
    let mut archived = BTreeSet::new();
    let mut reservations: Vec<u128> = Vec::new();
    let mut order = 0u128;
    for step in 1..=240 {
        let live: Vec<u64> = created
            .iter()
            .copied()
            .filter(|id| !archived.contains(id))
            .collect();
        let pick = |n: u64| live[n as usize % live.len()];
        let action = if live.is_empty() { 0 } else { next(7) };
        let product = if live.is_empty() {
            0
        } else {
            pick(next(1_000))
        };
        match action {
            0 => {
                let id = created.len() as u64 + 1;
                engine
                    .create_product(NewProduct {
                        id: Some(ProductId(id)),
                        name: format!("Item{id} {}", colours[next(5) as usize]),
                        price: Decimal::new(next(10_000) as i64, 2),
                        on_hand: next(3),
                        ..NewProduct::default()
                    })
                    .await
                    .unwrap();
                created.push(id);
            }
            1 => {
                let patch = ProductPatch {
                    name: Some(format!("Item{product} {}", colours[next(5) as usize])),
                    ..ProductPatch::default()
                };
                engine
                    .update_product(ProductId(product), patch)
                    .await
                    .unwrap();
            }
            2 => {
                let patch = ProductPatch {
                    price: Some(Decimal::new(next(10_000) as i64, 2)),
                    ..ProductPatch::default()
                };
                engine
                    .update_product(ProductId(product), patch)
                    .await
                    .unwrap();
            }
            3 if next(3) == 0 => {
                engine.archive_product(ProductId(product)).await.unwrap();
                archived.insert(product);
            }
            4 => {
                // Below what is reserved is refused; that is fine.
                let _ = engine.set_stock(ProductId(product), next(4)).await;
            }
            5 => {
                order += 1;
                if engine.reserve(reserve(order, product, 1)).await.is_ok() {
                    reservations.push(order);
                }
            }
            _ => {
                if !reservations.is_empty() {
                    let order = reservations.swap_remove(next(1_000) as usize % reservations.len());
                    let order_id = OrderId(Uuid::from_u128(order));
                    let _ = engine.release_reservation(order_id).await;
                }
            }
        }
        if step % 40 != 0 {
            continue;
        }
        caught_up(&store, &index).await;
        let browse = SearchRequest {
            limit: 100,
            ..SearchRequest::default()
        };
        let all = index.search(&browse).unwrap();
        let live: Vec<u64> = created
            .iter()
            .copied()
            .filter(|id| !archived.contains(id))
            .collect();
        assert_eq!(ids(&all), live, "step {step}: the live products");
        let in_stock = index
            .search(&SearchRequest {
                in_stock: true,
                ..browse.clone()
            })
            .unwrap();
        let available: Vec<u64> = live
            .iter()
            .copied()
            .filter(|&id| engine.stock(ProductId(id)).unwrap().unwrap().available() > 0)
            .collect();
        assert_eq!(ids(&in_stock), available, "step {step}: in stock");
        for &id in &created {
            let found = index
                .search(&SearchRequest::new(format!("item{id} ")))
                .unwrap();
            let Some(product) = engine.product(ProductId(id)).unwrap() else {
                assert_eq!(found.total, 0, "step {step}: {id} is archived");
                continue;
            };
            assert_eq!(ids(&found), [id], "step {step}");
            assert_eq!(found.hits[0].product, product);
            let colour = product.name.split(' ').nth(1).unwrap();
            let by_name = index
                .search(&SearchRequest::new(format!("item{id} {colour}")))
                .unwrap();
            assert_eq!(ids(&by_name), [id], "step {step}: {}", product.name);
            let priced = index
                .search(&SearchRequest {
                    query: format!("item{id} "),
                    min_price: Some(product.price),
                    max_price: Some(product.price),
                    ..SearchRequest::default()
                })
                .unwrap();
            assert_eq!(ids(&priced), [id], "step {step}: priced {}", product.price);
        }
    }
    indexer.stop().unwrap();
}

/// Moves the store's clock past the event retention (30 days by default)
/// and lets the writer compact: the events before the newest are removed.
async fn a_month_passes(store: &Store) {
    store.clock.advance(Duration::from_secs(31 * 86_400));
    for _ in 0..3 {
        store.clock.advance(Duration::from_secs(61));
        store.engine.flush().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_removed_by_retention_before_they_were_applied_mean_a_rebuild() {
    let store = Store::new();
    store.load(&CATALOG[..4]);
    let index = store.open_index();
    let position = index.indexed_seq();

    // Changes the index has not applied, then a month in which the writer
    // removes them (the index keeps no position in the store).
    store.engine.archive_product(ProductId(1)).await.unwrap();
    store.load(&CATALOG[4..8]);
    a_month_passes(&store).await;
    let oldest = store.engine.events_after(position, 1).unwrap()[0].seq;
    assert!(
        oldest > position + 1,
        "events after the index's position are gone"
    );

    // A running indexer finds the gap and rebuilds in place.
    let indexer = index.start_indexer().unwrap();
    caught_up(&store, &index).await;
    assert_eq!(find(&index, "shirt "), [8]);
    assert!(find(&index, "wireless").is_empty());
    assert_eq!(index.document_count(), 7);
    indexer.stop().unwrap();
    drop(index);
    assert_eq!(store.open_index().rebuilt_because(), None);

    // A stopped index reopened past such a gap is rebuilt at open.
    store.engine.archive_product(ProductId(2)).await.unwrap();
    store.load(&CATALOG[8..]);
    a_month_passes(&store).await;
    let index = store.open_index();
    let reason = index.rebuilt_because().unwrap();
    assert!(reason.contains("retention"), "{reason}");
    assert_eq!(index.document_count(), 10);
    assert_eq!(find(&index, "keyboard"), [11]);
    assert!(find(&index, "stand").is_empty());
}
