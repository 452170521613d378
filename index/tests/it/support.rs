//! A store with a small fixed catalog, and helpers to search it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mercato_engine::{Engine, EngineConfig, ManualClock, NewProduct, ProductId, Timestamp};
use mercato_index::{INDEX_DIRECTORY_NAME, SearchIndex, SearchRequest, SearchResults};

pub(crate) const START: Timestamp = Timestamp(1_800_000_000_000);

/// `(id, name, brand, category, description, price, on_hand, sku)`.
pub(crate) type Item = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u64,
    Option<&'static str>,
);

pub(crate) const CATALOG: &[Item] = &[
    (
        1,
        "Wireless Headphones",
        "Sonic",
        "audio",
        "Over-ear, noise cancelling.",
        "99.00",
        5,
        None,
    ),
    (
        2,
        "Headphone Stand",
        "Deskware",
        "accessories",
        "Aluminium, fits any pair.",
        "25.00",
        0,
        None,
    ),
    (
        3,
        "Bluetooth Speaker",
        "Sonic",
        "audio",
        "Portable; pairs with your headphones too.",
        "49.50",
        3,
        None,
    ),
    (
        4,
        "Cat Tree",
        "Pawsome",
        "pets",
        "A tall scratching post.",
        "80.00",
        2,
        None,
    ),
    (
        5,
        "Yoga Mat",
        "Summitcraft",
        "sports",
        "Non-slip, 6 mm thick.",
        "30.00",
        7,
        None,
    ),
    (
        6,
        "Graphics Card 1080",
        "Nvidia",
        "computers",
        "Eight gigabytes of memory.",
        "499.99",
        1,
        Some("GPU-1080"),
    ),
    (
        7,
        "Gaming Monitor 1090",
        "Viewmax",
        "computers",
        "A fast panel.",
        "299.00",
        4,
        Some("MON-1090"),
    ),
    (
        8,
        "Linen Shirt",
        "Threadline",
        "clothing",
        "Breathable summer wear.",
        "40.00",
        6,
        None,
    ),
    (
        9,
        "Linen Skirt",
        "Threadline",
        "clothing",
        "Breathable summer wear.",
        "35.00",
        0,
        None,
    ),
    (
        10,
        "Crème Brûlée Torch",
        "Chef's",
        "kitchen",
        "Caramelises sugar in seconds.",
        "19.99",
        8,
        None,
    ),
    (
        11,
        "Mechanical Keyboard",
        "Clicky",
        "computers",
        "Tactile switches.",
        "120.00",
        9,
        None,
    ),
    (
        12,
        "Desk Lamp",
        "Deskware",
        "",
        "Warm light.",
        "15.25",
        3,
        None,
    ),
];

pub(crate) fn new_product(item: &Item) -> NewProduct {
    let &(id, name, brand, category, description, price, on_hand, sku) = item;
    NewProduct {
        id: Some(ProductId(id)),
        sku: sku.map(str::to_owned),
        name: name.to_owned(),
        description: Some(description.to_owned()),
        category: Some(category.to_owned()),
        brand: Some(brand.to_owned()),
        price: price.parse().unwrap(),
        on_hand,
        ..NewProduct::default()
    }
}

/// A store in a temporary directory, with a manual clock.
pub(crate) struct Store {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: ManualClock,
    pub(crate) engine: Engine,
}

impl Store {
    pub(crate) fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START);
        let engine = open_engine(dir.path(), &clock);
        Store { dir, clock, engine }
    }

    /// The same store opened again (after [`Store::close`]).
    pub(crate) fn reopen(&mut self) {
        self.engine = open_engine(self.dir.path(), &self.clock);
    }

    pub(crate) fn close(&self) {
        self.engine.shutdown();
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.dir.path().join(INDEX_DIRECTORY_NAME)
    }

    /// Creates the catalog, one second apart (from a test's thread or a
    /// multi-threaded runtime's).
    pub(crate) fn load(&self, items: &[Item]) {
        let load = || {
            for item in items {
                self.clock.advance(Duration::from_secs(1));
                self.engine
                    .create_product(new_product(item))
                    .wait()
                    .unwrap();
            }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(load);
        } else {
            load();
        }
    }

    pub(crate) fn open_index(&self) -> SearchIndex {
        SearchIndex::open(self.index_dir(), &self.engine).unwrap()
    }
}

fn open_engine(dir: &Path, clock: &ManualClock) -> Engine {
    let mut config = EngineConfig::new(dir);
    config.clock = Arc::new(clock.clone());
    Engine::open(config).unwrap()
}

/// The ids of the hits, in order.
pub(crate) fn ids(results: &SearchResults) -> Vec<u64> {
    results.hits.iter().map(|hit| hit.product.id.0).collect()
}

/// The ids `query` finds, in order.
pub(crate) fn find(index: &SearchIndex, query: &str) -> Vec<u64> {
    ids(&index.search(&SearchRequest::new(query)).unwrap())
}

/// Polls `check` on the search results of `request` for up to 5 seconds:
/// tests wait for outcomes, never for a length of time.
pub(crate) async fn until(
    index: &SearchIndex,
    request: &SearchRequest,
    check: impl Fn(&SearchResults) -> bool,
) -> SearchResults {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let results = index.search(request).unwrap();
        if check(&results) {
            return results;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not seen within 5 s: {request:?} gives {:?}",
            ids(&results)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
