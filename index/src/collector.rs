//! [`SearchCollector`]: one pass over the matches that filters by price
//! and stock, counts the facets, counts the total and keeps the best
//! `offset + limit` hits in the requested order, all from fast fields.
//!
//! Price and stock are filtered here rather than in the query: the price is
//! two u64 halves (see `schema::Fields::price_high`), compared exactly as
//! one u128, and both are read from columns anyway for sorting.
//!
//! Facets are counted by term ordinal and named at the end from
//! [`SegmentColumnsCache`], each segment's columns opened and its facet
//! values decoded once, kept while the segment lives: naming them from the
//! column's dictionary on every search was two thirds of a word query's
//! instructions.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, ColumnValues};
use tantivy::index::SegmentId;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::request::{FACET_VALUES_MAX, FacetCount, Sort};
use crate::schema::{BRAND, CATEGORY, CREATED_AT, ID_COLUMN, IN_STOCK, PRICE_HIGH, PRICE_LOW};

/// The fast-field columns of each segment searched, opened once, with the
/// values of the facet columns decoded by ordinal. Segments are immutable
/// (a changed document is a new one in a new segment), so an entry stays
/// true while its segment lives; [`SegmentColumnsCache::retain`] drops
/// those merged away.
#[derive(Default)]
pub(crate) struct SegmentColumnsCache {
    segments: Mutex<HashMap<SegmentId, Arc<SegmentColumns>>>,
}

/// A facet column's ordinals by document and its values by ordinal.
type FacetValues = (Values, Arc<[Arc<str>]>);

struct SegmentColumns {
    id: Values,
    /// `None` when every price of the segment is below 2^64 minor units.
    price_high: Option<Values>,
    price_low: Values,
    created_at: Values,
    in_stock: Values,
    category: Option<FacetValues>,
    brand: Option<FacetValues>,
}

/// A u64 column read by document: straight from its values when every
/// document has one (as every document here does, but a segment's
/// cardinality is tantivy's to choose), else through the column's index,
/// which costs more than the read itself.
#[derive(Clone)]
enum Values {
    Full(Arc<dyn ColumnValues<u64>>),
    Other(Column<u64>),
}

impl Values {
    fn new(column: Column<u64>) -> Values {
        match column.index {
            ColumnIndex::Full => Values::Full(column.values),
            _ => Values::Other(column),
        }
    }

    #[inline]
    fn get(&self, doc: DocId) -> Option<u64> {
        match self {
            Values::Full(values) => Some(values.get_val(doc)),
            Values::Other(column) => column.first(doc),
        }
    }
}

impl SegmentColumnsCache {
    fn of(&self, segment: &SegmentReader) -> tantivy::Result<Arc<SegmentColumns>> {
        let id = segment.segment_id();
        if let Some(columns) = self
            .segments
            .lock()
            .expect("the columns lock is never poisoned")
            .get(&id)
        {
            return Ok(columns.clone());
        }
        let fast = segment.fast_fields();
        let facet = |name: &str| -> tantivy::Result<Option<FacetValues>> {
            let Some(column) = fast.str(name)? else {
                return Ok(None);
            };
            let mut values = Vec::with_capacity(column.num_terms());
            let mut value = String::new();
            for ordinal in 0..column.num_terms() as u64 {
                value.clear();
                let found = column.ord_to_str(ordinal, &mut value)?;
                assert!(found, "a facet ordinal without its value");
                values.push(Arc::from(value.as_str()));
            }
            Ok(Some((Values::new(column.ords().clone()), values.into())))
        };
        let price_high = fast.u64(PRICE_HIGH)?;
        let columns = Arc::new(SegmentColumns {
            id: Values::new(fast.u64(ID_COLUMN)?),
            price_high: (price_high.max_value() > 0).then(|| Values::new(price_high)),
            price_low: Values::new(fast.u64(PRICE_LOW)?),
            created_at: Values::new(fast.u64(CREATED_AT)?),
            in_stock: Values::new(fast.u64(IN_STOCK)?),
            category: facet(CATEGORY)?,
            brand: facet(BRAND)?,
        });
        self.segments
            .lock()
            .expect("the columns lock is never poisoned")
            .insert(id, columns.clone());
        Ok(columns)
    }

    /// Forgets the segments not in `live` (after a commit or a merge).
    pub(crate) fn retain(&self, live: &[SegmentId]) {
        self.segments
            .lock()
            .expect("the columns lock is never poisoned")
            .retain(|segment, _| live.contains(segment));
    }
}

/// What to keep of the matches.
pub(crate) struct SearchCollector<'a> {
    pub(crate) columns: &'a SegmentColumnsCache,
    pub(crate) sort: Sort,
    /// The best this many hits are kept (`offset + limit`).
    pub(crate) keep: usize,
    /// Inclusive bounds in minor units.
    pub(crate) price_min: Option<u128>,
    pub(crate) price_max: Option<u128>,
    pub(crate) in_stock: bool,
}

/// A kept hit; `Ord` puts the better hit greater.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranked {
    /// The sort's own key, greater first (0 under relevance).
    primary: u128,
    pub(crate) score: Score,
    pub(crate) id: u64,
}

impl Ranked {
    /// How a hit of `primary` and `score` ranks against `other` before
    /// the ids break a tie.
    fn cmp_before_id(primary: u128, score: Score, other: &Ranked) -> Ordering {
        primary
            .cmp(&other.primary)
            .then_with(|| score.total_cmp(&other.score))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> Ordering {
        Ranked::cmp_before_id(self.primary, self.score, other).then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// The collector's answer.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) total: u64,
    /// Best first, at most `keep`.
    pub(crate) top: Vec<Ranked>,
    /// Each value once, with its count (above 0).
    pub(crate) category: Vec<(Arc<str>, u64)>,
    pub(crate) brand: Vec<(Arc<str>, u64)>,
}

impl Collected {
    pub(crate) fn facet(mut counts: Vec<(Arc<str>, u64)>) -> Vec<FacetCount> {
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(FACET_VALUES_MAX);
        counts
            .into_iter()
            .map(|(value, count)| FacetCount {
                value: value.to_string(),
                count,
            })
            .collect()
    }
}

/// The best `keep` of what was pushed.
struct Best {
    keep: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl Best {
    fn new(keep: usize) -> Best {
        Best {
            keep,
            heap: BinaryHeap::with_capacity(keep.min(1_024)),
        }
    }

    fn push(&mut self, ranked: Ranked) {
        self.push_with(ranked.primary, ranked.score, || ranked.id);
    }

    /// Pushes the hit of `primary` and `score`, its id read only when
    /// needed: when there is room, or when the hit is not behind the worst
    /// kept before the ids are compared.
    #[inline]
    fn push_with(&mut self, primary: u128, score: Score, id: impl FnOnce() -> u64) {
        if self.heap.len() < self.keep {
            self.heap.push(Reverse(Ranked {
                primary,
                score,
                id: id(),
            }));
            return;
        }
        let Some(mut worst) = self.heap.peek_mut() else {
            return;
        };
        if Ranked::cmp_before_id(primary, score, &worst.0) == Ordering::Less {
            return;
        }
        let ranked = Ranked {
            primary,
            score,
            id: id(),
        };
        if ranked > worst.0 {
            *worst = Reverse(ranked);
        }
    }

    fn into_sorted(self) -> Vec<Ranked> {
        // Ascending `Reverse` is descending `Ranked`: best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(ranked)| ranked)
            .collect()
    }
}

/// Counts of one facet by term ordinal within a segment.
struct FacetColumn {
    ordinals: Values,
    values: Arc<[Arc<str>]>,
    counts: Vec<u64>,
}

impl FacetColumn {
    fn open(column: &Option<FacetValues>) -> Option<FacetColumn> {
        column.as_ref().map(|(ordinals, values)| FacetColumn {
            ordinals: ordinals.clone(),
            values: values.clone(),
            counts: vec![0; values.len()],
        })
    }

    fn count(&mut self, doc: DocId) {
        if let Some(ordinal) = self.ordinals.get(doc) {
            self.counts[ordinal as usize] += 1;
        }
    }

    fn harvest(self) -> Vec<(Arc<str>, u64)> {
        let values = &self.values;
        self.counts
            .into_iter()
            .enumerate()
            .filter(|(_, count)| *count > 0)
            .map(|(ordinal, count)| (values[ordinal].clone(), count))
            .collect()
    }
}

pub(crate) struct SearchSegmentCollector {
    sort: Sort,
    price_min: Option<u128>,
    price_max: Option<u128>,
    in_stock_only: bool,
    id: Values,
    /// Read only when a price filter or sort needs them.
    price: Option<(Option<Values>, Values)>,
    created_at: Option<Values>,
    in_stock: Option<Values>,
    category: Option<FacetColumn>,
    brand: Option<FacetColumn>,
    total: u64,
    best: Best,
}

impl Collector for SearchCollector<'_> {
    type Fruit = Collected;
    type Child = SearchSegmentCollector;

    fn for_segment(
        &self,
        _segment_ordinal: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SearchSegmentCollector> {
        let columns = self.columns.of(segment)?;
        let needs_price = self.price_min.is_some()
            || self.price_max.is_some()
            || matches!(self.sort, Sort::PriceAscending | Sort::PriceDescending);
        let price = needs_price.then(|| (columns.price_high.clone(), columns.price_low.clone()));
        let created_at = (self.sort == Sort::Newest).then(|| columns.created_at.clone());
        let in_stock = self.in_stock.then(|| columns.in_stock.clone());
        Ok(SearchSegmentCollector {
            sort: self.sort,
            price_min: self.price_min,
            price_max: self.price_max,
            in_stock_only: self.in_stock,
            id: columns.id.clone(),
            price,
            created_at,
            in_stock,
            category: FacetColumn::open(&columns.category),
            brand: FacetColumn::open(&columns.brand),
            total: 0,
            best: Best::new(self.keep),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, mut fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        if fruits.len() == 1 {
            return Ok(fruits.pop().expect("one fruit"));
        }
        let mut total = 0;
        let mut best = Best::new(self.keep);
        let mut category: HashMap<Arc<str>, u64> = HashMap::new();
        let mut brand: HashMap<Arc<str>, u64> = HashMap::new();
        for fruit in fruits {
            total += fruit.total;
            for ranked in fruit.top {
                best.push(ranked);
            }
            for (value, count) in fruit.category {
                *category.entry(value).or_default() += count;
            }
            for (value, count) in fruit.brand {
                *brand.entry(value).or_default() += count;
            }
        }
        Ok(Collected {
            total,
            top: best.into_sorted(),
            category: category.into_iter().collect(),
            brand: brand.into_iter().collect(),
        })
    }
}

impl SegmentCollector for SearchSegmentCollector {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, score: Score) {
        let price = self.price.as_ref().map(|(high, low)| {
            let high = u128::from(high.as_ref().and_then(|high| high.get(doc)).unwrap_or(0));
            let low = u128::from(low.get(doc).unwrap_or(0));
            (high << 64) | low
        });
        if let Some(price) = price
            && (self.price_min.is_some_and(|min| price < min)
                || self.price_max.is_some_and(|max| price > max))
        {
            return;
        }
        if self.in_stock_only
            && self
                .in_stock
                .as_ref()
                .and_then(|column| column.get(doc))
                .unwrap_or(0)
                == 0
        {
            return;
        }
        self.total += 1;
        if let Some(category) = &mut self.category {
            category.count(doc);
        }
        if let Some(brand) = &mut self.brand {
            brand.count(doc);
        }
        if self.best.keep == 0 {
            return;
        }
        let id = || self.id.get(doc).unwrap_or(0);
        let primary = match self.sort {
            Sort::Relevance => 0,
            Sort::PriceAscending => u128::MAX - price.unwrap_or(0),
            Sort::PriceDescending => price.unwrap_or(0),
            // Created in the same millisecond: the later id first.
            Sort::Newest => {
                let created_at = self
                    .created_at
                    .as_ref()
                    .and_then(|column| column.get(doc))
                    .unwrap_or(0);
                (u128::from(created_at) << 64) | u128::from(id())
            }
        };
        self.best.push_with(primary, score, id);
    }

    fn harvest(self) -> Collected {
        Collected {
            total: self.total,
            top: self.best.into_sorted(),
            category: self.category.map(FacetColumn::harvest).unwrap_or_default(),
            brand: self.brand.map(FacetColumn::harvest).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(primary: u128, score: f32, id: u64) -> Ranked {
        Ranked { primary, score, id }
    }

    #[test]
    fn best_keeps_the_greatest_in_order() {
        let mut best = Best::new(3);
        for (index, score) in [5.0, 1.0, 9.0, 3.0, 9.0, 7.0].into_iter().enumerate() {
            best.push(ranked(0, score, index as u64));
        }
        let ids: Vec<u64> = best.into_sorted().iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 4, 5], "ties go to the lower id");
        let mut none = Best::new(0);
        none.push(ranked(0, 1.0, 1));
        assert!(none.into_sorted().is_empty());
        assert!(
            ranked(1, 0.0, 9) > ranked(0, 100.0, 1),
            "the sort key first"
        );
    }
}
