//! [`WordQuery`]: one word's matches and scores, listed per segment in one
//! pass over its terms' postings; [`AllOf`]: words and filters intersected,
//! each word looked for only where the ones before it matched.
//!
//! A token's query is a sum of a few clauses (the tiers of `query`'s
//! table): constants reached when any of some terms matches, and BM25 of a
//! term. Built from tantivy's boolean queries, that is a union of unions
//! over a dozen term and automaton scorers, and the unions' merging (a
//! 4,096-document window filled and cleared per step, a score combiner per
//! document) was most of a query's time. Here every term's postings are
//! read once, block by block, setting a bit per clause in a byte per
//! document; the documents are then taken in order and each one's score
//! summed from its bits: the constants before the first BM25 clause from a
//! table (whole numbers, exact in any order), then clause by clause in the
//! order the boolean query adds them. A term that several clauses use (the
//! name's stem is exact, in the name and scored) is read once.
//!
//! The result is the list a boolean query of the same clauses would give:
//! the same documents, the same scores (`query`'s tests compare them).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tantivy::index::SegmentId;
use tantivy::postings::{BlockSegmentPostings, TermInfo};
use tantivy::query::{DfaWrapper, EnableScoring, Explanation, Query, Scorer, TermQuery, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, InvertedIndexReader, Score, SegmentReader, TERMINATED, Term};
use tantivy_fst::Automaton;

use crate::query::FirstLetterThen;

/// At most this many clauses per token: one bit each in a byte.
const CLAUSES_MAX: usize = 8;

/// Postings are decoded in blocks of this many documents.
const COMPRESSION_BLOCK_SIZE: usize = 128;

/// A list is skipped through, document by document, rather than read
/// whole when it is this many times longer than the documents wanted (a
/// seek costs a skip-list step and a block decode at worst).
const SEEK_RATIO: usize = 8;

/// What a clause adds to a document's score when the document reaches it.
#[derive(Clone, Debug)]
pub(crate) enum Clause {
    /// A fixed amount.
    Constant(Score),
    /// BM25 of this term (frequencies and field lengths), times `boost`.
    /// The documents with the term reach the clause.
    Bm25 { term: Term, boost: Score },
}

/// Terms whose documents reach some clauses.
///
/// An expansion (a prefix's or an automaton's terms) leaves out its own
/// word: the word reaches the same clauses as an exact term (see
/// [`TokenTiers::reach`]), so its documents, often the most, are read once
/// however many expansions and exact clauses name it.
#[derive(Clone)]
pub(crate) enum Terms {
    /// One term.
    Exact(Term),
    /// Every term of `field` that starts with the text, but the text.
    Prefix(Field, String),
    /// Every term of `field` within a typo budget of a word, but the word.
    FirstLetter(Field, Arc<FirstLetterThen>, TypoWord),
    Levenshtein(Field, Arc<DfaWrapper>, TypoWord),
}

/// The word and typo budget a typo automaton was built for; they also name
/// the automaton's kept expansions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TypoWord {
    pub(crate) word: Arc<str>,
    pub(crate) typos: u8,
}

impl Terms {
    /// The word an expansion leaves out.
    fn own_word(&self) -> Option<Term> {
        match self {
            Terms::Exact(_) => None,
            Terms::Prefix(field, prefix) => Some(Term::from_field_text(*field, prefix)),
            Terms::FirstLetter(field, _, typo) | Terms::Levenshtein(field, _, typo) => {
                Some(Term::from_field_text(*field, &typo.word))
            }
        }
    }
}

impl std::fmt::Debug for Terms {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Terms::Exact(term) => formatter.debug_tuple("Exact").field(term).finish(),
            Terms::Prefix(field, prefix) => formatter
                .debug_tuple("Prefix")
                .field(field)
                .field(prefix)
                .finish(),
            Terms::FirstLetter(field, _, typo) => formatter
                .debug_tuple("FirstLetter")
                .field(field)
                .field(typo)
                .finish(),
            Terms::Levenshtein(field, _, typo) => formatter
                .debug_tuple("Levenshtein")
                .field(field)
                .field(typo)
                .finish(),
        }
    }
}

impl PartialEq for Terms {
    fn eq(&self, other: &Terms) -> bool {
        match (self, other) {
            (Terms::Exact(a), Terms::Exact(b)) => a == b,
            (Terms::Prefix(field_a, a), Terms::Prefix(field_b, b)) => field_a == field_b && a == b,
            (Terms::FirstLetter(field_a, _, a), Terms::FirstLetter(field_b, _, b)) => {
                field_a == field_b && a == b
            }
            (Terms::Levenshtein(field_a, _, a), Terms::Levenshtein(field_b, _, b)) => {
                field_a == field_b && a == b
            }
            _ => false,
        }
    }
}

/// One token: the documents any of its terms list, each scored by the
/// clauses its terms reach.
#[derive(Clone, Debug, Default)]
pub(crate) struct TokenTiers {
    clauses: Vec<Clause>,
    /// Terms and the clauses (bits) they reach; no two alike.
    sources: Vec<(Terms, u8)>,
}

impl TokenTiers {
    /// Adds a clause; the terms given reach it.
    pub(crate) fn clause(&mut self, clause: Clause, terms: Vec<Terms>) {
        assert!(
            self.clauses.len() < CLAUSES_MAX,
            "a token has at most 8 clauses"
        );
        let bit = 1 << self.clauses.len();
        if let Clause::Bm25 { term, .. } = &clause {
            // Its bit must mean "has the term": the score is looked up there.
            assert!(
                terms.is_empty(),
                "a BM25 clause is reached by its term only"
            );
            self.reach(Terms::Exact(term.clone()), bit);
        }
        self.clauses.push(clause);
        for terms in terms {
            self.reach(terms, bit);
        }
    }

    /// `terms` also reach the clauses of `bits` (and so does the word an
    /// expansion leaves out).
    fn reach(&mut self, terms: Terms, bits: u8) {
        if let Some(word) = terms.own_word() {
            self.add_source(Terms::Exact(word), bits);
        }
        self.add_source(terms, bits);
    }

    fn add_source(&mut self, terms: Terms, bits: u8) {
        match self.sources.iter_mut().find(|(known, _)| *known == terms) {
            Some((_, known_bits)) => *known_bits |= bits,
            None => self.sources.push((terms, bits)),
        }
    }
}

/// A word: documents with every token (scores summed in token order), or
/// with the word as a whole SKU (`sku`'s score added).
#[derive(Clone, Debug)]
pub(crate) struct WordQuery {
    pub(crate) tokens: Vec<TokenTiers>,
    pub(crate) sku: Option<(Term, Score)>,
}

impl WordQuery {
    fn word_weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<WordWeight> {
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for token in &self.tokens {
            let mut clauses = Vec::with_capacity(token.clauses.len());
            for clause in &token.clauses {
                clauses.push(match clause {
                    Clause::Constant(score) => ClauseWeight::Constant(*score),
                    Clause::Bm25 { term, boost } => ClauseWeight::Bm25 {
                        term: term.clone(),
                        boost: *boost,
                        weight: TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)
                            .weight(scoring)?,
                    },
                });
            }
            tokens.push(TokenWeight::new(clauses, token.sources.clone()));
        }
        Ok(WordWeight {
            tokens,
            sku: self.sku.clone(),
        })
    }
}

impl Query for WordQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.word_weight(scoring)?))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for token in &self.tokens {
            for (terms, _) in &token.sources {
                if let Terms::Exact(term) = terms {
                    visitor(term, false);
                }
            }
        }
        if let Some((term, _)) = &self.sku {
            visitor(term, false);
        }
    }
}

enum ClauseWeight {
    Constant(Score),
    Bm25 {
        term: Term,
        boost: Score,
        weight: Box<dyn Weight>,
    },
}

struct TokenWeight {
    clauses: Vec<ClauseWeight>,
    sources: Vec<(Terms, u8)>,
    /// The sum of the constant clauses before the first BM25 clause that
    /// a document's bits reach, by bits.
    constants: Box<[Score; 256]>,
    /// The bits of the first BM25 clause and every clause after it: added
    /// one by one, in order, so that the sum is the boolean query's to the
    /// last bit.
    in_order: u8,
}

impl TokenWeight {
    fn new(clauses: Vec<ClauseWeight>, sources: Vec<(Terms, u8)>) -> TokenWeight {
        let first_scored = clauses
            .iter()
            .position(|clause| matches!(clause, ClauseWeight::Bm25 { .. }))
            .unwrap_or(clauses.len());
        let mut constants = Box::new([0.0; 256]);
        for (index, clause) in clauses[..first_scored].iter().enumerate() {
            let ClauseWeight::Constant(constant) = clause else {
                unreachable!("before the first BM25 clause");
            };
            // Whole numbers: exact in any order.
            for (bits, sum) in constants.iter_mut().enumerate() {
                if bits & (1 << index) != 0 {
                    *sum += constant;
                }
            }
        }
        let in_order = (0xffu16 << first_scored) as u8;
        TokenWeight {
            clauses,
            sources,
            constants,
            in_order,
        }
    }
}

struct WordWeight {
    tokens: Vec<TokenWeight>,
    sku: Option<(Term, Score)>,
}

impl WordWeight {
    /// The word's documents and scores in this segment; only documents of
    /// `allowed` when given (the rest of an intersection, found first).
    fn list(
        &self,
        reader: &SegmentReader,
        scratch: &mut Scratch,
        allowed: Option<&Listed>,
    ) -> tantivy::Result<Listed> {
        let mut matched: Option<Listed> = None;
        for token in &self.tokens {
            let restrict = matched.as_ref().or(allowed);
            scratch.restrict(restrict.map(|listed| listed.docs.as_slice()));
            let listed = token.list(reader, scratch);
            scratch.restrict(None);
            let listed = listed?;
            matched = Some(match matched {
                None => listed,
                Some(earlier) => earlier.intersect(&listed),
            });
            if matched
                .as_ref()
                .is_some_and(|listed| listed.docs.is_empty())
            {
                break;
            }
        }
        let mut listed = matched.unwrap_or_default();
        if let Some((term, score)) = &self.sku {
            let mut sku = Listed::default();
            for_each_doc(reader, term, |doc| {
                sku.docs.push(doc);
                sku.scores.push(*score);
            })?;
            if let Some(allowed) = allowed {
                sku = sku.intersect(&allowed.zeroed());
            }
            if !sku.docs.is_empty() {
                listed = listed.union(&sku);
            }
        }
        Ok(listed)
    }
}

impl Weight for WordWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scratch = Scratch::take(reader.max_doc());
        let listed = self.list(reader, &mut scratch, None)?;
        scratch.give_back();
        Ok(Box::new(ListScorer::new(listed, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain(self.scorer(reader, 1.0)?, doc)
    }
}

fn explain(mut scorer: Box<dyn Scorer>, doc: DocId) -> tantivy::Result<Explanation> {
    if scorer.seek(doc) == doc {
        Ok(Explanation::new("words", scorer.score()))
    } else {
        Err(tantivy::TantivyError::InvalidArgument(format!(
            "document {doc} does not match"
        )))
    }
}

/// Documents with every word and every filter term; a word's score is
/// summed in order (the filters score 0), as a boolean query of `Must`
/// clauses would. The filters are listed first and each word is only
/// looked for in the documents the ones before it left: a brand filter or
/// a first word leaves a few hundred documents of a hundred thousand.
#[derive(Clone, Debug)]
pub(crate) struct AllOf {
    pub(crate) filters: Vec<Term>,
    pub(crate) words: Vec<WordQuery>,
}

impl Query for AllOf {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let mut words = Vec::with_capacity(self.words.len());
        for word in &self.words {
            words.push(word.word_weight(scoring)?);
        }
        Ok(Box::new(AllOfWeight {
            filters: self.filters.clone(),
            words,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for term in &self.filters {
            visitor(term, false);
        }
        for word in &self.words {
            word.query_terms(visitor);
        }
    }
}

struct AllOfWeight {
    filters: Vec<Term>,
    words: Vec<WordWeight>,
}

impl Weight for AllOfWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut matched: Option<Listed> = None;
        for term in &self.filters {
            let mut listed = Listed::default();
            for_each_doc(reader, term, |doc| {
                listed.docs.push(doc);
                listed.scores.push(0.0);
            })?;
            matched = Some(match matched {
                None => listed,
                Some(earlier) => earlier.intersect(&listed),
            });
        }
        let mut scratch = Scratch::take(reader.max_doc());
        for word in &self.words {
            if matched
                .as_ref()
                .is_some_and(|listed| listed.docs.is_empty())
            {
                break;
            }
            let listed = word.list(reader, &mut scratch, matched.as_ref())?;
            matched = Some(match matched {
                None => listed,
                Some(earlier) => earlier.intersect(&listed),
            });
        }
        scratch.give_back();
        Ok(Box::new(ListScorer::new(
            matched.unwrap_or_default(),
            boost,
        )))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        explain(self.scorer(reader, 1.0)?, doc)
    }
}

/// Documents in order and their scores.
#[derive(Default)]
struct Listed {
    docs: Vec<DocId>,
    scores: Vec<Score>,
}

impl Listed {
    /// The same documents, scoring 0.
    fn zeroed(&self) -> Listed {
        Listed {
            docs: self.docs.clone(),
            scores: vec![0.0; self.docs.len()],
        }
    }

    /// Documents in both, scores summed (self's first).
    fn intersect(&self, other: &Listed) -> Listed {
        let most = self.docs.len().min(other.docs.len());
        let mut out = Listed {
            docs: Vec::with_capacity(most + 1),
            scores: Vec::with_capacity(most),
        };
        let (mut i, mut j) = (0, 0);
        while i < self.docs.len() && j < other.docs.len() {
            match self.docs[i].cmp(&other.docs[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.docs.push(self.docs[i]);
                    out.scores.push(self.scores[i] + other.scores[j]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out
    }

    /// Documents in either, scores summed where in both (self's first).
    fn union(&self, other: &Listed) -> Listed {
        let most = self.docs.len() + other.docs.len();
        let mut out = Listed {
            docs: Vec::with_capacity(most + 1),
            scores: Vec::with_capacity(most),
        };
        let (mut i, mut j) = (0, 0);
        while i < self.docs.len() || j < other.docs.len() {
            let left = self.docs.get(i).copied().unwrap_or(TERMINATED);
            let right = other.docs.get(j).copied().unwrap_or(TERMINATED);
            if left < right {
                out.docs.push(left);
                out.scores.push(self.scores[i]);
                i += 1;
            } else if right < left {
                out.docs.push(right);
                out.scores.push(other.scores[j]);
                j += 1;
            } else {
                out.docs.push(left);
                out.scores.push(self.scores[i] + other.scores[j]);
                i += 1;
                j += 1;
            }
        }
        out
    }
}

/// A byte of clause bits per document of the segment (all 0 between
/// tokens) and the documents whose byte is set.
#[derive(Default)]
struct Scratch {
    bits: Vec<u8>,
    /// The segment's documents: `bits[..len]` is in use.
    len: usize,
    /// A bit per document whose byte is set (`len.div_ceil(64)` words in
    /// use): read in order, it lists them sorted without sorting.
    touched: Vec<u64>,
    touched_count: usize,
    /// When `restricted`, only the documents set here are marked (a bit
    /// per document, all 0 otherwise).
    allowed: Vec<u64>,
    /// The same documents, in order.
    allowed_docs: Vec<DocId>,
    restricted: bool,
}

/// Scratch space for this many searches at once is kept between searches
/// (a byte per document each); more are allocated and dropped.
const SCRATCH_KEPT_MAX: usize = 8;

static SCRATCH_KEPT: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

impl Scratch {
    /// Clean scratch space for a segment of `max_doc` documents.
    fn take(max_doc: u32) -> Scratch {
        let kept = SCRATCH_KEPT.lock().ok().and_then(|mut kept| kept.pop());
        let mut scratch = kept.unwrap_or_default();
        scratch.len = max_doc as usize;
        if scratch.bits.len() < scratch.len {
            scratch.bits.resize(scratch.len, 0);
        }
        let words = scratch.len.div_ceil(64);
        if scratch.touched.len() < words {
            scratch.touched.resize(words, 0);
        }
        scratch
    }

    /// Keeps clean scratch space for the next search. (Scratch left by an
    /// error half way is dropped instead: its bytes may not all be 0.)
    fn give_back(self) {
        debug_assert!(self.touched_count == 0 && !self.restricted);
        if let Ok(mut kept) = SCRATCH_KEPT.lock()
            && kept.len() < SCRATCH_KEPT_MAX
        {
            kept.push(self);
        }
    }

    /// The documents allowed, when so few against a list of `doc_freq`
    /// (longer than a block) that seeking each beats reading the list.
    /// Give them back with [`Scratch::return_allowed`].
    fn few_allowed(&mut self, doc_freq: u32) -> Option<Vec<DocId>> {
        let few = self.restricted
            && doc_freq as usize > COMPRESSION_BLOCK_SIZE
            && self.allowed_docs.len() * SEEK_RATIO < doc_freq as usize;
        few.then(|| std::mem::take(&mut self.allowed_docs))
    }

    fn return_allowed(&mut self, allowed: Vec<DocId>) {
        self.allowed_docs = allowed;
    }

    /// Marks only `docs` from now on (all of them again with `None`).
    fn restrict(&mut self, docs: Option<&[DocId]>) {
        if self.restricted {
            self.allowed.fill(0);
            self.restricted = false;
        }
        self.allowed_docs.clear();
        if let Some(docs) = docs {
            self.allowed_docs.extend_from_slice(docs);
            let words = self.len.div_ceil(64);
            if self.allowed.len() < words {
                self.allowed.resize(words, 0);
            }
            for &doc in docs {
                self.allowed[doc as usize / 64] |= 1 << (doc % 64);
            }
            self.restricted = true;
        }
    }

    #[inline]
    fn mark(&mut self, doc: DocId, bits: u8) {
        if self.restricted && self.allowed[doc as usize / 64] & (1 << (doc % 64)) == 0 {
            return;
        }
        let byte = &mut self.bits[doc as usize];
        if *byte == 0 {
            self.touched[doc as usize / 64] |= 1 << (doc % 64);
            self.touched_count += 1;
        }
        *byte |= bits;
    }

    /// The documents touched, in order, each with its bits; every byte is
    /// 0 again afterwards.
    fn drain(&mut self, mut each: impl FnMut(DocId, u8)) {
        let words = self.len.div_ceil(64);
        if self.restricted && self.allowed_docs.len() < words {
            // Fewer documents allowed (in order, and every touched one is
            // among them) than words to read.
            for &doc in &self.allowed_docs {
                let byte = &mut self.bits[doc as usize];
                if *byte != 0 {
                    each(doc, *byte);
                    *byte = 0;
                }
                self.touched[doc as usize / 64] = 0;
            }
        } else {
            for (word_index, word) in self.touched[..words].iter_mut().enumerate() {
                let mut value = *word;
                while value != 0 {
                    let doc = word_index * 64 + value.trailing_zeros() as usize;
                    value &= value - 1;
                    let byte = &mut self.bits[doc];
                    each(doc as DocId, *byte);
                    *byte = 0;
                }
                *word = 0;
            }
        }
        self.touched_count = 0;
    }
}

impl TokenWeight {
    fn list(&self, reader: &SegmentReader, scratch: &mut Scratch) -> tantivy::Result<Listed> {
        // BM25 scores per clause, in document order.
        let mut scored_lists: Vec<Vec<(DocId, Score)>> = vec![Vec::new(); self.clauses.len()];
        let mut postings: Option<BlockSegmentPostings> = None;
        for (terms, bits) in &self.sources {
            let bm25 = match terms {
                Terms::Exact(term) => self.clauses.iter().position(|clause| {
                    matches!(clause, ClauseWeight::Bm25 { term: scored_term, .. } if scored_term == term)
                }),
                _ => None,
            };
            if let Some(index) = bm25 {
                let ClauseWeight::Bm25 { weight, boost, .. } = &self.clauses[index] else {
                    unreachable!("found as a BM25 clause");
                };
                let mut scorer = weight.scorer(reader, *boost)?;
                let list = &mut scored_lists[index];
                if let Some(allowed) = scratch.few_allowed(scorer.size_hint()) {
                    // Skip to each allowed document rather than score all.
                    for &wanted in &allowed {
                        let mut doc = scorer.doc();
                        if doc < wanted {
                            doc = scorer.seek(wanted);
                        }
                        if doc == TERMINATED {
                            break;
                        }
                        if doc == wanted {
                            scratch.mark(doc, *bits);
                            list.push((doc, scorer.score()));
                        }
                    }
                    scratch.return_allowed(allowed);
                    continue;
                }
                list.reserve(scorer.size_hint() as usize);
                let mut doc = scorer.doc();
                while doc != TERMINATED {
                    scratch.mark(doc, *bits);
                    list.push((doc, scorer.score()));
                    doc = scorer.advance();
                }
                continue;
            }
            match terms {
                Terms::Exact(term) => {
                    let index = reader.inverted_index(term.field())?;
                    if let Some(info) = index.get_term_info(term)? {
                        mark_postings(&index, &info, &mut postings, scratch, *bits)?;
                    }
                }
                Terms::Prefix(field, prefix) => {
                    let index = reader.inverted_index(*field)?;
                    let mut stream = index.terms().range().ge(prefix.as_bytes()).into_stream()?;
                    while stream.advance() {
                        if !stream.key().starts_with(prefix.as_bytes()) {
                            break;
                        }
                        if stream.key() != prefix.as_bytes() {
                            mark_postings(&index, stream.value(), &mut postings, scratch, *bits)?;
                        }
                    }
                }
                Terms::FirstLetter(field, automaton, typo) => {
                    let expansion = (*field, 'f', typo);
                    mark_expansion(
                        reader,
                        expansion,
                        &**automaton,
                        &mut postings,
                        scratch,
                        *bits,
                    )?;
                }
                Terms::Levenshtein(field, automaton, typo) => {
                    let expansion = (*field, 'w', typo);
                    mark_expansion(
                        reader,
                        expansion,
                        &**automaton,
                        &mut postings,
                        scratch,
                        *bits,
                    )?;
                }
            }
        }
        let mut listed = Listed {
            docs: Vec::with_capacity(scratch.touched_count + 1),
            scores: Vec::with_capacity(scratch.touched_count),
        };
        let mut cursors = vec![0usize; self.clauses.len()];
        scratch.drain(|doc, bits| {
            let mut score = self.constants[bits as usize];
            let mut rest = bits & self.in_order;
            while rest != 0 {
                let index = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                match &self.clauses[index] {
                    ClauseWeight::Constant(constant) => score += constant,
                    ClauseWeight::Bm25 { .. } => {
                        let list = &scored_lists[index];
                        let cursor = &mut cursors[index];
                        while list[*cursor].0 < doc {
                            *cursor += 1;
                        }
                        score += list[*cursor].1;
                    }
                }
            }
            listed.docs.push(doc);
            listed.scores.push(score);
        });
        Ok(listed)
    }
}

/// The terms of recent typo expansions, by segment, field and automaton
/// (first-letter 'f' or whole-word 'w', and the word it was built for):
/// walking a term dictionary with a Levenshtein automaton was the largest
/// part of a word's query, and segments never change (an entry of a
/// segment merged away is never asked for again, and goes when the map is
/// cleared).
type Expansions = HashMap<(SegmentId, Field, char, TypoWord), Arc<[TermInfo]>>;

/// How many expansions are kept (each a few dozen terms' places); when
/// full, all are dropped.
const EXPANSIONS_KEPT_MAX: usize = 4_096;

static EXPANSIONS_KEPT: LazyLock<Mutex<Expansions>> = LazyLock::new(Mutex::default);

/// Marks the documents of every term of `field` that `automaton` accepts
/// in this segment but its own word, the terms taken from the kept
/// expansions when known.
fn mark_expansion<A>(
    reader: &SegmentReader,
    (field, kind, typo): (Field, char, &TypoWord),
    automaton: &A,
    postings: &mut Option<BlockSegmentPostings>,
    scratch: &mut Scratch,
    bits: u8,
) -> tantivy::Result<()>
where
    A: Automaton,
    A::State: Clone,
{
    let index = reader.inverted_index(field)?;
    let kept_key = (reader.segment_id(), field, kind, typo.clone());
    let kept = EXPANSIONS_KEPT
        .lock()
        .ok()
        .and_then(|kept| kept.get(&kept_key).cloned());
    let infos = match kept {
        Some(infos) => infos,
        None => {
            let mut stream = index.terms().search(automaton).into_stream()?;
            let mut infos = Vec::new();
            while stream.advance() {
                if stream.key() != typo.word.as_bytes() {
                    infos.push(stream.value().clone());
                }
            }
            let infos: Arc<[TermInfo]> = infos.into();
            if let Ok(mut kept) = EXPANSIONS_KEPT.lock() {
                if kept.len() >= EXPANSIONS_KEPT_MAX {
                    kept.clear();
                }
                kept.insert(kept_key, infos.clone());
            }
            infos
        }
    };
    for info in infos.iter() {
        mark_postings(&index, info, postings, scratch, bits)?;
    }
    Ok(())
}

fn mark_postings(
    index: &InvertedIndexReader,
    info: &tantivy::postings::TermInfo,
    postings: &mut Option<BlockSegmentPostings>,
    scratch: &mut Scratch,
    bits: u8,
) -> tantivy::Result<()> {
    let postings = match postings {
        Some(postings) => {
            index.reset_block_postings_from_terminfo(info, postings)?;
            postings
        }
        None => postings
            .insert(index.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?),
    };
    if let Some(allowed) = scratch.few_allowed(info.doc_freq) {
        // Skip to each allowed document (through the skip list, decoding
        // one block per step) rather than decode every block.
        for &wanted in &allowed {
            let at = postings.seek(wanted);
            let doc = postings.doc(at);
            if doc == TERMINATED {
                break;
            }
            if doc == wanted {
                scratch.mark(doc, bits);
            }
        }
        scratch.return_allowed(allowed);
        return Ok(());
    }
    loop {
        let docs = postings.docs();
        if docs.is_empty() {
            break;
        }
        for &doc in docs {
            scratch.mark(doc, bits);
        }
        postings.advance();
    }
    Ok(())
}

fn for_each_doc(
    reader: &SegmentReader,
    term: &Term,
    mut each: impl FnMut(DocId),
) -> tantivy::Result<()> {
    let index = reader.inverted_index(term.field())?;
    if let Some(mut postings) = index.read_block_postings(term, IndexRecordOption::Basic)? {
        loop {
            let docs = postings.docs();
            if docs.is_empty() {
                break;
            }
            docs.iter().for_each(|&doc| each(doc));
            postings.advance();
        }
    }
    Ok(())
}

/// Documents in order with their scores; `docs` ends with `TERMINATED`.
pub(crate) struct ListScorer {
    docs: Vec<DocId>,
    scores: Vec<Score>,
    cursor: usize,
}

impl ListScorer {
    fn new(listed: Listed, boost: Score) -> ListScorer {
        let Listed {
            mut docs,
            mut scores,
        } = listed;
        if boost != 1.0 {
            for score in &mut scores {
                *score *= boost;
            }
        }
        docs.push(TERMINATED);
        ListScorer {
            docs,
            scores,
            cursor: 0,
        }
    }
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
