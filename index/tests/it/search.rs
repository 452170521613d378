//! Ranking, typos, prefixes, filters, facets, sorting, paging and hostile
//! text over the fixed catalog.

use mercato_engine::Decimal;
use mercato_index::{
    FacetCount, SEARCH_LIMIT_MAX, SEARCH_OFFSET_MAX, SearchIndex, SearchRequest, Sort,
    SuggestRequest, SuggestionKind,
};

use crate::support::{CATALOG, Store, find, ids};

fn catalog() -> (Store, SearchIndex) {
    let store = Store::new();
    store.load(CATALOG);
    let index = store.open_index();
    assert_eq!(index.document_count(), CATALOG.len() as u64);
    (store, index)
}

fn price(text: &str) -> Option<Decimal> {
    Some(text.parse().unwrap())
}

#[test]
fn a_name_match_ranks_above_a_description_match_and_exact_above_stem() {
    let (_store, index) = catalog();
    // 1 has the word as typed in its name, 2 its stem, 3 only its description.
    assert_eq!(find(&index, "headphones"), [1, 2, 3]);
    assert_eq!(
        find(&index, "Headphones "),
        [1, 2, 3],
        "case and trailing space"
    );
    // Brand and category are searched too.
    assert_eq!(find(&index, "sonic"), [1, 3]);
    assert_eq!(find(&index, "clothing"), [8, 9]);
    // Every word must match.
    assert_eq!(find(&index, "wireless headphones"), [1]);
    assert_eq!(find(&index, "sonic speaker"), [3]);
}

#[test]
fn an_exact_match_ranks_above_a_typo_match() {
    let (_store, index) = catalog();
    assert_eq!(find(&index, "shirt "), [8, 9], "skirt is one typo away");
    assert_eq!(find(&index, "skirt "), [9, 8]);
}

#[test]
fn typos_are_tolerated_by_word_length() {
    let (_store, index) = catalog();
    // One typo from five letters.
    assert_eq!(find(&index, "headphnes").first(), Some(&1));
    assert_eq!(
        find(&index, "keybaord "),
        [11],
        "a transposition is one typo"
    );
    assert_eq!(find(&index, "speakr "), [3]);
    // Not two below nine letters.
    assert!(find(&index, "keybrd ").is_empty());
    // Two from nine letters.
    assert_eq!(find(&index, "mecanicla "), [11]);
    // A typo on the first letter counts as two: only from nine letters,
    // and then with no other typo.
    assert!(find(&index, "jeyboard ").is_empty());
    assert_eq!(find(&index, "nechanical "), [11]);
    assert!(find(&index, "nechanicl ").is_empty());
}

#[test]
fn near_misses_do_not_match() {
    let (_store, index) = catalog();
    // No typo in words of up to four letters.
    assert_eq!(find(&index, "mat "), [5]);
    assert_eq!(find(&index, "cat "), [4]);
    assert!(find(&index, "bat ").is_empty());
    // None on numbers or SKUs.
    assert_eq!(find(&index, "1080 "), [6]);
    assert_eq!(find(&index, "1090 "), [7]);
    assert!(find(&index, "1070 ").is_empty());
    assert_eq!(find(&index, "GPU-1080"), [6]);
    assert_eq!(find(&index, "gpu-1080 "), [6], "a SKU in any case");
    assert!(find(&index, "GPU-1090 ").is_empty());
    assert!(find(&index, "GPU-1081 ").is_empty());
}

#[test]
fn the_last_word_matches_as_a_prefix() {
    let (_store, index) = catalog();
    assert_eq!(find(&index, "headp"), [1, 2]);
    assert_eq!(find(&index, "wireless head"), [1]);
    assert_eq!(find(&index, "mech"), [11]);
    // Not once the word is finished.
    assert!(find(&index, "headp ").is_empty());
    // Exact words rank above completions.
    assert_eq!(find(&index, "desk").first(), Some(&12));
}

#[test]
fn case_and_accents_fold() {
    let (_store, index) = catalog();
    assert_eq!(find(&index, "creme brulee"), [10]);
    assert_eq!(find(&index, "CRÈME"), [10]);
    assert_eq!(find(&index, "brûlée torch"), [10]);
}

#[test]
fn stems_match_across_forms() {
    let (_store, index) = catalog();
    assert_eq!(find(&index, "speakers "), [3]);
    assert_eq!(find(&index, "caramelise "), [10]);
}

#[test]
fn when_no_product_has_every_word_any_word_will_do() {
    let (_store, index) = catalog();
    let results = index
        .search(&SearchRequest::new("wireless keyboard "))
        .unwrap();
    assert_eq!(results.total, 2);
    let mut found = ids(&results);
    found.sort();
    assert_eq!(found, [1, 11]);
}

#[test]
fn filters_combine_and_facets_count_every_match() {
    let (_store, index) = catalog();
    let all = index.search(&SearchRequest::default()).unwrap();
    assert_eq!(all.total, CATALOG.len() as u64);
    assert_eq!(
        ids(&all),
        (1..=12).collect::<Vec<_>>(),
        "browsing lists by id"
    );
    assert_eq!(
        all.facets.category[0],
        FacetCount {
            value: "computers".into(),
            count: 3
        }
    );
    let categories: u64 = all.facets.category.iter().map(|facet| facet.count).sum();
    assert_eq!(
        categories, 11,
        "the product with no category is not counted"
    );
    assert_eq!(
        all.facets
            .brand
            .iter()
            .find(|f| f.value == "Deskware")
            .unwrap()
            .count,
        2
    );

    let mut request = SearchRequest {
        limit: 1,
        category: Some("computers".into()),
        ..SearchRequest::default()
    };
    let computers = index.search(&request).unwrap();
    assert_eq!((computers.total, computers.hits.len()), (3, 1));
    assert_eq!(
        computers.facets.brand.len(),
        3,
        "facets count every match, not the page"
    );
    request.brand = Some("Clicky".into());
    assert_eq!(ids(&index.search(&request).unwrap()), [11]);
    request.brand = Some("clicky".into());
    assert_eq!(index.search(&request).unwrap().total, 0, "exact values");

    let priced = SearchRequest {
        min_price: price("30"),
        max_price: price("99.00"),
        ..SearchRequest::default()
    };
    let results = index.search(&priced).unwrap();
    assert_eq!(ids(&results), [1, 3, 4, 5, 8, 9], "inclusive bounds");
    let narrow = SearchRequest {
        min_price: price("30.001"),
        max_price: price("98.999"),
        ..SearchRequest::default()
    };
    assert_eq!(ids(&index.search(&narrow).unwrap()), [3, 4, 8, 9]);

    let in_stock = SearchRequest {
        query: "linen".into(),
        in_stock: true,
        ..SearchRequest::default()
    };
    let results = index.search(&in_stock).unwrap();
    assert_eq!(ids(&results), [8]);
    assert_eq!(results.facets.brand[0].count, 1);

    let everything = SearchRequest {
        query: "headphones".into(),
        category: Some("audio".into()),
        brand: Some("Sonic".into()),
        min_price: price("50"),
        in_stock: true,
        ..SearchRequest::default()
    };
    assert_eq!(ids(&index.search(&everything).unwrap()), [1]);
    let inverted = SearchRequest {
        min_price: price("50"),
        max_price: price("10"),
        ..SearchRequest::default()
    };
    let results = index.search(&inverted).unwrap();
    assert_eq!((results.total, results.facets.category.len()), (0, 0));
}

#[test]
fn every_sort_orders_the_hits() {
    let (_store, index) = catalog();
    let sorted = |sort| {
        ids(&index
            .search(&SearchRequest {
                sort,
                ..SearchRequest::default()
            })
            .unwrap())
    };
    assert_eq!(
        sorted(Sort::PriceAscending),
        [12, 10, 2, 5, 9, 8, 3, 4, 1, 11, 7, 6]
    );
    assert_eq!(
        sorted(Sort::PriceDescending),
        [6, 7, 11, 1, 4, 3, 8, 9, 5, 2, 10, 12]
    );
    assert_eq!(sorted(Sort::Newest), (1..=12).rev().collect::<Vec<_>>());
    assert_eq!(sorted(Sort::Relevance), (1..=12).collect::<Vec<_>>());
    let sorted_query = ids(&index
        .search(&SearchRequest {
            query: "sonic".into(),
            sort: Sort::PriceAscending,
            ..SearchRequest::default()
        })
        .unwrap());
    assert_eq!(sorted_query, [3, 1]);
    for sort in [
        Sort::Relevance,
        Sort::PriceAscending,
        Sort::PriceDescending,
        Sort::Newest,
    ] {
        assert_eq!(Sort::from_name(sort.as_str()), Some(sort));
    }
    assert_eq!(Sort::from_name("cheapest"), None);
}

#[test]
fn paging_covers_the_results_once_and_keeps_the_total() {
    let (_store, index) = catalog();
    let mut seen = Vec::new();
    for offset in (0..12).step_by(5) {
        let page = index
            .search(&SearchRequest {
                sort: Sort::PriceAscending,
                limit: 5,
                offset,
                ..SearchRequest::default()
            })
            .unwrap();
        assert_eq!(page.total, 12);
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len(), 12);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "no product twice");

    let past_the_end = index
        .search(&SearchRequest {
            offset: 50,
            ..SearchRequest::default()
        })
        .unwrap();
    assert!(past_the_end.hits.is_empty());
    assert_eq!(past_the_end.total, 12);
    assert_eq!(past_the_end.facets.category.len(), 7);

    let facets_only = index
        .search(&SearchRequest {
            limit: 0,
            ..SearchRequest::default()
        })
        .unwrap();
    assert!(facets_only.hits.is_empty());
    assert_eq!(facets_only.total, 12);

    let clamped = SearchRequest {
        limit: 1_000_000,
        ..SearchRequest::default()
    };
    assert_eq!(clamped.effective_limit(), SEARCH_LIMIT_MAX);
    assert_eq!(index.search(&clamped).unwrap().hits.len(), 12);

    let at_most = SearchRequest {
        offset: SEARCH_OFFSET_MAX,
        ..SearchRequest::default()
    };
    assert!(index.search(&at_most).unwrap().hits.is_empty());
    let too_far = SearchRequest {
        offset: SEARCH_OFFSET_MAX + 1,
        ..SearchRequest::default()
    };
    let error = index.search(&too_far).unwrap_err();
    assert_eq!(error.code(), "invalid_request");
    assert!(error.to_string().starts_with("offset"), "{error}");
    let negative = SearchRequest {
        min_price: price("-1"),
        ..SearchRequest::default()
    };
    assert!(
        index
            .search(&negative)
            .unwrap_err()
            .to_string()
            .starts_with("min_price")
    );
}

#[test]
fn hostile_text_is_only_text() {
    let (_store, index) = catalog();
    let long = "headphones ".repeat(1_000);
    let long_word = "x".repeat(10_000);
    let hostile = [
        "\"headphones\"",
        "\"unbalanced",
        "name:headphones",
        "description:*",
        "(((",
        ")))",
        "[1 TO 2]",
        "{a TO b}",
        "headphones AND OR NOT",
        "AND",
        "-headphones +sonic",
        "h~2",
        "head*",
        "a\\b",
        "^2",
        "🙂🙂🙂",
        "سماعات",
        "\u{202e}sonic",
        "\u{0}\u{1}\u{7f}",
        "\t\n\r",
        "ＳＯＮＩＣ",
        &long,
        &long_word,
        "'; DROP TABLE products; --",
        "%00%ff",
    ];
    for query in hostile {
        let results = index.search(&SearchRequest::new(query));
        assert!(results.is_ok(), "{query:?}: {results:?}");
        let suggestions = index.suggest(&SuggestRequest::new(query));
        assert!(suggestions.is_ok(), "{query:?}: {suggestions:?}");
    }
    assert_eq!(find(&index, "\"headphones\""), [1, 2, 3]);
    assert_eq!(
        find(&index, "sonic:headphones "),
        [1, 3],
        "a colon separates words"
    );
    assert!(
        find(&index, "name:headphones ").is_empty(),
        "`name` is a word here"
    );
    assert_eq!(find(&index, "\u{202e}sonic"), [1, 3]);
    assert_eq!(find(&index, &long).first(), Some(&1));
    assert!(
        find(&index, &long_word).is_empty(),
        "no word that long exists"
    );
    assert_eq!(
        find(&index, "🙂🙂🙂").len(),
        12,
        "no words at all: browsing"
    );
}

#[test]
fn suggestions_complete_the_last_word() {
    let (_store, index) = catalog();
    let suggest = |query: &str, limit: usize| {
        index
            .suggest(&SuggestRequest {
                query: query.into(),
                limit,
            })
            .unwrap()
    };
    let items = suggest("headp", 8);
    let texts: Vec<&str> = items.iter().map(|item| item.text.as_str()).collect();
    assert_eq!(texts, ["Wireless Headphones", "Headphone Stand"]);
    assert_eq!(items[0].kind, SuggestionKind::Product);
    assert_eq!(items[0].product_id.map(|id| id.0), Some(1));

    let items = suggest("comp", 8);
    assert_eq!(items[0].text, "computers");
    assert_eq!(items[0].kind, SuggestionKind::Category);
    assert_eq!(items.len(), 1, "no name has a word starting with comp");

    let items = suggest("desk", 8);
    assert_eq!(items[0].kind, SuggestionKind::Brand);
    assert_eq!(items[0].text, "Deskware");
    let products: Vec<u64> = items
        .iter()
        .filter_map(|item| item.product_id.map(|id| id.0))
        .collect();
    assert_eq!(products, [12]);

    // The earlier words narrow the products.
    let items = suggest("linen sk", 8);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].text, "Linen Skirt");
    assert!(suggest("sonic sk", 8).is_empty());

    // Limits.
    assert_eq!(suggest("s", 3).len(), 3);
    assert!(suggest("s", 0).is_empty());
    assert!(suggest("", 8).is_empty());
    assert!(suggest("   ", 8).is_empty());
}
