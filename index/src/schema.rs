//! The index's schema, its analyzers, and how a product becomes a document.
//!
//! A document is derived from the store and nothing else: the product and
//! whether it is in stock. Its fingerprint (a hash of everything indexed)
//! lets the indexer skip the rewrite when an event changed nothing a
//! search can see, which is most inventory events.

use mercato_engine::{PRODUCT_PRICE_SCALE_MAX, Product, Stock};
use serde::{Deserialize, Serialize};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    Stemmer, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument};

/// The version of the schema and of what the documents hold. An index
/// written with another version is rebuilt at open. Bump it with any change
/// to the fields, the analyzers or [`document`].
pub(crate) const SCHEMA_VERSION: u64 = 2;

/// Words split on anything not alphanumeric, lower-cased, accents folded,
/// English stems.
pub(crate) const STEMMED_ANALYZER: &str = "mercato_stemmed";
/// As [`STEMMED_ANALYZER`] without stemming: the words as typed (folded),
/// for exact matches, typos and prefixes.
pub(crate) const WORDS_ANALYZER: &str = "mercato_words";
/// The whole SKU as one lower-cased term.
pub(crate) const SKU_ANALYZER: &str = "mercato_sku";
/// Tokens longer than this (bytes) are neither indexed nor searched: no
/// one types them, and they would only grow the term dictionary.
pub(crate) const TOKEN_LENGTH_MAX: usize = 40;

/// Every field of the schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// The product id: indexed (to replace a document) and fast (hits).
    pub(crate) id: Field,
    /// Hash of everything indexed, fast: see [`document`].
    pub(crate) fingerprint: Field,
    /// Stemmed texts, scored with BM25.
    pub(crate) name: Field,
    pub(crate) description: Field,
    /// Brand and category, stemmed.
    pub(crate) labels: Field,
    /// The name and the labels, not stemmed: words of the name as typed,
    /// prefixes, typos in the name.
    pub(crate) name_words: Field,
    pub(crate) label_words: Field,
    /// Name, labels and description together, not stemmed: exact words and
    /// typos anywhere, one term dictionary to expand a typo in rather than
    /// three.
    pub(crate) text_words: Field,
    /// The SKU's words (`sprt`, `yoga`, `000001`): matched exactly only.
    pub(crate) sku_words: Field,
    /// The whole SKU, lower-cased: matched exactly only.
    pub(crate) sku: Field,
    /// The category and the brand as they are: filters and facets.
    pub(crate) category: Field,
    pub(crate) brand: Field,
    /// The price in minor units (cents), split in two u64 halves: a price
    /// below 10^18 has up to 10^20 cents, more than a u64 holds.
    pub(crate) price_high: Field,
    pub(crate) price_low: Field,
    /// Creation time, ms since the epoch: `newest`.
    pub(crate) created_at: Field,
    /// 1 when `available > 0`, else 0.
    pub(crate) in_stock: Field,
}

const ID: &str = "id";
const FINGERPRINT: &str = "fingerprint";
const NAME: &str = "name";
const DESCRIPTION: &str = "description";
const LABELS: &str = "labels";
const NAME_WORDS: &str = "name_words";
const LABEL_WORDS: &str = "label_words";
const TEXT_WORDS: &str = "text_words";
const SKU_WORDS: &str = "sku_words";
const SKU: &str = "sku";
pub(crate) const CATEGORY: &str = "category";
pub(crate) const BRAND: &str = "brand";
pub(crate) const PRICE_HIGH: &str = "price_high";
pub(crate) const PRICE_LOW: &str = "price_low";
pub(crate) const CREATED_AT: &str = "created_at";
pub(crate) const IN_STOCK: &str = "in_stock";
pub(crate) const ID_COLUMN: &str = ID;
pub(crate) const FINGERPRINT_COLUMN: &str = FINGERPRINT;

fn text(analyzer: &str, record: IndexRecordOption) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyzer)
            .set_index_option(record),
    )
}

/// The schema this build writes.
pub(crate) fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field(ID, INDEXED | FAST);
    builder.add_u64_field(FINGERPRINT, FAST);
    builder.add_text_field(NAME, text(STEMMED_ANALYZER, IndexRecordOption::WithFreqs));
    builder.add_text_field(
        DESCRIPTION,
        text(STEMMED_ANALYZER, IndexRecordOption::WithFreqs),
    );
    builder.add_text_field(LABELS, text(STEMMED_ANALYZER, IndexRecordOption::Basic));
    builder.add_text_field(NAME_WORDS, text(WORDS_ANALYZER, IndexRecordOption::Basic));
    builder.add_text_field(LABEL_WORDS, text(WORDS_ANALYZER, IndexRecordOption::Basic));
    builder.add_text_field(TEXT_WORDS, text(WORDS_ANALYZER, IndexRecordOption::Basic));
    builder.add_text_field(SKU_WORDS, text(WORDS_ANALYZER, IndexRecordOption::Basic));
    builder.add_text_field(SKU, text(SKU_ANALYZER, IndexRecordOption::Basic));
    let label = text("raw", IndexRecordOption::Basic).set_fast("raw");
    builder.add_text_field(CATEGORY, label.clone());
    builder.add_text_field(BRAND, label);
    builder.add_u64_field(PRICE_HIGH, NumericOptions::default().set_fast());
    builder.add_u64_field(PRICE_LOW, NumericOptions::default().set_fast());
    builder.add_u64_field(CREATED_AT, FAST);
    builder.add_u64_field(IN_STOCK, FAST);
    builder.build()
}

impl Fields {
    /// The fields of `schema`, which must be [`schema()`].
    pub(crate) fn of(schema: &Schema) -> tantivy::Result<Fields> {
        let field = |name: &str| schema.get_field(name);
        Ok(Fields {
            id: field(ID)?,
            fingerprint: field(FINGERPRINT)?,
            name: field(NAME)?,
            description: field(DESCRIPTION)?,
            labels: field(LABELS)?,
            name_words: field(NAME_WORDS)?,
            label_words: field(LABEL_WORDS)?,
            text_words: field(TEXT_WORDS)?,
            sku_words: field(SKU_WORDS)?,
            sku: field(SKU)?,
            category: field(CATEGORY)?,
            brand: field(BRAND)?,
            price_high: field(PRICE_HIGH)?,
            price_low: field(PRICE_LOW)?,
            created_at: field(CREATED_AT)?,
            in_stock: field(IN_STOCK)?,
        })
    }
}

/// The words analyzer: the words of a text as typed, folded.
pub(crate) fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(TOKEN_LENGTH_MAX))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The stemmed analyzer: [`words_analyzer`] plus English stems.
pub(crate) fn stemmed_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(TOKEN_LENGTH_MAX))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The SKU analyzer: the whole text as one term, lower-cased, folded.
pub(crate) fn sku_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers the analyzers on an index (they are not stored with it, so
/// every open registers them again).
pub(crate) fn register_analyzers(index: &Index) {
    let tokenizers = index.tokenizers();
    tokenizers.register(STEMMED_ANALYZER, stemmed_analyzer());
    tokenizers.register(WORDS_ANALYZER, words_analyzer());
    tokenizers.register(SKU_ANALYZER, sku_analyzer());
}

/// The tokens `analyzer` makes of `text`.
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().text.clone());
    }
    tokens
}

/// Whether a word of `text`, as [`words_analyzer`] cuts it, starts with
/// `prefix` (a word of that analyzer); answered without the analyzer for
/// ASCII text, where a word is a run of letters and digits, lower-cased.
pub(crate) fn has_word_starting_with(
    analyzer: &mut TextAnalyzer,
    text: &str,
    prefix: &str,
) -> bool {
    if !text.is_ascii() {
        return tokens(analyzer, text)
            .iter()
            .any(|word| word.starts_with(prefix));
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_alphanumeric() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|byte| !byte.is_ascii_alphanumeric())
            .map_or(bytes.len(), |length| start + length);
        let word = &bytes[start..end];
        if word.len() < TOKEN_LENGTH_MAX
            && word.len() >= prefix.len()
            && word[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        {
            return true;
        }
        start = end;
    }
    false
}

/// A price in minor units: `19.99` is 1999. Prices are validated by the
/// engine (at least 0, at most [`PRODUCT_PRICE_SCALE_MAX`] places).
pub(crate) fn minor_units(price: mercato_engine::Decimal) -> u128 {
    let mut price = price;
    price.rescale(PRODUCT_PRICE_SCALE_MAX);
    let units = price.mantissa();
    assert!(units >= 0, "prices are never negative");
    units.unsigned_abs()
}

/// The document of a live product, and its fingerprint.
pub(crate) fn document(
    fields: &Fields,
    product: &Product,
    stock: &Stock,
) -> (TantivyDocument, u64) {
    assert_eq!(product.id, stock.product_id);
    let in_stock = u64::from(stock.available() > 0);
    let price = minor_units(product.price);
    let mut document = TantivyDocument::default();
    document.add_u64(fields.id, product.id.0);
    document.add_text(fields.name, &product.name);
    document.add_text(fields.name_words, &product.name);
    document.add_text(fields.text_words, &product.name);
    document.add_text(fields.description, &product.description);
    document.add_text(fields.text_words, &product.description);
    for label in [&product.brand, &product.category] {
        document.add_text(fields.labels, label);
        document.add_text(fields.label_words, label);
        document.add_text(fields.text_words, label);
    }
    document.add_text(fields.sku_words, &product.sku);
    document.add_text(fields.sku, &product.sku);
    // Empty labels are left out: they are no facet value and no filter.
    if !product.category.is_empty() {
        document.add_text(fields.category, &product.category);
    }
    if !product.brand.is_empty() {
        document.add_text(fields.brand, &product.brand);
    }
    document.add_u64(fields.price_high, (price >> 64) as u64);
    document.add_u64(fields.price_low, price as u64);
    document.add_u64(fields.created_at, product.created_at.as_millis());
    document.add_u64(fields.in_stock, in_stock);

    let mut hash = Fingerprint::new();
    hash.u64(SCHEMA_VERSION);
    hash.u64(product.id.0);
    for text in [
        &product.name,
        &product.description,
        &product.brand,
        &product.category,
        &product.sku,
    ] {
        hash.text(text);
    }
    hash.u64((price >> 64) as u64);
    hash.u64(price as u64);
    hash.u64(product.created_at.as_millis());
    hash.u64(in_stock);
    let fingerprint = hash.finish();
    document.add_u64(fields.fingerprint, fingerprint);
    (document, fingerprint)
}

/// FNV-1a, 64 bits: stable across builds and runs (unlike std's hasher,
/// whose output may change between Rust versions), which matters since
/// fingerprints are stored in the index.
struct Fingerprint(u64);

impl Fingerprint {
    fn new() -> Fingerprint {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// Length first, so `("ab", "c")` and `("a", "bc")` differ.
    fn text(&mut self, text: &str) {
        self.u64(text.len() as u64);
        self.bytes(text.as_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What every commit of the index carries (tantivy's commit payload, JSON):
/// the schema version and the last event whose effects the commit holds.
/// Written in the same commit as the documents, so the two never disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommitPayload {
    pub(crate) schema_version: u64,
    pub(crate) position: u64,
}

impl CommitPayload {
    pub(crate) fn new(position: u64) -> CommitPayload {
        CommitPayload {
            schema_version: SCHEMA_VERSION,
            position,
        }
    }

    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self).expect("a payload always serializes")
    }

    pub(crate) fn decode(text: &str) -> Option<CommitPayload> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzers_fold_case_and_accents_and_stem() {
        let mut words = words_analyzer();
        assert_eq!(
            tokens(&mut words, "Crème BRÛLÉE usb-c 1080p"),
            ["creme", "brulee", "usb", "c", "1080p"]
        );
        let mut stemmed = stemmed_analyzer();
        assert_eq!(
            tokens(&mut stemmed, "Running Headphones"),
            ["run", "headphon"]
        );
        let long = "x".repeat(TOKEN_LENGTH_MAX + 1);
        assert!(tokens(&mut words, &long).is_empty());
    }

    #[test]
    fn word_starts_agree_with_the_analyzer() {
        let mut words = words_analyzer();
        let long = format!("ab{}", "c".repeat(TOKEN_LENGTH_MAX));
        let texts = [
            "Rain Jacket",
            "USB-C cable, 2 m",
            "brand-new RACK",
            "x1080p",
            "",
            "  --  ",
            "Crème brûlée torch",
            "naïve Café",
            &long,
            "ab ab",
        ];
        let prefixes = [
            "ra", "c", "rack", "1080", "x", "creme", "cafe", "ab", "b", "abc", "naive", "é",
        ];
        for text in texts {
            for prefix in prefixes {
                let expected = tokens(&mut words, text)
                    .iter()
                    .any(|word| word.starts_with(prefix));
                assert_eq!(
                    has_word_starting_with(&mut words, text, prefix),
                    expected,
                    "{text:?} {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn minor_units_are_exact() {
        assert_eq!(minor_units("19.99".parse().unwrap()), 1999);
        assert_eq!(minor_units("19.9".parse().unwrap()), 1990);
        assert_eq!(minor_units("0".parse().unwrap()), 0);
        let max = mercato_engine::PRODUCT_PRICE_MAX - mercato_engine::Decimal::new(1, 2);
        assert_eq!(minor_units(max), 99_999_999_999_999_999_999);
        assert!(minor_units(max) > u128::from(u64::MAX));
    }

    #[test]
    fn payloads_round_trip_and_refuse_strangers() {
        let payload = CommitPayload::new(42);
        assert_eq!(CommitPayload::decode(&payload.encode()), Some(payload));
        assert_eq!(CommitPayload::decode("garbage"), None);
        assert_eq!(CommitPayload::decode(r#"{"position":1}"#), None);
    }
}
