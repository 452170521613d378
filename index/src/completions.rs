//! [`Completions`]: the words of every indexed product's name, brand and
//! category, in memory, for suggestions as one types.
//!
//! A suggestion for one word needs no search: the categories and brands
//! with a word starting with it (with their product counts), and the
//! products whose name has such a word, ranked the way the search ranks
//! them (see `query::suggest_query`). Answering that from sorted tables
//! takes microseconds where a search with facets takes a millisecond, and
//! suggest is called on every keystroke.
//!
//! The indexer keeps the table in step with the index: it records what it
//! writes or deletes, and publishes a new snapshot right after the commit
//! that holds the change (searches take the snapshot they find, never
//! waiting). Stock changes, most of the indexer's work, change nothing
//! here and publish nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use mercato_engine::{Product, ProductId};

use crate::request::SuggestionKind;
use crate::schema::{tokens, words_analyzer};

/// Score tiers of a product suggestion, as `query::suggest_query` gives
/// them: a word of the name starts with the prefix; a word of its brand or
/// category does too; a word of the name is the prefix.
const IN_NAME: u32 = 1_020;
const IN_LABELS: u32 = 1_005;
const EXACT_WORD: u32 = 4;

/// What the table knows of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Arc<str>,
    category: String,
    brand: String,
}

/// The mutable side, owned by the indexer (behind the lock only so that
/// open and the indexer share one).
#[derive(Default)]
struct Table {
    products: HashMap<u64, Entry>,
    /// Changed since the last snapshot.
    dirty: bool,
}

/// A product's place in a word's list.
#[derive(Clone, Copy, Debug)]
struct Posting {
    id: u64,
    /// Index in `Snapshot::names`.
    name: u32,
    /// Indexes in `Snapshot::labels` (`u32::MAX`: none).
    category: u32,
    brand: u32,
}

/// A category or brand value with the products that have it.
#[derive(Debug)]
struct Label {
    kind: SuggestionKind,
    value: String,
    count: u64,
}

/// An immutable view, searched without locks held.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Distinct words of names, sorted, and the products having each (by id).
    words: Vec<Box<str>>,
    postings: Vec<Vec<Posting>>,
    /// Every product's id (ascending) and name.
    ids: Vec<u64>,
    names: Vec<Arc<str>>,
    labels: Vec<Label>,
    /// Words of labels, sorted, with the label's index.
    label_words: Vec<(Box<str>, u32)>,
}

/// The shared table and its last snapshot.
#[derive(Default)]
pub(crate) struct Completions {
    table: RwLock<Table>,
    snapshot: RwLock<Arc<Snapshot>>,
}

/// A completion: categories and brands, then products, as
/// `SearchIndex::suggest` lists them.
pub(crate) struct Completed {
    /// Category and brand values completing the word, most products first
    /// (ties by value), each kind apart.
    pub(crate) categories: Vec<(String, u64)>,
    pub(crate) brands: Vec<(String, u64)>,
    /// The best `keep` products whose name completes the word, best first
    /// (ties: lower id first), with their names.
    pub(crate) products: Vec<(ProductId, Arc<str>)>,
}

impl Completions {
    /// Records a product as the index now holds it (live, with stock).
    pub(crate) fn upsert(&self, product: &Product) {
        let mut table = self
            .table
            .write()
            .expect("the completions lock is never poisoned");
        let entry = Entry {
            name: Arc::from(product.name.as_str()),
            category: product.category.clone(),
            brand: product.brand.clone(),
        };
        match table.products.get(&product.id.0) {
            Some(known)
                if *known.name == *entry.name
                    && known.category == entry.category
                    && known.brand == entry.brand => {}
            _ => {
                table.products.insert(product.id.0, entry);
                table.dirty = true;
            }
        }
    }

    /// Records that the index no longer holds a product.
    pub(crate) fn remove(&self, product_id: ProductId) {
        let mut table = self
            .table
            .write()
            .expect("the completions lock is never poisoned");
        if table.products.remove(&product_id.0).is_some() {
            table.dirty = true;
        }
    }

    /// Forgets every product (before a rebuild records them again).
    pub(crate) fn clear(&self) {
        let mut table = self
            .table
            .write()
            .expect("the completions lock is never poisoned");
        table.dirty |= !table.products.is_empty();
        table.products.clear();
    }

    /// Makes what was recorded visible to suggestions, if anything
    /// changed. Called after the commit that holds the changes.
    pub(crate) fn publish(&self) {
        let mut table = self
            .table
            .write()
            .expect("the completions lock is never poisoned");
        if !table.dirty {
            return;
        }
        let snapshot = Arc::new(Snapshot::of(&table.products));
        table.dirty = false;
        *self
            .snapshot
            .write()
            .expect("the completions lock is never poisoned") = snapshot;
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .expect("the completions lock is never poisoned")
            .clone()
    }
}

/// The index of a label value in `labels`, counting one more product
/// with it (`u32::MAX` for an empty value: no label).
fn label_of<'a>(
    label_index: &mut HashMap<(SuggestionKind, &'a str), u32>,
    labels: &mut Vec<Label>,
    kind: SuggestionKind,
    value: &'a str,
) -> u32 {
    if value.is_empty() {
        return u32::MAX;
    }
    let index = *label_index.entry((kind, value)).or_insert_with(|| {
        labels.push(Label {
            kind,
            value: value.to_owned(),
            count: 0,
        });
        (labels.len() - 1) as u32
    });
    labels[index as usize].count += 1;
    index
}

impl Snapshot {
    fn of(products: &HashMap<u64, Entry>) -> Snapshot {
        let mut analyzer = words_analyzer();
        let mut label_index: HashMap<(SuggestionKind, &str), u32> = HashMap::new();
        let mut labels: Vec<Label> = Vec::new();
        let mut ids: Vec<u64> = products.keys().copied().collect();
        ids.sort_unstable();
        let mut words: BTreeMap<String, Vec<Posting>> = BTreeMap::new();
        let mut names = Vec::with_capacity(ids.len());
        for &id in &ids {
            let entry = &products[&id];
            let posting = Posting {
                id,
                name: names.len() as u32,
                category: label_of(
                    &mut label_index,
                    &mut labels,
                    SuggestionKind::Category,
                    &entry.category,
                ),
                brand: label_of(
                    &mut label_index,
                    &mut labels,
                    SuggestionKind::Brand,
                    &entry.brand,
                ),
            };
            names.push(entry.name.clone());
            let distinct: BTreeSet<String> =
                tokens(&mut analyzer, &entry.name).into_iter().collect();
            for word in distinct {
                // Ids ascend, so every list is sorted by id.
                words.entry(word).or_default().push(posting);
            }
        }
        let mut label_words = Vec::new();
        for (index, label) in labels.iter().enumerate() {
            let distinct: BTreeSet<String> =
                tokens(&mut analyzer, &label.value).into_iter().collect();
            for word in distinct {
                label_words.push((word.into_boxed_str(), index as u32));
            }
        }
        label_words.sort_unstable();
        let (words, postings) = words
            .into_iter()
            .map(|(word, postings)| (word.into_boxed_str(), postings))
            .unzip();
        Snapshot {
            words,
            postings,
            ids,
            names,
            labels,
            label_words,
        }
    }

    /// The name of an indexed product.
    pub(crate) fn name(&self, product_id: ProductId) -> Option<Arc<str>> {
        let at = self.ids.binary_search(&product_id.0).ok()?;
        Some(self.names[at].clone())
    }

    /// The completions of `prefix` (a token as the words analyzer makes
    /// it), keeping the best `keep` products.
    pub(crate) fn complete(&self, prefix: &str, keep: usize) -> Completed {
        let mut completing = vec![false; self.labels.len()];
        let mut categories = Vec::new();
        let mut brands = Vec::new();
        let start = self
            .label_words
            .partition_point(|(word, _)| &**word < prefix);
        for (word, label) in &self.label_words[start..] {
            if !word.starts_with(prefix) {
                break;
            }
            let label_index = *label as usize;
            if std::mem::replace(&mut completing[label_index], true) {
                continue;
            }
            let label = &self.labels[label_index];
            let counted = (label.value.clone(), label.count);
            match label.kind {
                SuggestionKind::Category => categories.push(counted),
                _ => brands.push(counted),
            }
        }
        for values in [&mut categories, &mut brands] {
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }

        // The best `keep` by (score, lower id), each product once: a
        // product with two words completing the prefix is in two lists
        // with the same score.
        let labelled = |index: u32| index != u32::MAX && completing[index as usize];
        let mut best: Vec<(u32, u64, u32)> = Vec::with_capacity(keep + 1);
        let first = self.words.partition_point(|word| &**word < prefix);
        let any_labelled = completing.iter().any(|&completes| completes);
        for (word, postings) in self.words[first..].iter().zip(&self.postings[first..]) {
            if !word.starts_with(prefix) {
                break;
            }
            // The most a product of this word can score: once the kept are
            // as good and the ids (ascending) past the worst kept one, no
            // later product of the word can be better.
            let word_best = IN_NAME
                + if any_labelled { IN_LABELS } else { 0 }
                + if word.len() == prefix.len() {
                    EXACT_WORD
                } else {
                    0
                };
            for posting in postings {
                if best.len() == keep
                    && best
                        .last()
                        .is_some_and(|worst| posting.id > worst.1 && word_best <= worst.0)
                {
                    break;
                }
                let mut score = IN_NAME;
                if labelled(posting.category) || labelled(posting.brand) {
                    score += IN_LABELS;
                }
                if word.len() == prefix.len() {
                    score += EXACT_WORD;
                }
                let candidate = (score, posting.id, posting.name);
                let better = |a: &(u32, u64, u32), b: &(u32, u64, u32)| {
                    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
                };
                if best.len() == keep && best.last().is_none_or(|worst| !better(&candidate, worst))
                {
                    continue;
                }
                match best.iter().position(|kept| kept.1 == posting.id) {
                    // Seen under another word: the exact word scores more.
                    Some(at) if best[at].0 >= score => continue,
                    Some(at) => {
                        best.remove(at);
                    }
                    None => {}
                }
                let at = best.partition_point(|kept| better(kept, &candidate));
                best.insert(at, candidate);
                best.truncate(keep);
            }
        }
        let products = best
            .into_iter()
            .map(|(_, id, name)| (ProductId(id), self.names[name as usize].clone()))
            .collect();
        Completed {
            categories,
            brands,
            products,
        }
    }
}
