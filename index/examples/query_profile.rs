//! Runs a query set (benches/search/generate_queries.py) against the index
//! of a store in process, with no HTTP in the way, and prints the mean time
//! per query by type: the harness for profiling the search path itself
//! (`valgrind --tool=callgrind` or `perf record` around it).
//!
//! ```sh
//! mercato import --data-dir /tmp/store /tmp/catalog-100k.jsonl
//! cargo run --release -p mercato-index --example query_profile -- /tmp/store queries.jsonl [ROUNDS] [TYPE]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use mercato_engine::{Engine, EngineConfig};
use mercato_index::{INDEX_DIRECTORY_NAME, SearchIndex, SearchRequest, Sort, SuggestRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: query_profile DATA_DIR QUERIES.jsonl [ROUNDS] [TYPE]";
    let data_dir = PathBuf::from(args.next().ok_or(usage)?);
    let queries = std::fs::read_to_string(args.next().ok_or(usage)?)?;
    let rounds: usize = args.next().map_or(Ok(3), |rounds| rounds.parse())?;
    let only = args.next();

    let engine = Engine::open(EngineConfig::new(&data_dir))?;
    let opened = Instant::now();
    let index = SearchIndex::open(data_dir.join(INDEX_DIRECTORY_NAME), &engine)?;
    eprintln!(
        "opened the index ({} documents) in {:.2} s",
        index.document_count(),
        opened.elapsed().as_secs_f64()
    );

    let mut by_type: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for line in queries.lines().filter(|line| !line.trim().is_empty()) {
        let query: serde_json::Value = serde_json::from_str(line)?;
        let kind = query["type"].as_str().unwrap_or("?").to_owned();
        if only.as_deref().is_some_and(|only| only != kind) {
            continue;
        }
        match by_type.iter_mut().find(|(name, _)| *name == kind) {
            Some((_, list)) => list.push(query),
            None => by_type.push((kind, vec![query])),
        }
    }
    // QUERY_PROFILE_DUMP=1: print every answer (to compare two builds).
    let dump = std::env::var_os("QUERY_PROFILE_DUMP").is_some();
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    for (kind, list) in &by_type {
        let started = Instant::now();
        let mut answers = 0usize;
        for _ in 0..rounds {
            for query in list {
                let q = text(&query["q"]).unwrap_or_default();
                let limit = query["limit"].as_u64().unwrap_or(20) as usize;
                if kind == "suggest" {
                    let mut request = SuggestRequest::new(q);
                    request.limit = limit;
                    let suggestions = index.suggest(&request)?;
                    if dump {
                        let items: Vec<String> = suggestions
                            .iter()
                            .map(|s| format!("{}:{}:{:?}", s.kind.as_str(), s.text, s.product_id))
                            .collect();
                        println!("{} {}", query["id"], items.join(" | "));
                    }
                    answers += suggestions.len();
                } else {
                    let request = SearchRequest {
                        query: q,
                        category: text(&query["category"]),
                        brand: text(&query["brand"]),
                        min_price: text(&query["min_price"]).map(|p| p.parse()).transpose()?,
                        max_price: text(&query["max_price"]).map(|p| p.parse()).transpose()?,
                        in_stock: query["in_stock"].as_bool().unwrap_or(false),
                        sort: query["sort"]
                            .as_str()
                            .and_then(Sort::from_name)
                            .unwrap_or_default(),
                        limit,
                        offset: 0,
                    };
                    let results = index.search(&request)?;
                    if dump {
                        let hits: Vec<String> = results
                            .hits
                            .iter()
                            .map(|hit| format!("{}@{}", hit.product.id.0, hit.score))
                            .collect();
                        let facets: Vec<String> = results
                            .facets
                            .category
                            .iter()
                            .chain(&results.facets.brand)
                            .map(|facet| format!("{}={}", facet.value, facet.count))
                            .collect();
                        println!(
                            "{} total={} hits={} facets={}",
                            query["id"],
                            results.total,
                            hits.join(","),
                            facets.join(",")
                        );
                    }
                    answers += results.total as usize;
                }
            }
        }
        let count = (rounds * list.len()).max(1);
        println!(
            "{kind:>10}: {:>8.1} us/query over {count} ({} answers per query)",
            started.elapsed().as_secs_f64() * 1e6 / count as f64,
            answers / count
        );
    }
    engine.shutdown();
    Ok(())
}
