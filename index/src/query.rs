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

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DfaWrapper, FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy_fst::Automaton;

use crate::request::{QUERY_LENGTH_MAX, QUERY_WORDS_MAX};
use crate::schema::{Fields, sku_analyzer, stemmed_analyzer, tokens, words_analyzer};
use crate::tiers::{AllOf, Clause, Terms, TokenTiers, TypoWord, WordQuery};

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
    let last = words.words.len().saturating_sub(1);
    let word_queries = words.words.iter().enumerate().map(|(index, word)| {
        let prefix = words.last_is_prefix && index == last;
        word_query(fields, word, prefix)
    });
    if matching == Matching::All && !words.words.is_empty() {
        let filters = [(fields.category, category), (fields.brand, brand)]
            .into_iter()
            .filter_map(|(field, value)| value.map(|value| Term::from_field_text(field, value)))
            .collect();
        return Box::new(AllOf {
            filters,
            words: word_queries.collect(),
        });
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let text_clauses: Vec<(Occur, Box<dyn Query>)> = word_queries
        .map(|word| (Occur::Should, Box::new(word) as Box<dyn Query>))
        .collect();
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
    let mut words: Vec<WordQuery> = Vec::new();
    for word in earlier_words {
        words.push(word_query(fields, word, false));
    }
    for token in earlier_tokens {
        words.push(token_word(token_tiers(fields, token, false)));
    }
    let mut completions = TokenTiers::default();
    completions.clause(
        Clause::Constant(NO_TYPO + IN_NAME),
        vec![Terms::Prefix(fields.name_words, last.text.clone())],
    );
    completions.clause(
        Clause::Constant(NO_TYPO + IN_LABELS),
        vec![Terms::Prefix(fields.label_words, last.text.clone())],
    );
    completions.clause(
        Clause::Constant(EXACT_WORD_IN_NAME),
        vec![exact(fields.name_words, &last.text)],
    );
    words.push(token_word(completions));
    Some(Box::new(AllOf {
        filters: Vec::new(),
        words,
    }))
}

fn filter(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        )),
        0.0,
    ))
}

fn exact(field: Field, text: &str) -> Terms {
    Terms::Exact(Term::from_field_text(field, text))
}

/// A word of one token and no SKU.
fn token_word(token: TokenTiers) -> WordQuery {
    WordQuery {
        tokens: vec![token],
        sku: None,
    }
}

/// One word: all its tokens, or the whole word as a SKU.
fn word_query(fields: &Fields, word: &Word, prefix_last: bool) -> WordQuery {
    let last = word.tokens.len().saturating_sub(1);
    WordQuery {
        tokens: word
            .tokens
            .iter()
            .enumerate()
            .map(|(index, token)| token_tiers(fields, token, prefix_last && index == last))
            .collect(),
        sku: (!word.sku.is_empty() || word.tokens.is_empty())
            .then(|| (Term::from_field_text(fields.sku, &word.sku), WHOLE_SKU)),
    }
}

/// One token, in tiers (see the module's table), as the sum of these
/// clauses in this order.
fn token_tiers(fields: &Fields, token: &Token, with_prefix: bool) -> TokenTiers {
    let Token { text, stem, typos } = token;
    let mut exact_words = vec![
        exact(fields.name, stem),
        exact(fields.description, stem),
        exact(fields.labels, stem),
        exact(fields.text_words, text),
        exact(fields.sku_words, text),
    ];
    let mut in_name = vec![exact(fields.name, stem), exact(fields.name_words, text)];
    if with_prefix {
        exact_words.push(Terms::Prefix(fields.name_words, text.clone()));
        exact_words.push(Terms::Prefix(fields.label_words, text.clone()));
        in_name.push(Terms::Prefix(fields.name_words, text.clone()));
    }
    let mut tiers = TokenTiers::default();
    tiers.clause(Clause::Constant(NO_TYPO), exact_words);
    tiers.clause(
        Clause::Constant(IN_LABELS),
        vec![exact(fields.labels, stem)],
    );
    tiers.clause(
        Clause::Constant(EXACT_WORD_IN_NAME),
        vec![exact(fields.name_words, text)],
    );
    tiers.clause(
        Clause::Bm25 {
            term: Term::from_field_text(fields.name, stem),
            boost: BM25_NAME,
        },
        Vec::new(),
    );
    tiers.clause(
        Clause::Bm25 {
            term: Term::from_field_text(fields.description, stem),
            boost: BM25_DESCRIPTION,
        },
        Vec::new(),
    );
    if *typos > 0 {
        // Name, labels and description in one dictionary: one expansion;
        // the automata are built once for both fields.
        let automata = TypoAutomata::new(text, *typos);
        tiers.clause(Clause::Constant(TYPO), automata.terms(fields.text_words));
        in_name.extend(automata.terms(fields.name_words));
    }
    tiers.clause(Clause::Constant(IN_NAME), in_name);
    tiers
}

/// The words within `typos` of `text`, a typo on the first letter counting
/// as two: within budget 1 the first letter must match; within budget 2,
/// either it matches and the rest is within 2, or the whole word is within
/// 1 (an edit at the first letter, the rest exact or not, costs 2).
/// Transpositions cost 1. Built once per token and searched in as many
/// fields as needed; building them is a tenth of a query's work, so the
/// automata of the words searched lately are kept (a shopper's next
/// keystroke repeats every word before the last).
#[derive(Clone)]
struct TypoAutomata {
    first_letter: Arc<FirstLetterThen>,
    whole_word: Option<Arc<DfaWrapper>>,
    /// What they were built from, naming their expansions (`tiers`).
    word: TypoWord,
}

/// How many words' automata are kept: a few MB (an automaton is a 1 KB
/// table per state, tens of states). When full, all are dropped.
const TYPO_AUTOMATA_KEPT_MAX: usize = 256;

static TYPO_AUTOMATA_KEPT: LazyLock<Mutex<HashMap<(String, u8), TypoAutomata>>> =
    LazyLock::new(Mutex::default);

impl TypoAutomata {
    fn new(text: &str, typos: u8) -> TypoAutomata {
        let key = (text.to_owned(), typos);
        if let Some(kept) = TYPO_AUTOMATA_KEPT
            .lock()
            .ok()
            .and_then(|kept| kept.get(&key).cloned())
        {
            return kept;
        }
        let automata = TypoAutomata::build(text, typos);
        if let Ok(mut kept) = TYPO_AUTOMATA_KEPT.lock() {
            if kept.len() >= TYPO_AUTOMATA_KEPT_MAX {
                kept.clear();
            }
            kept.insert(key, automata.clone());
        }
        automata
    }

    fn build(text: &str, typos: u8) -> TypoAutomata {
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
            word: TypoWord {
                word: Arc::from(text),
                typos,
            },
        }
    }

    fn terms(&self, field: Field) -> Vec<Terms> {
        let mut terms = vec![Terms::FirstLetter(
            field,
            self.first_letter.clone(),
            self.word.clone(),
        )];
        if let Some(whole_word) = &self.whole_word {
            terms.push(Terms::Levenshtein(
                field,
                whole_word.clone(),
                self.word.clone(),
            ));
        }
        terms
    }
}

/// The bytes of one character, then the Levenshtein automaton of the rest.
pub(crate) struct FirstLetterThen {
    first: Vec<u8>,
    rest: DfaWrapper,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum FirstLetterState {
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

    /// The queries as tantivy's boolean queries would build them, clause
    /// by clause (what `tiers` replaced): the reference the tiered
    /// queries must equal, document for document and score for score.
    mod reference {
        use tantivy::query::{
            AutomatonWeight, BoostQuery, ConstScoreQuery, EnableScoring, TermQuery, Weight,
        };

        use super::super::*;

        struct AutomatonQuery<A>(Field, Arc<A>);

        impl<A> Clone for AutomatonQuery<A> {
            fn clone(&self) -> Self {
                AutomatonQuery(self.0, self.1.clone())
            }
        }

        impl<A> std::fmt::Debug for AutomatonQuery<A> {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("AutomatonQuery")
            }
        }

        impl<A> Query for AutomatonQuery<A>
        where
            A: Automaton + Send + Sync + 'static,
            A::State: Clone,
        {
            fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
                Ok(Box::new(AutomatonWeight::<A>::new(self.0, self.1.clone())))
            }
        }

        fn term(field: Field, text: &str) -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
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

        fn scored(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, text),
                    IndexRecordOption::WithFreqs,
                )),
                boost,
            ))
        }

        fn typo_queries(automata: &TypoAutomata, field: Field) -> Vec<Box<dyn Query>> {
            let mut queries: Vec<Box<dyn Query>> = vec![Box::new(AutomatonQuery(
                field,
                automata.first_letter.clone(),
            ))];
            if let Some(whole_word) = &automata.whole_word {
                queries.push(Box::new(AutomatonQuery(field, whole_word.clone())));
            }
            queries
        }

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
                (Occur::Should, scored(fields.name, stem, BM25_NAME)),
                (
                    Occur::Should,
                    scored(fields.description, stem, BM25_DESCRIPTION),
                ),
            ];
            if *typos > 0 {
                let automata = TypoAutomata::new(text, *typos);
                clauses.push((
                    Occur::Should,
                    constant(any(typo_queries(&automata, fields.text_words)), TYPO),
                ));
                in_name.extend(typo_queries(&automata, fields.name_words));
            }
            clauses.push((Occur::Should, constant(any(in_name), IN_NAME)));
            Box::new(BooleanQuery::new(clauses))
        }

        fn word_query(fields: &Fields, word: &Word, prefix_last: bool) -> Box<dyn Query> {
            if word.tokens.is_empty() {
                return constant(term(fields.sku, &word.sku), WHOLE_SKU);
            }
            let last = word.tokens.len() - 1;
            let tokens = word
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
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> =
                vec![(Occur::Should, Box::new(BooleanQuery::new(tokens)))];
            if !word.sku.is_empty() {
                alternatives.push((
                    Occur::Should,
                    constant(term(fields.sku, &word.sku), WHOLE_SKU),
                ));
            }
            Box::new(BooleanQuery::new(alternatives))
        }

        pub(super) fn search_query(
            fields: &Fields,
            words: &QueryWords,
            brand: Option<&str>,
        ) -> Box<dyn Query> {
            let last = words.words.len() - 1;
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
                .words
                .iter()
                .enumerate()
                .map(|(index, word)| {
                    let prefix = words.last_is_prefix && index == last;
                    (Occur::Must, word_query(fields, word, prefix))
                })
                .collect();
            if let Some(brand) = brand {
                clauses.push((Occur::Must, constant(term(fields.brand, brand), 0.0)));
            }
            Box::new(BooleanQuery::new(clauses))
        }

        pub(super) fn suggest_query(fields: &Fields, words: &QueryWords) -> Box<dyn Query> {
            let (last_word, earlier_words) = words.words.split_last().unwrap();
            let (last, earlier_tokens) = last_word.tokens.split_last().unwrap();
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for word in earlier_words {
                clauses.push((Occur::Must, word_query(fields, word, false)));
            }
            for token in earlier_tokens {
                clauses.push((Occur::Must, token_query(fields, token, false)));
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
            Box::new(BooleanQuery::new(clauses))
        }
    }

    /// Every document and score of `query`, segment by segment.
    fn matches(
        searcher: &tantivy::Searcher,
        query: &dyn Query,
    ) -> Vec<(usize, tantivy::DocId, u32)> {
        use tantivy::DocSet;
        use tantivy::query::EnableScoring;
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(searcher))
            .unwrap();
        let mut found = Vec::new();
        for (segment, reader) in searcher.segment_readers().iter().enumerate() {
            let mut scorer = weight.scorer(reader, 1.0).unwrap();
            let mut doc = scorer.doc();
            while doc != tantivy::TERMINATED {
                found.push((segment, doc, scorer.score().to_bits()));
                doc = scorer.advance();
            }
        }
        found
    }

    #[test]
    fn tiered_queries_equal_the_boolean_queries_they_replace() {
        use crate::schema::{register_analyzers, schema};
        use tantivy::doc;

        let schema = schema();
        let fields = Fields::of(&schema).unwrap();
        let index = tantivy::Index::create_in_ram(schema);
        register_analyzers(&index);
        let mut writer: tantivy::IndexWriter = index.writer(20_000_000).unwrap();
        let catalog = include_str!("../../data/catalog.jsonl");
        let mut names = Vec::new();
        let mut brands = Vec::new();
        for (line, row) in catalog.lines().enumerate() {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            let text = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
            let (name, description) = (text("name"), text("description"));
            let (brand, category, sku) = (text("brand"), text("category"), text("sku"));
            let mut document = doc!(
                fields.name => name.clone(),
                fields.name_words => name.clone(),
                fields.text_words => name.clone(),
                fields.description => description.clone(),
                fields.text_words => description,
                fields.sku_words => sku.clone(),
                fields.sku => sku,
                fields.category => category.clone(),
                fields.brand => brand.clone(),
            );
            for label in [&brand, &category] {
                document.add_text(fields.labels, label);
                document.add_text(fields.label_words, label);
                document.add_text(fields.text_words, label);
            }
            writer.add_document(document).unwrap();
            // Several segments, as a live index has.
            if line % 500 == 499 {
                writer.commit().unwrap();
            }
            names.push(name);
            brands.push(brand);
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() > 1);

        // Words of names as typed, cut short, with a typo, in pairs and
        // with a brand; and a few made up.
        let mut texts: Vec<(String, Option<String>)> = Vec::new();
        for (index, name) in names.iter().enumerate().step_by(23) {
            let words: Vec<&str> = name.split_whitespace().collect();
            let word = words[index % words.len()];
            texts.push((word.to_owned(), None));
            texts.push((word.chars().take(3).collect(), None));
            texts.push((format!("{word} "), Some(brands[index].clone())));
            if word.chars().count() > 5 {
                let typo: String = word
                    .chars()
                    .enumerate()
                    .map(|(at, letter)| if at == 2 { 'x' } else { letter })
                    .collect();
                texts.push((typo, None));
            }
            if let Some(next) = words.get(index % words.len() + 1) {
                let cut: String = next.chars().take(2).collect();
                texts.push((format!("{word} {cut}"), None));
                texts.push((format!("{word} {next}"), Some(brands[index].clone())));
            }
        }
        for text in [
            "usb-c cable",
            "SPRT-YOGA-000001",
            "1080p",
            "headphnes wirless",
            "zzz",
        ] {
            texts.push((text.to_owned(), None));
        }
        // Words of most descriptions under a brand: few documents against
        // long lists, which are skipped through rather than read.
        for brand in brands.iter().step_by(97) {
            for text in ["made ", "with ", "for", "the desig"] {
                texts.push((text.to_owned(), Some(brand.clone())));
            }
        }

        let mut compared = 0;
        for (text, brand) in &texts {
            let words = QueryWords::parse(text);
            if words.is_empty() {
                continue;
            }
            let tiered = search_query(&fields, &words, Matching::All, None, brand.as_deref());
            let boolean = reference::search_query(&fields, &words, brand.as_deref());
            let found = matches(&searcher, &*tiered);
            assert_eq!(
                found,
                matches(&searcher, &*boolean),
                "search {text:?} {brand:?}"
            );
            compared += usize::from(!found.is_empty());
            if let Some(tiered) = suggest_query(&fields, &words) {
                let boolean = reference::suggest_query(&fields, &words);
                assert_eq!(
                    matches(&searcher, &*tiered),
                    matches(&searcher, &*boolean),
                    "suggest {text:?}"
                );
            }
        }
        assert!(
            compared > texts.len() / 2,
            "{compared} of {} found something",
            texts.len()
        );
    }
}
