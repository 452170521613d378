//! [`SearchCollector`]: one pass over the matches that filters by price
//! and stock, counts the facets, counts the total and keeps the best
//! `offset + limit` hits in the requested order, all from fast fields.
//!
//! Price and stock are filtered here rather than in the query: the price is
//! two u64 halves (see `schema::Fields::price_high`), compared exactly as
//! one u128, and both are read from columns anyway for sorting.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::request::{FACET_VALUES_MAX, FacetCount, Sort};
use crate::schema::{BRAND, CATEGORY, CREATED_AT, ID_COLUMN, IN_STOCK, PRICE_HIGH, PRICE_LOW};

/// What to keep of the matches.
pub(crate) struct SearchCollector {
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

impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> Ordering {
        self.primary
            .cmp(&other.primary)
            .then_with(|| self.score.total_cmp(&other.score))
            .then_with(|| other.id.cmp(&self.id))
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
    pub(crate) category: HashMap<String, u64>,
    pub(crate) brand: HashMap<String, u64>,
}

impl Collected {
    pub(crate) fn facet(counts: HashMap<String, u64>) -> Vec<FacetCount> {
        let mut counts: Vec<FacetCount> = counts
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        counts.truncate(FACET_VALUES_MAX);
        counts
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
        if self.heap.len() < self.keep {
            self.heap.push(Reverse(ranked));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && ranked > worst.0
        {
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
    column: StrColumn,
    counts: Vec<u64>,
}

impl FacetColumn {
    fn open(segment: &SegmentReader, name: &str) -> tantivy::Result<Option<FacetColumn>> {
        Ok(segment.fast_fields().str(name)?.map(|column| {
            let terms = column.num_terms();
            FacetColumn {
                column,
                counts: vec![0; terms],
            }
        }))
    }

    fn count(&mut self, doc: DocId) {
        if let Some(ordinal) = self.column.ords().first(doc) {
            self.counts[ordinal as usize] += 1;
        }
    }

    fn harvest(self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        let mut value = String::new();
        for (ordinal, count) in self.counts.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            value.clear();
            // An ordinal below num_terms always has its term.
            if self
                .column
                .ord_to_str(ordinal as u64, &mut value)
                .unwrap_or(false)
            {
                counts.insert(value.clone(), count);
            }
        }
        counts
    }
}

pub(crate) struct SearchSegmentCollector {
    sort: Sort,
    price_min: Option<u128>,
    price_max: Option<u128>,
    in_stock_only: bool,
    id: Column<u64>,
    /// Read only when a price filter or sort needs them.
    price: Option<(Column<u64>, Column<u64>)>,
    created_at: Option<Column<u64>>,
    in_stock: Option<Column<u64>>,
    category: Option<FacetColumn>,
    brand: Option<FacetColumn>,
    total: u64,
    best: Best,
}

impl Collector for SearchCollector {
    type Fruit = Collected;
    type Child = SearchSegmentCollector;

    fn for_segment(
        &self,
        _segment_ordinal: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SearchSegmentCollector> {
        let fast = segment.fast_fields();
        let needs_price = self.price_min.is_some()
            || self.price_max.is_some()
            || matches!(self.sort, Sort::PriceAscending | Sort::PriceDescending);
        let price = if needs_price {
            Some((fast.u64(PRICE_HIGH)?, fast.u64(PRICE_LOW)?))
        } else {
            None
        };
        let created_at = if self.sort == Sort::Newest {
            Some(fast.u64(CREATED_AT)?)
        } else {
            None
        };
        let in_stock = if self.in_stock {
            Some(fast.u64(IN_STOCK)?)
        } else {
            None
        };
        Ok(SearchSegmentCollector {
            sort: self.sort,
            price_min: self.price_min,
            price_max: self.price_max,
            in_stock_only: self.in_stock,
            id: fast.u64(ID_COLUMN)?,
            price,
            created_at,
            in_stock,
            category: FacetColumn::open(segment, CATEGORY)?,
            brand: FacetColumn::open(segment, BRAND)?,
            total: 0,
            best: Best::new(self.keep),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        let mut merged = Collected::default();
        let mut best = Best::new(self.keep);
        for fruit in fruits {
            merged.total += fruit.total;
            for ranked in fruit.top {
                best.push(ranked);
            }
            for (value, count) in fruit.category {
                *merged.category.entry(value).or_default() += count;
            }
            for (value, count) in fruit.brand {
                *merged.brand.entry(value).or_default() += count;
            }
        }
        merged.top = best.into_sorted();
        Ok(merged)
    }
}

impl SegmentCollector for SearchSegmentCollector {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, score: Score) {
        let price = self.price.as_ref().map(|(high, low)| {
            let high = u128::from(high.first(doc).unwrap_or(0));
            let low = u128::from(low.first(doc).unwrap_or(0));
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
                .and_then(|column| column.first(doc))
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
        let id = self.id.first(doc).unwrap_or(0);
        let primary = match self.sort {
            Sort::Relevance => 0,
            Sort::PriceAscending => u128::MAX - price.unwrap_or(0),
            Sort::PriceDescending => price.unwrap_or(0),
            // Created in the same millisecond: the later id first.
            Sort::Newest => {
                let created_at = self
                    .created_at
                    .as_ref()
                    .and_then(|column| column.first(doc))
                    .unwrap_or(0);
                (u128::from(created_at) << 64) | u128::from(id)
            }
        };
        self.best.push(Ranked { primary, score, id });
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
