//! The contract's Search section over HTTP: the answer's shape, every bad
//! parameter, hostile text, freshness, completions, and `/readyz` waiting
//! for the index.

use std::path::Path;
use std::time::{Duration, Instant};

use mercato_index::{INDEX_DIRECTORY_NAME, Indexer, SearchIndex};
use serde_json::{Value, json};

use crate::support::{Answer, TestServer, assert_problem, server};

/// A server whose search index is open and followed by an indexer.
fn searchable(dir: &Path) -> (TestServer, Indexer) {
    let server = server(dir);
    server.state.require_search();
    let index = SearchIndex::open(dir.join(INDEX_DIRECTORY_NAME), &server.state.engine).unwrap();
    let indexer = index.start_indexer().unwrap();
    assert!(server.state.attach_search(index).is_ok());
    (server, indexer)
}

async fn create(server: &TestServer, product: Value, on_hand: u64) {
    let id = product["id"].as_u64().unwrap();
    let created = server
        .admin("POST", "/api/v1/products", Some(product))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let stock = server
        .admin(
            "PUT",
            &format!("/api/v1/inventory/{id}"),
            Some(json!({"on_hand": on_hand})),
        )
        .await;
    assert_eq!(stock.status, 200, "{}", stock.text);
}

async fn catalog(server: &TestServer) {
    for (id, name, description, category, brand, price, on_hand) in [
        (
            1,
            "Wireless Headphones",
            "Over-ear.",
            "audio",
            "Sonic",
            "99.00",
            5,
        ),
        (
            2,
            "Headphone Stand",
            "Aluminium.",
            "accessories",
            "Deskware",
            "25.00",
            0,
        ),
        (
            3,
            "Bluetooth Speaker",
            "Pairs with headphones.",
            "audio",
            "Sonic",
            "49.50",
            3,
        ),
        (
            4,
            "Mechanical Keyboard",
            "Tactile.",
            "computers",
            "Clicky",
            "120.00",
            9,
        ),
    ] {
        create(
            server,
            json!({"id": id, "name": name, "category": category, "brand": brand,
                   "price": price, "description": description, "sku": format!("SKU-{id}")}),
            on_hand,
        )
        .await;
    }
}

/// Polls `uri` until `check` holds, for up to 5 seconds.
async fn until(server: &TestServer, uri: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = server.call("GET", uri, None, None).await;
        assert_eq!(answer.status, 200, "{uri}: {}", answer.text);
        if check(&answer.body) {
            return answer.body;
        }
        assert!(
            Instant::now() < deadline,
            "{uri} never matched: {}",
            answer.text
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn hit_ids(body: &Value) -> Vec<u64> {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["id"].as_u64().unwrap())
        .collect()
}

/// Percent-encodes every byte but ASCII letters and digits.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_answers_hits_total_facets_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (server, indexer) = searchable(dir.path());
    catalog(&server).await;

    let body = until(&server, "/api/v1/search?q=headphones", |body| {
        body["total"] == 3
    })
    .await;
    assert_eq!(hit_ids(&body), [1, 2, 3]);
    let hit = &body["hits"][0];
    let product = server.call("GET", "/api/v1/products/1", None, None).await;
    let mut without_score = hit.clone();
    without_score.as_object_mut().unwrap().remove("score");
    assert_eq!(
        without_score, product.body,
        "a hit is the product plus its score"
    );
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    assert!(body["took_ms"].is_u64());
    assert_eq!(
        body["facets"]["category"],
        json!([{"value": "audio", "count": 2}, {"value": "accessories", "count": 1}])
    );
    assert_eq!(
        body["facets"]["brand"],
        json!([{"value": "Sonic", "count": 2}, {"value": "Deskware", "count": 1}])
    );

    // Typos, filters, sorts and paging.
    let body = until(&server, "/api/v1/search?q=keybaord", |b| b["total"] == 1).await;
    assert_eq!(hit_ids(&body), [4]);
    let body = until(
        &server,
        "/api/v1/search?category=audio&brand=Sonic&min_price=49.50&max_price=99&in_stock=true&sort=price_desc",
        |b| b["total"] == 2,
    )
    .await;
    assert_eq!(hit_ids(&body), [1, 3]);
    let body = until(
        &server,
        "/api/v1/search?q=&sort=price_asc&limit=2&offset=1",
        |b| b["total"] == 4,
    )
    .await;
    assert_eq!(hit_ids(&body), [3, 1]);
    let body = until(&server, "/api/v1/search?in_stock=true&limit=1000", |b| {
        b["total"] == 3
    })
    .await;
    assert_eq!(hit_ids(&body), [1, 3, 4]);
    let body = until(&server, "/api/v1/search?offset=10000", |b| b["total"] == 4).await;
    assert_eq!(body["hits"], json!([]));
    let body = until(&server, "/api/v1/search?sort=newest&limit=0", |b| {
        b["total"] == 4
    })
    .await;
    assert_eq!(body["hits"], json!([]));
    assert_eq!(body["facets"]["category"].as_array().unwrap().len(), 3);

    // Fresh: archived, renamed, sold out.
    let archived = server.admin("DELETE", "/api/v1/products/2", None).await;
    assert_eq!(archived.status, 204);
    until(&server, "/api/v1/search?q=stand", |b| b["total"] == 0).await;
    let renamed = server
        .admin(
            "PATCH",
            "/api/v1/products/3",
            Some(json!({"name": "Pocket Radio"})),
        )
        .await;
    assert_eq!(renamed.status, 200);
    until(&server, "/api/v1/search?q=radio", |b| hit_ids(b) == [3]).await;
    let sold = server
        .admin("PUT", "/api/v1/inventory/1", Some(json!({"on_hand": 0})))
        .await;
    assert_eq!(sold.status, 200);
    until(&server, "/api/v1/search?q=wireless&in_stock=true", |b| {
        b["total"] == 0
    })
    .await;

    let metrics = server.call("GET", "/metrics", None, None).await;
    assert!(
        metrics.text.contains("route=\"/api/v1/search\""),
        "search requests are counted by route"
    );
    indexer.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_problems_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (server, indexer) = searchable(dir.path());
    for (query, field) in [
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=1.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=10001", "offset"),
        ("offset=99999999999999999999999", "offset"),
        ("min_price=cheap", "min_price"),
        ("max_price=1e3", "max_price"),
        ("max_price=NaN", "max_price"),
        ("max_price=.5", "max_price"),
        ("max_price=5.", "max_price"),
        ("max_price=+5", "max_price"),
        ("max_price=999999999999999999999999999999999", "max_price"),
        ("min_price=-5", "min_price"),
        ("min_price=1.999", "min_price"),
        ("min_price=1,50", "min_price"),
        ("sort=cheapest", "sort"),
        ("sort=PRICE_ASC", "sort"),
        ("in_stock=maybe", "in_stock"),
    ] {
        let answer = server
            .call("GET", &format!("/api/v1/search?{query}"), None, None)
            .await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], field, "{query}: {}", answer.text);
    }
    let unknown = server
        .call("GET", "/api/v1/search?colour=red", None, None)
        .await;
    assert_problem(&unknown, 400, "invalid_request");
    for query in ["limit=-1", "limit=x"] {
        let answer = server
            .call(
                "GET",
                &format!("/api/v1/search/suggest?q=a&{query}"),
                None,
                None,
            )
            .await;
        assert_problem(&answer, 400, "invalid_request");
        assert_eq!(answer.body["field"], "limit");
    }
    // Large limits are clamped, not refused, up to the largest the
    // document allows (u64::MAX); past it, the number is refused.
    let clamped = server
        .call(
            "GET",
            "/api/v1/search?limit=18446744073709551615",
            None,
            None,
        )
        .await;
    assert_eq!(clamped.status, 200, "{}", clamped.text);
    let answer = server
        .call(
            "GET",
            "/api/v1/search?limit=99999999999999999999999",
            None,
            None,
        )
        .await;
    assert_problem(&answer, 400, "invalid_request");
    assert_eq!(answer.body["field"], "limit");
    indexer.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_query_text_is_answered_without_a_server_error() {
    let dir = tempfile::tempdir().unwrap();
    let (server, indexer) = searchable(dir.path());
    catalog(&server).await;
    // Over the 1 KiB the index reads, within the 8 KiB request target the
    // server takes (a longer one is 414 uri_too_long, before any handler).
    let long = "headphones ".repeat(200);
    let mut texts: Vec<String> = [
        "\"headphones\"",
        "\"unbalanced",
        "name:headphones",
        "(((",
        ")))",
        "headphones AND OR NOT",
        "-sonic +audio",
        "*",
        "?",
        "h~2",
        "[1 TO 5]",
        "\\",
        "🙂🙂",
        "سماعات",
        "\u{202e}sonic",
        "\u{0}\u{1}\u{1b}[31m",
        "\r\n\t",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
    ]
    .iter()
    .map(|text| text.to_string())
    .collect();
    texts.push(long.clone());
    texts.push("x".repeat(2_000));
    for text in &texts {
        for route in ["/api/v1/search", "/api/v1/search/suggest"] {
            let answer = server
                .call("GET", &format!("{route}?q={}", encode(text)), None, None)
                .await;
            assert_eq!(answer.status, 200, "{route} {text:?}: {}", answer.text);
        }
    }
    let too_long = server
        .call(
            "GET",
            &format!("/api/v1/search?q={}", "x".repeat(10_240)),
            None,
            None,
        )
        .await;
    assert_problem(&too_long, 414, "uri_too_long");
    // Undecoded escapes and bytes that are no UTF-8.
    for raw in ["%", "%zz", "%FF%FE", "a%00b", "%C3%28", "q=a&q=b"] {
        let answer: Answer = server
            .call("GET", &format!("/api/v1/search?q={raw}"), None, None)
            .await;
        assert!(
            answer.status == 200 || answer.status == 400,
            "{raw}: {} {}",
            answer.status,
            answer.text
        );
    }
    until(
        &server,
        &format!("/api/v1/search?q={}", encode(&long)),
        |body| hit_ids(body).first() == Some(&1),
    )
    .await;
    indexer.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_complete_the_last_word() {
    let dir = tempfile::tempdir().unwrap();
    let (server, indexer) = searchable(dir.path());
    catalog(&server).await;
    let body = until(&server, "/api/v1/search/suggest?q=headp", |body| {
        body["items"].as_array().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        body["items"],
        json!([
            {"text": "Wireless Headphones", "kind": "product", "product_id": 1},
            {"text": "Headphone Stand", "kind": "product", "product_id": 2},
        ])
    );
    let body = until(&server, "/api/v1/search/suggest?q=so", |body| {
        !body["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(body["items"][0], json!({"text": "Sonic", "kind": "brand"}));
    let body = until(&server, "/api/v1/search/suggest?q=e&limit=1", |_| true).await;
    assert!(body["items"].as_array().unwrap().len() <= 1);
    let body = until(&server, "/api/v1/search/suggest?q=e&limit=100000", |_| true).await;
    assert!(body["items"].as_array().unwrap().len() <= 20);
    let body = until(&server, "/api/v1/search/suggest", |_| true).await;
    assert_eq!(body, json!({"items": []}));
    indexer.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_search_index_to_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    assert_eq!(
        server.call("GET", "/readyz", None, None).await.status,
        200,
        "a router that needs no index is ready without one"
    );
    let unavailable = server.call("GET", "/api/v1/search?q=a", None, None).await;
    assert_problem(&unavailable, 503, "search_unavailable");
    assert!(unavailable.headers.contains_key("retry-after"));

    server.state.require_search();
    let readyz = server.call("GET", "/readyz", None, None).await;
    assert_problem(&readyz, 503, "search_unavailable");

    // The index opens at the log's head, the store moves on, then the
    // index is attached: ready only once it has caught up.
    let index =
        SearchIndex::open(dir.path().join(INDEX_DIRECTORY_NAME), &server.state.engine).unwrap();
    catalog(&server).await;
    assert!(server.state.attach_search(index.clone()).is_ok());
    assert!(
        server.state.attach_search(index.clone()).is_err(),
        "one index"
    );
    let readyz = server.call("GET", "/readyz", None, None).await;
    assert_problem(&readyz, 503, "search_unavailable");
    let stale = server
        .call("GET", "/api/v1/search?q=keyboard", None, None)
        .await;
    assert_eq!(
        (stale.status.as_u16(), &stale.body["total"]),
        (200, &json!(0))
    );

    let indexer = index.start_indexer().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.call("GET", "/readyz", None, None).await.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fresh = server
        .call("GET", "/api/v1/search?q=keyboard", None, None)
        .await;
    assert_eq!(hit_ids(&fresh.body), [4], "caught up when ready");
    indexer.stop().unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_the_search_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let document = server.call("GET", "/api/v1/openapi.json", None, None).await;
    let openapi = &document.body;
    for path in ["/api/v1/search", "/api/v1/search/suggest"] {
        let operation = &openapi["paths"][path]["get"];
        assert!(operation.is_object(), "{path} is not documented");
        assert!(operation.get("security").is_none(), "{path} is public");
        assert!(operation["responses"]["400"].is_object());
    }
    let parameters: Vec<&str> = openapi["paths"]["/api/v1/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        [
            "q",
            "category",
            "brand",
            "min_price",
            "max_price",
            "in_stock",
            "sort",
            "limit",
            "offset"
        ]
    );
    assert!(openapi["components"]["schemas"]["SearchBody"].is_object());
}

/// `mercato serve --no-search`: ready without an index, the search routes
/// refuse with a problem that says why, and no index directory is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_search_is_ready_and_says_so() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::binary::start(
        data.path(),
        &["--no-search"],
        &[],
        Some(crate::binary::TOKEN),
    );
    let client = reqwest::Client::new();
    crate::binary::wait_ready(&server, &client).await;
    for path in ["/api/v1/search?q=lamp", "/api/v1/search/suggest?q=la"] {
        let answer = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 503, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "search_unavailable", "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("--no-search"),
            "{body}"
        );
    }
    // The catalog and stock are served as ever.
    let products =
        crate::binary::get_json(&client, format!("{}/api/v1/products", server.base)).await;
    assert!(
        !products["items"].as_array().unwrap().is_empty(),
        "{products}"
    );
    let output = crate::binary::output_with(&server, "search: off").await;
    assert!(output.contains("search: off (--no-search)"), "{output}");
    assert!(!data.path().join(INDEX_DIRECTORY_NAME).exists());
}
