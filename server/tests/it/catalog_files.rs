//! Catalog files: `import_catalog` and `export_catalog` through the public
//! API, then the `mercato import` and `mercato export` binary: formats, bad
//! rows under abort and skip, round trips, a locked data directory.

use std::path::Path;
use std::process::{Command, Output};

use mercato_engine::{Engine, EngineConfig, Error, NewProduct, OrderId, ProductId, Uuid};
use mercato_engine::{Product, ReservationLine, ReserveRequest};
use mercato_server::{
    CatalogFormat, CatalogSource, IMPORT_BAD_ROWS_LISTED_MAX, ImportError, ImportOptions,
    ImportReport, OnError, Progress, SAMPLE_CATALOG, export_catalog, import_catalog,
};

/// The CSV fixture: sample products plus commas, doubled quotes, a line
/// break inside a cell and empty optional cells.
const FIXTURE_CSV: &str = include_str!("../fixtures/catalog.csv");

fn open(dir: &Path) -> Engine {
    Engine::open(EngineConfig::new(dir)).unwrap()
}

fn options(format: CatalogFormat, on_error: OnError) -> ImportOptions {
    let mut options = ImportOptions::new(format);
    options.on_error = on_error;
    options
}

fn import(
    engine: &Engine,
    text: &str,
    format: CatalogFormat,
    on_error: OnError,
) -> Result<ImportReport, ImportError> {
    import_catalog(
        engine,
        CatalogSource::Bytes(text.as_bytes()),
        &options(format, on_error),
        &Progress::hidden(),
    )
}

fn export(engine: &Engine, format: CatalogFormat) -> String {
    let mut out = Vec::new();
    export_catalog(engine, &mut out, format, &Progress::hidden()).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every live product with its on_hand, timestamps aside.
fn contents(engine: &Engine) -> Vec<(Product, u64)> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = engine.list_products(None, after, 500).unwrap();
        for mut product in page.items {
            let on_hand = engine.stock(product.id).unwrap().unwrap().on_hand;
            product.created_at = mercato_engine::Timestamp(0);
            product.updated_at = mercato_engine::Timestamp(0);
            all.push((product, on_hand));
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// The first `count` lines of the shipped sample catalog.
fn sample_lines(count: usize) -> String {
    SAMPLE_CATALOG
        .lines()
        .take(count)
        .map(|line| format!("{line}\n"))
        .collect()
}

fn bad_lines(report: &ImportReport) -> Vec<u64> {
    report.bad_rows.iter().map(|bad| bad.line).collect()
}

fn rejected(result: Result<ImportReport, ImportError>) -> ImportReport {
    match result {
        Err(ImportError::Rejected { report, .. }) => *report,
        other => panic!("expected bad rows, got {other:?}"),
    }
}

#[test]
fn jsonl_and_csv_files_load_products_and_stock() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let report = import(
        &engine,
        &sample_lines(20),
        CatalogFormat::Jsonl,
        OnError::Abort,
    )
    .unwrap();
    assert_eq!(
        (report.rows, report.created, report.bad_row_count),
        (20, 20, 0)
    );
    let mat = engine.product(ProductId(1)).unwrap().unwrap();
    assert_eq!(mat.name, "Summitcraft Cushioned Non-Slip Yoga Mat, 6 mm");
    assert_eq!(mat.price.to_string(), "84.99");
    assert_eq!(mat.attributes["dimensions"], "72\" x 24\"");
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().on_hand, 16);
    engine.shutdown();

    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let report = import(&engine, FIXTURE_CSV, CatalogFormat::Csv, OnError::Abort).unwrap();
    assert_eq!((report.rows, report.created), (4, 4));
    let rope = engine.product(ProductId(2)).unwrap().unwrap();
    assert_eq!(rope.name, "Ironform Jump Rope, 2.5-24 kg");
    assert_eq!(rope.low_stock_threshold, 15);
    assert_eq!(rope.attributes["weight"], "2.5-24 kg");
    assert_eq!(engine.stock(ProductId(2)).unwrap().unwrap().on_hand, 68);
    let kettle = engine.product(ProductId(3)).unwrap().unwrap();
    assert_eq!(kettle.name, "Kettle \"Classic\", 1.7 l");
    assert_eq!(
        kettle.description,
        "Two lines:\nboils in 3 minutes, switches itself off."
    );
    assert!(kettle.attributes.is_empty());
    // Empty optional cells take the defaults of a new product.
    let mug = engine.product(ProductId(4)).unwrap().unwrap();
    assert_eq!(mug.sku, "P00000004");
    assert_eq!(mug.low_stock_threshold, 10);
    assert_eq!((mug.category.as_str(), mug.brand.as_str()), ("", ""));
    assert_eq!(engine.stock(ProductId(4)).unwrap().unwrap().on_hand, 7);
    engine.shutdown();
}

#[test]
fn bad_rows_under_abort_change_nothing_and_are_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    import(
        &engine,
        &sample_lines(3),
        CatalogFormat::Jsonl,
        OnError::Abort,
    )
    .unwrap();
    let before = contents(&engine);
    let head = engine.last_event_seq();

    let mut lines: Vec<String> = sample_lines(6).lines().map(str::to_owned).collect();
    // Line 2 updates product 2 (a good row), line 4 has a bad price, line
    // 5 a blank name, line 7 is not JSON, line 8 repeats the id of line 1.
    lines[1] = lines[1].replace("\"on_hand\":68", "\"on_hand\":1");
    lines[3] = lines[3].replace("\"price\":\"", "\"price\":\"0.001");
    lines[4] = lines[4].replacen("\"name\":\"", "\"name\":\"  \",\"x\":\"", 1);
    lines.push("{not json".to_owned());
    lines.push(lines[0].clone());
    let text = lines.join("\n");
    let report = rejected(import(&engine, &text, CatalogFormat::Jsonl, OnError::Abort));
    assert_eq!(report.rows, 8);
    assert_eq!(report.bad_row_count, 4);
    assert_eq!(bad_lines(&report), [4, 5, 7, 8]);
    assert_eq!(report.imported(), 0);
    let price = &report.bad_rows[0];
    assert_eq!(price.field.as_deref(), Some("price"));
    assert_eq!(
        price.to_string(),
        format!("line 4: field price: {}", price.message)
    );
    assert!(
        report.bad_rows[1].message.contains("x"),
        "{:?}",
        report.bad_rows[1]
    );
    assert_eq!(
        report.bad_rows[3].to_string(),
        "line 8: field id: product 1 is also on line 1, which counts"
    );

    // Nothing was written, not even the good update on line 2.
    assert_eq!(engine.last_event_seq(), head);
    assert_eq!(contents(&engine), before);
    engine.shutdown();
}

#[test]
fn bad_rows_under_skip_import_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let text = "id,name,price,on_hand,category\n\
                1,Tea,4.50,10,drinks\n\
                2,Coffee,abc,5,drinks\n\
                3,,1.00,5,drinks\n\
                4,Cocoa,3.00,2,drinks\n\
                1,Tea again,4.50,10,drinks\n\
                5,Juice,2.00,-3,drinks\n";
    let report = import(&engine, text, CatalogFormat::Csv, OnError::Skip).unwrap();
    assert_eq!(report.rows, 6);
    assert_eq!((report.created, report.bad_row_count), (2, 4));
    assert_eq!(bad_lines(&report), [3, 4, 6, 7]);
    assert_eq!(report.bad_rows[0].field.as_deref(), Some("price"));
    assert_eq!(report.bad_rows[1].field.as_deref(), Some("name"));
    assert_eq!(report.bad_rows[2].field.as_deref(), Some("id"));
    assert_eq!(report.bad_rows[3].field.as_deref(), Some("on_hand"));
    // The first row of a repeated id is the one that counts.
    assert_eq!(engine.product(ProductId(1)).unwrap().unwrap().name, "Tea");
    assert_eq!(engine.stock(ProductId(4)).unwrap().unwrap().on_hand, 2);
    assert_eq!(engine.product(ProductId(2)).unwrap(), None);
    assert_eq!(
        report.to_string(),
        "2 of 6 row(s) imported: 2 created, 0 updated, 0 unchanged; 4 bad row(s) skipped"
    );

    // Every row bad: nothing to import, and that is a failure even with skip.
    let report = rejected(import(
        &engine,
        "id,name,price,on_hand\n9,,1,1\n10,x,y,1\n",
        CatalogFormat::Csv,
        OnError::Skip,
    ));
    assert_eq!(bad_lines(&report), [2, 3]);
    assert_eq!(engine.product(ProductId(10)).unwrap(), None);
    engine.shutdown();
}

#[test]
fn a_bad_row_read_again_keeps_its_id_so_a_later_copy_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let text = "{\"id\":1,\"name\":\"Tea\",\"price\":\"not a number\",\"on_hand\":1}\n\
                {\"id\":1,\"name\":\"Tea\",\"price\":\"1.00\",\"on_hand\":1}\n\
                {\"id\":2,\"name\":\"Cup\",\"price\":\"1.00\",\"on_hand\":1}\n";
    let report = import(&engine, text, CatalogFormat::Jsonl, OnError::Skip).unwrap();
    assert_eq!(bad_lines(&report), [1, 2]);
    assert_eq!(report.bad_rows[1].field.as_deref(), Some("id"));
    assert_eq!(engine.product(ProductId(1)).unwrap(), None);
    assert!(engine.product(ProductId(2)).unwrap().is_some());
    engine.shutdown();
}

#[test]
fn more_bad_rows_than_listed_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let mut text = String::from("id,name,price,on_hand\n");
    for id in 1..=60 {
        text.push_str(&format!("{id},Item {id},-1,1\n"));
    }
    let report = rejected(import(&engine, &text, CatalogFormat::Csv, OnError::Abort));
    assert_eq!(report.bad_row_count, 60);
    assert_eq!(report.bad_rows.len(), IMPORT_BAD_ROWS_LISTED_MAX);
    let listing = report.bad_rows_text();
    assert!(listing.starts_with("line 2: field price: "), "{listing}");
    assert!(
        listing.ends_with("... and 10 more bad row(s)\n"),
        "{listing}"
    );
    engine.shutdown();
}

#[test]
fn an_import_makes_existing_products_match_and_refuses_what_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    import(
        &engine,
        &sample_lines(5),
        CatalogFormat::Jsonl,
        OnError::Abort,
    )
    .unwrap();
    engine.archive_product(ProductId(5)).wait().unwrap();
    engine
        .reserve(ReserveRequest {
            order_id: OrderId(Uuid::from_u128(1)),
            items: vec![ReservationLine {
                product_id: ProductId(4),
                quantity: 3,
            }],
            ttl: None,
        })
        .wait()
        .unwrap();
    let text = "id,name,price,on_hand\n\
                1,Renamed mat,80.00,3\n\
                4,Held,1.00,2\n\
                5,Archived,1.00,1\n\
                6,New,1.00,1\n";
    let report = rejected(import(&engine, text, CatalogFormat::Csv, OnError::Abort));
    assert_eq!(bad_lines(&report), [3, 4]);
    assert_eq!(report.bad_rows[0].field.as_deref(), Some("on_hand"));
    assert!(
        report.bad_rows[0].message.contains("3 unit(s)"),
        "{:?}",
        report.bad_rows[0]
    );
    assert!(
        report.bad_rows[1].message.contains("archived"),
        "{:?}",
        report.bad_rows[1]
    );

    let report = import(&engine, text, CatalogFormat::Csv, OnError::Skip).unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (1, 1, 0)
    );
    let mat = engine.product(ProductId(1)).unwrap().unwrap();
    assert_eq!(
        (mat.name.as_str(), mat.price.to_string()),
        ("Renamed mat", "80.00".to_owned())
    );
    // Fields the row leaves out take their defaults, as for a new product.
    assert_eq!(mat.sku, "P00000001");
    assert_eq!(mat.description, "");
    assert!(mat.attributes.is_empty());
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().on_hand, 3);
    assert_eq!(engine.product(ProductId(5)).unwrap(), None);

    // The same file again: the good rows already match.
    let report = import(&engine, text, CatalogFormat::Csv, OnError::Skip).unwrap();
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (0, 0, 2)
    );
    engine.shutdown();
}

#[test]
fn an_import_in_batches_is_completed_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // As if an import had stopped after its first batch of three.
    let mut options = options(CatalogFormat::Jsonl, OnError::Abort);
    options.batch_rows = 3;
    let first = sample_lines(3);
    import_catalog(
        &engine,
        CatalogSource::Bytes(first.as_bytes()),
        &options,
        &Progress::hidden(),
    )
    .unwrap();
    let whole = sample_lines(10);
    let report = import_catalog(
        &engine,
        CatalogSource::Bytes(whole.as_bytes()),
        &options,
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!((report.created, report.unchanged), (7, 3));
    assert_eq!(contents(&engine).len(), 10);
    engine.shutdown();
}

#[test]
fn export_then_import_round_trips_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    import(
        &engine,
        SAMPLE_CATALOG,
        CatalogFormat::Jsonl,
        OnError::Abort,
    )
    .unwrap();
    // Archived products are left out of an export.
    engine.archive_product(ProductId(7)).wait().unwrap();
    engine.set_stock(ProductId(1), 999).wait().unwrap();
    let original = contents(&engine);
    assert_eq!(original.len(), SAMPLE_CATALOG.lines().count() - 1);

    for format in [CatalogFormat::Jsonl, CatalogFormat::Csv] {
        let exported = export(&engine, format);
        let other_dir = tempfile::tempdir().unwrap();
        let other = open(other_dir.path());
        let report = import(&other, &exported, format, OnError::Abort).unwrap();
        assert_eq!(report.created as usize, original.len());
        assert_eq!(contents(&other), original, "{format}");
        assert_eq!(export(&other, format), exported, "{format}");
        // Importing the export into the store it came from changes nothing.
        let head = engine.last_event_seq();
        let again = import(&engine, &exported, format, OnError::Abort).unwrap();
        assert_eq!(again.unchanged as usize, original.len());
        assert_eq!(engine.last_event_seq(), head);
        other.shutdown();
    }
    let jsonl = export(&engine, CatalogFormat::Jsonl);
    assert!(
        jsonl
            .lines()
            .next()
            .unwrap()
            .starts_with("{\"id\":1,\"sku\":\"SPRT-YOGA-000001\",\"name\":\"Summitcraft Cushioned"),
        "{jsonl:.200}"
    );
    assert!(
        jsonl
            .lines()
            .next()
            .unwrap()
            .ends_with("\"low_stock_threshold\":10,\"on_hand\":999}")
    );
    engine.shutdown();
}

#[test]
fn csv_quoting_survives_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let tricky = NewProduct {
        id: Some(ProductId(42)),
        sku: Some("Q,1".into()),
        name: "Mug \"Big\", 0,5 l".into(),
        description: Some(
            "First line, with a comma\nsecond \"quoted\" line\r\nthird; ünïcödé ☕".into(),
        ),
        category: Some("home, kitchen".into()),
        brand: Some("O'Brien \"&\" Sons".into()),
        price: "1234.50".parse().unwrap(),
        attributes: [
            ("size, in cm".to_owned(), "10 \" 12".to_owned()),
            ("note".to_owned(), "a\nb".to_owned()),
        ]
        .into(),
        low_stock_threshold: Some(0),
        on_hand: 3,
    };
    engine.upsert_products(vec![tricky]).wait().unwrap();
    let original = contents(&engine);
    let exported = export(&engine, CatalogFormat::Csv);
    assert!(
        exported.contains("\"Mug \"\"Big\"\", 0,5 l\""),
        "{exported}"
    );

    let other_dir = tempfile::tempdir().unwrap();
    let other = open(other_dir.path());
    import(&other, &exported, CatalogFormat::Csv, OnError::Abort).unwrap();
    assert_eq!(contents(&other), original);
    // A bad row after a multi-line one is named by the line it starts on.
    let with_bad_row = format!("{exported}43,S,,d,,,1,,,1\n");
    let report = rejected(import(
        &other,
        &with_bad_row,
        CatalogFormat::Csv,
        OnError::Abort,
    ));
    let lines_before = exported.matches('\n').count() as u64;
    assert_eq!(bad_lines(&report), [lines_before + 1]);
    assert_eq!(report.bad_rows[0].field.as_deref(), Some("name"));
    other.shutdown();
    engine.shutdown();
}

#[test]
fn an_empty_file_imports_nothing_and_a_bad_header_stops_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let report = import(&engine, "", CatalogFormat::Jsonl, OnError::Abort).unwrap();
    assert_eq!(report.rows, 0);
    let report = import(&engine, "\n\n", CatalogFormat::Csv, OnError::Abort).unwrap();
    assert_eq!(report.rows, 0);
    match import(
        &engine,
        "id,name,cost,on_hand\n1,a,1,1\n",
        CatalogFormat::Csv,
        OnError::Skip,
    ) {
        Err(ImportError::File {
            line: 1, message, ..
        }) => {
            assert!(message.contains("unknown column `cost`"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(engine.is_empty().unwrap());
    engine.shutdown();
}

#[test]
fn the_engine_refuses_what_the_check_refuses() {
    // The write itself decides with the same rules, should a file change
    // between the check and the write.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let bad = NewProduct {
        id: Some(ProductId(1)),
        name: "x".into(),
        price: "-1".parse().unwrap(),
        ..NewProduct::default()
    };
    assert!(matches!(
        engine.check_upsert(&bad),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        engine.upsert_products(vec![bad]).wait(),
        Err(Error::InvalidInput { .. })
    ));
    engine.shutdown();
}

// The binary.

fn mercato(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MERCATO_CURRENCY")
        .env("MERCATO_LOG", "warn")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_binary_imports_exports_and_exits_non_zero_on_failure() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog.csv");
    let fixture = fixture.to_str().unwrap();

    let output = mercato(&["import", fixture], &store);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("4 of 4 row(s) imported: 4 created"),
        "{}",
        text(&output.stdout)
    );
    // Not a terminal: plain progress lines.
    assert!(
        text(&output.stderr).contains("importing: done, 4 rows"),
        "{}",
        text(&output.stderr)
    );

    let output = mercato(&["export", "-", "--format", "csv"], &store);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let exported = text(&output.stdout);
    assert!(exported.starts_with(
        "id,sku,name,description,category,brand,price,attributes,low_stock_threshold,on_hand\n"
    ));
    assert_eq!(
        exported
            .lines()
            .filter(|line| line.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        4
    );

    // Export to a file and import it into another store: the same export.
    let file = work.path().join("out.jsonl");
    let output = mercato(&["export", file.to_str().unwrap()], &store);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let other = work.path().join("other");
    let output = mercato(&["import", file.to_str().unwrap()], &other);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = mercato(&["export", "-", "--format", "csv"], &other);
    assert_eq!(text(&output.stdout), exported);

    // Bad rows under abort: exit 1, lines named, nothing written.
    let bad = work.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,name,price,on_hand\n1,Changed,1.00,1\n2,Bad,1.001,1\n7,New,1.00,1\n9,,1.00,1\n",
    )
    .unwrap();
    let output = mercato(&["import", bad.to_str().unwrap()], &store);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("2 bad row(s)"), "{stderr}");
    assert!(
        stderr.contains("line 3: field price: \"1.001\" has more than 2 decimal places"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: field name: must not be empty"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let output = mercato(&["export", "-", "--format", "csv"], &store);
    assert_eq!(text(&output.stdout), exported, "the store is unchanged");

    // The same under skip: exit 0, the good rows in, the bad ones named.
    let output = mercato(
        &["import", bad.to_str().unwrap(), "--on-error", "skip"],
        &store,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("line 3: field price"), "{stderr}");
    assert!(
        text(&output.stdout).contains(
            "2 of 4 row(s) imported: 1 created, 1 updated, 0 unchanged; 2 bad row(s) skipped"
        ),
        "{}",
        text(&output.stdout)
    );
    // The offline verifier finds the imported stores sound.
    for dir in [&store, &other] {
        let output = Command::new(env!("CARGO_BIN_EXE_mercato"))
            .args(["check", "--data-dir"])
            .arg(dir)
            .env_remove("MERCATO_CURRENCY")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }

    // A format the extension does not tell is a usage error (2), and so is
    // an unknown flag value; an unreadable file is a failure (1) that
    // leaves no store behind.
    let output = mercato(
        &["import", bad.with_extension("txt").to_str().unwrap()],
        &store,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("--format"));
    let output = mercato(&["import", fixture, "--on-error", "maybe"], &store);
    assert_eq!(output.status.code(), Some(2));
    let nowhere = work.path().join("nowhere");
    let output = mercato(&["import", "missing.csv"], &nowhere);
    assert_eq!(output.status.code(), Some(1));
    assert!(!nowhere.exists());
    let output = mercato(&["export", "x.csv"], &nowhere);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no store"),
        "{}",
        text(&output.stderr)
    );
    let output = mercato(&["export", "-"], &store);
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_loads_a_csv_catalog_and_holds_the_directory_against_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog.csv");
    let server = crate::binary::start(
        dir.path(),
        &["--catalog", fixture.to_str().unwrap()],
        &[],
        None,
    );
    let client = reqwest::Client::new();
    crate::binary::wait_ready(&server, &client).await;
    let kettle =
        crate::binary::get_json(&client, format!("{}/api/v1/products/3", server.base)).await;
    assert_eq!(
        kettle["description"],
        "Two lines:\nboils in 3 minutes, switches itself off."
    );
    assert!(
        server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.starts_with("loaded 4 products from")),
        "{:?}",
        server.stdout.lock().unwrap()
    );

    // The running server holds the store: a clear error, exit 1.
    let fixture = fixture.to_str().unwrap().to_owned();
    let path = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || mercato(&["import", &fixture], &path))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("already open"), "{stderr}");
    assert!(stderr.contains("stop it, then run this again"), "{stderr}");
    drop(server);
}

/// A store file whose writes fail once `writes_left` reaches 0, until healed.
#[derive(Debug)]
struct FailingDisk {
    file: mercato_engine::FileBackend,
    writes_left: std::sync::atomic::AtomicI64,
}

impl mercato_engine::StorageBackend for FailingDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if self.writes_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(std::io::Error::other("injected write failure"));
        }
        self.file.write(offset, data)
    }
}

#[test]
fn a_write_that_fails_part_way_says_what_was_written_and_a_rerun_completes_it() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join(mercato_engine::DATABASE_FILE_NAME))
        .unwrap();
    let disk = Arc::new(FailingDisk {
        file: mercato_engine::FileBackend::new(file).unwrap(),
        writes_left: std::sync::atomic::AtomicI64::new(i64::MAX),
    });
    let mut config = EngineConfig::new(dir.path());
    config.storage_backend = Some(disk.clone());
    // A checkpoint after nearly every batch: commits write to the store file.
    config.checkpoint_interval = std::time::Duration::from_millis(1);
    let engine = Engine::open(config).unwrap();
    let mut options = options(CatalogFormat::Jsonl, OnError::Abort);
    options.batch_rows = 100;
    let catalog = sample_lines(1_000);

    disk.writes_left.store(40, Ordering::SeqCst);
    let error = import_catalog(
        &engine,
        CatalogSource::Bytes(catalog.as_bytes()),
        &options,
        &Progress::hidden(),
    )
    .unwrap_err();
    let ImportError::Write {
        first_line,
        report,
        error: cause,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(cause.is_storage_fault(), "{cause:?}");
    assert_eq!(report.imported() % 100, 0);
    assert_eq!(*first_line, report.imported() + 1);
    assert!(
        error
            .to_string()
            .contains("running the same import again completes it"),
        "{error}"
    );

    // Once the disk works again the engine reopens its store by itself;
    // the same import then completes the catalog.
    disk.writes_left.store(i64::MAX, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !engine.is_healthy() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not recover"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = import_catalog(
        &engine,
        CatalogSource::Bytes(catalog.as_bytes()),
        &options,
        &Progress::hidden(),
    )
    .unwrap();
    assert_eq!(report.imported(), 1_000);
    assert_eq!(contents(&engine).len(), 1_000);
    engine.shutdown();
}
