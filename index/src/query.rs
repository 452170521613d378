//! From what a user typed to a tantivy query, built word by word.
//!
//! The text is never handed to tantivy's query parser: it is cut into
//! words by the same analyzer the documents went through, and each word
//! becomes a fixed shape of term, typo and prefix queries. So quotes,
//! colons, parentheses or `AND` are just characters (mostly dropped as
//! separators), and any text makes a valid query.
//!
//! Ranking is in tiers, as Meilisearch ranks (typo before attribute before
//! exactness), by constant scores that dwarf the next tier:
//!
//! | tier | score | a word that ... |
//! |---|---|---|
//! | no typo | 1000 | matches a field exactly, by stem or (last word) as a prefix |
//! | typo | 1 | matches only with typos |
//! | in name | 20 | matches the name (any way) |
//! | in labels | 5 | matches the brand or category (by stem) |
//! | exact word | 4 | is a word of the name as typed (not only its stem) |
//! | BM25 | ~0-4 | name (x0.3) and description (x0.1) by BM25 |
//!
//! Every word must match (Meilisearch's default); when that finds nothing
//! and there are several words, the search runs again with any word
//! matching, and documents matching more words rank first.

use std::sync::Arc;

use tantivy::Term;
use tantivy::query::{
    AllQuery, AutomatonWeight, BooleanQuery, BoostQuery, ConstScoreQuery, DfaWrapper,
    EnableScoring, Explanation, FuzzyTermQuery, Occur, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};
use tantivy_fst::Automaton;

use crate::request::{QUERY_LENGTH_MAX, QUERY_WORDS_MAX};
use crate::schema::{Fields, sku_analyzer, stemmed_analyzer, tokens, words_analyzer};

const NO_TYPO: f32 = 1000.0;
const TYPO: f32 = 1.0;
const IN_NAME: f32 = 20.0;
const IN_LABELS: f32 = 5.0;
const EXACT_WORD_IN_NAME: f32 = 4.0;
const BM25_NAME: f32 = 0.3;
const BM25_DESCRIPTION: f32 = 0.1;
/// A whole SKU typed: as good as a word found in the name without typos.
const WHOLE_SKU: f32 = NO_TYPO + IN_NAME;

/// The words of a query, analyzed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryWords {
    /// The words separated by white space, each with its tokens (none for
    /// a word of tokens too long to be indexed: it matches nothing).
    pub(crate) words: Vec<Word>,
    /// The text ends inside a word: its last token also matches as a prefix.
    pub(crate) last_is_prefix: bool,
}

/// One word as typed (between white space): `usb-c` is one word of two
/// tokens, which must all match, or the whole word the SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    /// The word as a SKU term (lower-cased, folded).
    pub(crate) sku: String,
    pub(crate) tokens: Vec<Token>,
}

/// One analyzed token of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// As typed, lower-cased and folded.
    pub(crate) text: String,
    /// Its English stem.
    pub(crate) stem: String,
    /// The typos it may have: 0 up to 4 letters, 1 from 5, 2 from 9, and
    /// none for anything with a digit (numbers, model numbers, SKUs).
    pub(crate) typos: u8,
}

impl QueryWords {
    /// The words of `text`, within [`QUERY_LENGTH_MAX`] and
    /// [`QUERY_WORDS_MAX`].
    pub(crate) fn parse(text: &str) -> QueryWords {
        let mut end = text.len().min(QUERY_LENGTH_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = end < text.len();
        let text = &text[..end];
        let mut words_analyzer = words_analyzer();
        let mut stemmed_analyzer = stemmed_analyzer();
        let mut sku_analyzer = sku_analyzer();
        let mut words = Vec::new();
        let mut token_count = 0;
        let mut capped = cut;
        for raw in text.split_whitespace() {
            if token_count == QUERY_WORDS_MAX {
                capped = true;
                break;
            }
            let mut word_tokens = Vec::new();
            for text in tokens(&mut words_analyzer, raw) {
                if token_count == QUERY_WORDS_MAX {
                    capped = true;
                    break;
                }
                let stem = tokens(&mut stemmed_analyzer, &text)
                    .pop()
                    .unwrap_or_else(|| text.clone());
                let typos = typo_budget(&text);
                word_tokens.push(Token { text, stem, typos });
                token_count += 1;
            }
            let sku = tokens(&mut sku_analyzer, raw).pop().unwrap_or_default();
            if word_tokens.is_empty() {
                // Only separators (punctuation, emoji): not a word. Letters
                // or digits in tokens too long to index: a word that only
                // a SKU could match, so matches nothing else.
                if !raw.chars().any(char::is_alphanumeric) {
                    continue;
                }
                token_count += 1;
            }
            words.push(Word {
                sku,
                tokens: word_tokens,
            });
        }
        let last_is_prefix = !capped
            && words.last().is_some_and(|word| !word.tokens.is_empty())
            && text.chars().last().is_some_and(char::is_alphanumeric);
        QueryWords {
            words,
            last_is_prefix,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// How many words; a fallback to any word makes sense from two.
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }
}

/// The typo budget of a token, in characters.
fn typo_budget(token: &str) -> u8 {
    if token.chars().any(|c| c.is_numeric()) {
        return 0;
    }
    match token.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Whether every word must match or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Matching {
    All,
    Any,
}

/// The query for `words` (everything when there are none) and the exact
/// filters on category and brand.
pub(crate) fn search_query(
    fields: &Fields,
    words: &QueryWords,
    matching: Matching,
    category: Option<&str>,
    brand: Option<&str>,
) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let occur = match matching {
        Matching::All => Occur::Must,
        Matching::Any => Occur::Should,
    };
    let last = words.words.len().saturating_sub(1);
    // Several clauses are intersected (or merged): see `Materialized`.
    let intersected = words.words.len() > 1 || category.is_some() || brand.is_some();
    let mut text_clauses = Vec::new();
    for (index, word) in words.words.iter().enumerate() {
        let prefix = words.last_is_prefix && index == last;
        let query = word_query(fields, word, prefix);
        text_clauses.push((occur, materialized(query, intersected)));
    }
    if text_clauses.is_empty() {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    } else {
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(text_clauses))));
    }
    for (field, value) in [(fields.category, category), (fields.brand, brand)] {
        if let Some(value) = value {
            clauses.push((Occur::Must, filter(field, value)));
        }
    }
    if clauses.len() == 1 {
        return clauses.pop().expect("one clause").1;
    }
    Box::new(BooleanQuery::new(clauses))
}

/// The query for suggestions: every word but the last as in a search, and
/// the last one as a prefix of a word of a name, brand or category.
pub(crate) fn suggest_query(fields: &Fields, words: &QueryWords) -> Option<Box<dyn Query>> {
    let (last_word, earlier_words) = words.words.split_last()?;
    let (last, earlier_tokens) = last_word.tokens.split_last()?;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in earlier_words {
        clauses.push((
            Occur::Must,
            materialized(word_query(fields, word, false), true),
        ));
    }
    for token in earlier_tokens {
        clauses.push((
            Occur::Must,
            materialized(token_query(fields, token, false), true),
        ));
    }
    let completions: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Should,
            constant(prefix(fields.name_words, &last.text), NO_TYPO + IN_NAME),
        ),
        (
            Occur::Should,
            constant(prefix(fields.label_words, &last.text), NO_TYPO + IN_LABELS),
        ),
        (
            Occur::Should,
            constant(term(fields.name_words, &last.text), EXACT_WORD_IN_NAME),
        ),
    ];
    clauses.push((Occur::Must, Box::new(BooleanQuery::new(completions))));
    Some(Box::new(BooleanQuery::new(clauses)))
}

fn materialized(query: Box<dyn Query>, intersected: bool) -> Box<dyn Query> {
    if intersected {
        Box::new(Materialized(query))
    } else {
        query
    }
}

fn filter(field: Field, value: &str) -> Box<dyn Query> {
    constant(term(field, value), 0.0)
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

/// A term scored by BM25 (frequencies and field lengths), times `boost`.
fn scored_term(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::WithFreqs,
        )),
        boost,
    ))
}

fn prefix(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(FuzzyTermQuery::new_prefix(
        Term::from_field_text(field, text),
        0,
        true,
    ))
}

fn constant(query: Box<dyn Query>, score: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

fn any(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::union(queries))
}

/// One word: all its tokens, or the whole word as a SKU.
fn word_query(fields: &Fields, word: &Word, prefix_last: bool) -> Box<dyn Query> {
    if word.tokens.is_empty() {
        return constant(term(fields.sku, &word.sku), WHOLE_SKU);
    }
    let last = word.tokens.len() - 1;
    let tokens: Vec<(Occur, Box<dyn Query>)> = word
        .tokens
        .iter()
        .enumerate()
        .map(|(index, token)| {
            (
                Occur::Must,
                token_query(fields, token, prefix_last && index == last),
            )
        })
        .collect();
    let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    alternatives.push((Occur::Should, Box::new(BooleanQuery::new(tokens))));
    if !word.sku.is_empty() {
        alternatives.push((
            Occur::Should,
            constant(term(fields.sku, &word.sku), WHOLE_SKU),
        ));
    }
    Box::new(BooleanQuery::new(alternatives))
}

/// One token, in tiers (see the module's table).
fn token_query(fields: &Fields, token: &Token, with_prefix: bool) -> Box<dyn Query> {
    let Token { text, stem, typos } = token;
    let mut exact = vec![
        term(fields.name, stem),
        term(fields.description, stem),
        term(fields.labels, stem),
        term(fields.text_words, text),
        term(fields.sku_words, text),
    ];
    let mut in_name = vec![term(fields.name, stem), term(fields.name_words, text)];
    if with_prefix {
        exact.push(prefix(fields.name_words, text));
        exact.push(prefix(fields.label_words, text));
        in_name.push(prefix(fields.name_words, text));
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Should, constant(any(exact), NO_TYPO)),
        (
            Occur::Should,
            constant(term(fields.labels, stem), IN_LABELS),
        ),
        (
            Occur::Should,
            constant(term(fields.name_words, text), EXACT_WORD_IN_NAME),
        ),
        (Occur::Should, scored_term(fields.name, stem, BM25_NAME)),
        (
            Occur::Should,
            scored_term(fields.description, stem, BM25_DESCRIPTION),
        ),
    ];
    if *typos > 0 {
        // Name, labels and description in one dictionary: one expansion;
        // the automata are built once for both fields.
        let automata = TypoAutomata::new(text, *typos);
        clauses.push((
            Occur::Should,
            constant(any(automata.queries(fields.text_words)), TYPO),
        ));
        in_name.extend(automata.queries(fields.name_words));
    }
    clauses.push((Occur::Should, constant(any(in_name), IN_NAME)));
    Box::new(BooleanQuery::new(clauses))
}

/// The words within `typos` of `text`, a typo on the first letter counting
/// as two: within budget 1 the first letter must match; within budget 2,
/// either it matches and the rest is within 2, or the whole word is within
/// 1 (an edit at the first letter, the rest exact or not, costs 2).
/// Transpositions cost 1. Built once per token (building the automata is
/// a tenth of a query's work) and searched in as many fields as needed.
struct TypoAutomata {
    first_letter: Arc<FirstLetterThen>,
    whole_word: Option<Arc<DfaWrapper>>,
}

impl TypoAutomata {
    fn new(text: &str, typos: u8) -> TypoAutomata {
        assert!((1..=2).contains(&typos), "typo budgets are 1 or 2");
        let levenshtein = |text: &str, distance: u8| {
            FuzzyTermQuery::new(
                Term::from_field_text(Field::from_field_id(0), text),
                distance,
                true,
            )
            .automaton()
            .expect("distances of 1 and 2 have automata")
        };
        let mut chars = text.chars();
        let first = chars.next().map(String::from).unwrap_or_default();
        let first_letter = Arc::new(FirstLetterThen {
            first: first.into_bytes(),
            rest: levenshtein(chars.as_str(), typos),
        });
        let whole_word = (typos >= 2).then(|| Arc::new(levenshtein(text, 1)));
        TypoAutomata {
            first_letter,
            whole_word,
        }
    }

    fn queries(&self, field: Field) -> Vec<Box<dyn Query>> {
        let mut queries: Vec<Box<dyn Query>> = vec![Box::new(AutomatonQuery {
            field,
            automaton: self.first_letter.clone(),
        })];
        if let Some(whole_word) = &self.whole_word {
            queries.push(Box::new(AutomatonQuery {
                field,
                automaton: whole_word.clone(),
            }));
        }
        queries
    }
}

/// The terms of `field` an automaton accepts (built elsewhere, shared).
struct AutomatonQuery<A> {
    field: Field,
    automaton: Arc<A>,
}

impl<A> Clone for AutomatonQuery<A> {
    fn clone(&self) -> Self {
        AutomatonQuery {
            field: self.field,
            automaton: self.automaton.clone(),
        }
    }
}

impl<A> std::fmt::Debug for AutomatonQuery<A> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AutomatonQuery")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl<A> Query for AutomatonQuery<A>
where
    A: Automaton + Send + Sync + 'static,
    A::State: Clone,
{
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::<A>::new(
            self.field,
            self.automaton.clone(),
        )))
    }
}

/// A word's query, its matches and scores listed once per segment, so that
/// intersecting it with other words or filters seeks in a list. A word's
/// query is a union of unions, and tantivy's union clears a 4,096-document
/// window on every seek past it: intersecting two words that way spent
/// most of a query clearing memory. Listing the matches is one pass, in
/// order, with the same scores.
#[derive(Debug)]
struct Materialized(Box<dyn Query>);

impl Clone for Materialized {
    fn clone(&self) -> Self {
        Materialized(self.0.box_clone())
    }
}

impl Query for Materialized {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(MaterializedWeight(self.0.weight(scoring)?)))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.0.query_terms(visitor);
    }
}

struct MaterializedWeight(Box<dyn Weight>);

impl Weight for MaterializedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut inner = self.0.scorer(reader, boost)?;
        let mut docs = Vec::new();
        let mut scores = Vec::new();
        let mut doc = inner.doc();
        while doc != TERMINATED {
            docs.push(doc);
            scores.push(inner.score());
            doc = inner.advance();
        }
        docs.push(TERMINATED);
        Ok(Box::new(ListScorer {
            docs,
            scores,
            cursor: 0,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}

/// Documents in order with their scores; `docs` ends with `TERMINATED`.
struct ListScorer {
    docs: Vec<DocId>,
    scores: Vec<Score>,
    cursor: usize,
}

impl DocSet for ListScorer {
    fn advance(&mut self) -> DocId {
        if self.cursor < self.scores.len() {
            self.cursor += 1;
        }
        self.docs[self.cursor]
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.docs[self.cursor] >= target {
            return self.docs[self.cursor];
        }
        // Galloping: seeks in an intersection are mostly short.
        let mut step = 1;
        let mut low = self.cursor;
        let mut high = self.cursor + 1;
        while high < self.scores.len() && self.docs[high] < target {
            low = high;
            step *= 2;
            high = (high + step).min(self.scores.len());
        }
        let high = high.min(self.scores.len());
        self.cursor = low + self.docs[low..high].partition_point(|&doc| doc < target);
        self.docs[self.cursor]
    }

    fn doc(&self) -> DocId {
        self.docs[self.cursor]
    }

    fn size_hint(&self) -> u32 {
        (self.scores.len() - self.cursor) as u32
    }
}

impl Scorer for ListScorer {
    fn score(&mut self) -> Score {
        self.scores[self.cursor]
    }
}

/// The bytes of one character, then the Levenshtein automaton of the rest.
struct FirstLetterThen {
    first: Vec<u8>,
    rest: DfaWrapper,
}

#[derive(Clone, Copy, Debug)]
enum FirstLetterState {
    /// This many bytes of the first character matched.
    First(usize),
    /// In the rest's automaton.
    Rest(u32),
    Dead,
}

impl Automaton for FirstLetterThen {
    type State = FirstLetterState;

    fn start(&self) -> FirstLetterState {
        if self.first.is_empty() {
            FirstLetterState::Rest(self.rest.start())
        } else {
            FirstLetterState::First(0)
        }
    }

    fn is_match(&self, state: &FirstLetterState) -> bool {
        match state {
            FirstLetterState::Rest(rest) => self.rest.is_match(rest),
            FirstLetterState::First(_) | FirstLetterState::Dead => false,
        }
    }

    fn can_match(&self, state: &FirstLetterState) -> bool {
        match state {
            FirstLetterState::First(_) => true,
            FirstLetterState::Rest(rest) => self.rest.can_match(rest),
            FirstLetterState::Dead => false,
        }
    }

    fn accept(&self, state: &FirstLetterState, byte: u8) -> FirstLetterState {
        match *state {
            FirstLetterState::First(matched) if self.first[matched] == byte => {
                if matched + 1 == self.first.len() {
                    FirstLetterState::Rest(self.rest.start())
                } else {
                    FirstLetterState::First(matched + 1)
                }
            }
            FirstLetterState::First(_) | FirstLetterState::Dead => FirstLetterState::Dead,
            FirstLetterState::Rest(rest) => FirstLetterState::Rest(self.rest.accept(&rest, byte)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(automaton: &FirstLetterThen, word: &str) -> bool {
        let mut state = automaton.start();
        for byte in word.bytes() {
            state = automaton.accept(&state, byte);
        }
        automaton.is_match(&state)
    }

    fn first_letter(text: &str, typos: u8) -> Arc<FirstLetterThen> {
        TypoAutomata::new(text, typos).first_letter
    }

    #[test]
    fn the_first_letter_must_match() {
        let automaton = first_letter("headphones", 1);
        assert!(accepts(&automaton, "headphones"));
        assert!(accepts(&automaton, "headphnes"));
        assert!(accepts(&automaton, "haedphones"), "a transposition costs 1");
        assert!(!accepts(&automaton, "beadphones"));
        assert!(!accepts(&automaton, "eadphones"));
        assert!(!accepts(&automaton, "headphns"), "two typos");
        let accented = first_letter("éclair", 1);
        assert!(accepts(&accented, "éclairs"));
        assert!(!accepts(&accented, "eclairs"));
    }

    #[test]
    fn typo_budgets_follow_word_length() {
        assert_eq!(typo_budget("mat"), 0);
        assert_eq!(typo_budget("lamp"), 0);
        assert_eq!(typo_budget("cable"), 1);
        assert_eq!(typo_budget("keyboard"), 1);
        assert_eq!(typo_budget("headphone"), 2);
        assert_eq!(typo_budget("rtx4090"), 0);
        assert_eq!(typo_budget("1080"), 0);
        assert_eq!(typo_budget("crème"), 1);
    }

    #[test]
    fn parsing_bounds_words_and_length_and_finds_the_prefix() {
        let words = QueryWords::parse("Wireless HEADPHONES usb-c");
        assert_eq!(words.len(), 3);
        assert_eq!(words.words[1].tokens[0].text, "headphones");
        assert_eq!(words.words[1].tokens[0].stem, "headphon");
        assert_eq!(words.words[2].sku, "usb-c");
        assert_eq!(words.words[2].tokens.len(), 2);
        assert!(words.last_is_prefix);
        assert!(!QueryWords::parse("headp ").last_is_prefix);
        assert!(!QueryWords::parse("headp!").last_is_prefix);

        let many = "word ".repeat(50);
        let parsed = QueryWords::parse(&many);
        let tokens: usize = parsed.words.iter().map(|word| word.tokens.len()).sum();
        assert_eq!(tokens, QUERY_WORDS_MAX);
        let long = "é".repeat(QUERY_LENGTH_MAX);
        let parsed = QueryWords::parse(&long);
        assert!(!parsed.last_is_prefix, "a cut word is no prefix");

        for hostile in ["", "   ", "\"\"", "(((", ":", "🙂🙂", "\u{0}\u{1}"] {
            assert!(QueryWords::parse(hostile).is_empty(), "{hostile:?}");
        }
        assert_eq!(QueryWords::parse("name:foo").len(), 1);
        let too_long = QueryWords::parse(&"x".repeat(100));
        assert_eq!(too_long.len(), 1, "a word that matches nothing");
        assert!(too_long.words[0].tokens.is_empty());
        assert!(!too_long.last_is_prefix);
    }
}
