//! Carts, as the contract's Carts section states them: lines priced at
//! current prices, quantity 0 removes a line, unknown or archived products
//! are not found, limits on everything, and carts left unchanged for
//! `cart_ttl` are removed.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use mercato_engine::{
    CART_LINES_MAX, CART_QUANTITY_MAX, CARTS_PER_USER_MAX, Cart, CartId, Decimal, Engine,
    EngineConfig, Error, ManualClock, ProductId, ProductPatch, Timestamp, UserId, Uuid, Write,
};

use crate::support::{START, config, open, product};

const DAY: Duration = Duration::from_secs(86_400);

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

fn decimal(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// `(product, quantity, unit_price, line_total)` of each line.
fn lines(cart: &Cart) -> Vec<(u64, u64, String, String)> {
    cart.items
        .iter()
        .map(|line| {
            (
                line.product_id.0,
                line.quantity,
                line.unit_price.to_string(),
                line.line_total.to_string(),
            )
        })
        .collect()
}

fn line(product: u64, quantity: u64, unit: &str, total: &str) -> (u64, u64, String, String) {
    (product, quantity, unit.to_owned(), total.to_owned())
}

#[test]
fn lines_are_set_changed_and_removed_and_priced_now() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine
        .import_products(vec![product(1, 10), product(2, 0)])
        .wait()
        .unwrap();

    let created = engine.create_cart(user("alice")).wait().unwrap();
    assert_eq!(created.user_id, user("alice"));
    assert!(created.items.is_empty());
    assert_eq!(created.subtotal.to_string(), "0.00");
    assert_eq!(created.currency, "USD");
    assert_eq!((created.created_at, created.updated_at), (START, START));
    let id = created.id;
    assert_eq!(id.0.get_version_num(), 7, "cart ids are UUID v7");

    clock.advance(Duration::from_secs(5));
    engine
        .set_cart_quantity(id, ProductId(1), 2)
        .wait()
        .unwrap();
    // Carts do not hold stock: a sold-out product may be in one.
    let cart = engine
        .set_cart_quantity(id, ProductId(2), 3)
        .wait()
        .unwrap();
    assert_eq!(
        lines(&cart),
        [line(1, 2, "9.99", "19.98"), line(2, 3, "9.99", "29.97")]
    );
    assert_eq!(cart.subtotal, decimal("49.95"));
    assert_eq!(cart.updated_at, START.plus(Duration::from_secs(5)));
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().reserved, 0);

    // Setting a line again replaces its quantity, in place.
    let cart = engine
        .set_cart_quantity(id, ProductId(1), 5)
        .wait()
        .unwrap();
    assert_eq!(
        lines(&cart),
        [line(1, 5, "9.99", "49.95"), line(2, 3, "9.99", "29.97")]
    );
    assert_eq!(engine.cart(id).unwrap(), Some(cart.clone()));

    // Prices are the catalog's, now.
    engine
        .update_product(
            ProductId(2),
            ProductPatch {
                price: Some(decimal("1.5")),
                ..ProductPatch::default()
            },
        )
        .wait()
        .unwrap();
    let cart = engine.cart(id).unwrap().unwrap();
    assert_eq!(lines(&cart)[1], line(2, 3, "1.50", "4.50"));
    assert_eq!(cart.subtotal.to_string(), "54.45");

    // Quantity 0 removes the line; removing it again changes nothing.
    let cart = engine
        .set_cart_quantity(id, ProductId(1), 0)
        .wait()
        .unwrap();
    assert_eq!(lines(&cart), [line(2, 3, "1.50", "4.50")]);
    let cart = engine.remove_cart_line(id, ProductId(1)).wait().unwrap();
    assert_eq!(lines(&cart), [line(2, 3, "1.50", "4.50")]);
    let cart = engine.remove_cart_line(id, ProductId(2)).wait().unwrap();
    assert!(cart.items.is_empty());
    assert_eq!(cart.subtotal.to_string(), "0.00");

    // Clearing is idempotent.
    engine
        .set_cart_quantity(id, ProductId(1), 1)
        .wait()
        .unwrap();
    let cleared = engine.clear_cart(id).wait().unwrap();
    assert!(cleared.items.is_empty());
    assert_eq!(engine.clear_cart(id).wait().unwrap().items, []);
    assert_eq!(engine.cart(id).unwrap().unwrap().items, []);

    // Carts write no events: the contract names none.
    let seq = engine.last_event_seq();
    engine.create_cart(user("alice")).wait().unwrap();
    assert_eq!(engine.last_event_seq(), seq);
}

#[test]
fn unknown_and_archived_products_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine
        .import_products(vec![product(1, 10), product(2, 10), product(3, 10)])
        .wait()
        .unwrap();
    let id = engine.create_cart(user("bob")).wait().unwrap().id;
    for product_id in [1, 2, 3] {
        engine
            .set_cart_quantity(id, ProductId(product_id), 1)
            .wait()
            .unwrap();
    }
    assert_eq!(
        engine
            .set_cart_quantity(id, ProductId(99), 1)
            .wait()
            .unwrap_err(),
        Error::ProductNotFound(ProductId(99))
    );
    assert_eq!(
        engine
            .set_cart_quantity(id, ProductId(0), 1)
            .wait()
            .unwrap_err(),
        Error::ProductNotFound(ProductId(0))
    );
    engine.archive_product(ProductId(2)).wait().unwrap();
    assert_eq!(
        engine
            .set_cart_quantity(id, ProductId(2), 4)
            .wait()
            .unwrap_err(),
        Error::ProductNotFound(ProductId(2))
    );
    // An archived product's line is left out of the cart and its subtotal.
    let cart = engine.cart(id).unwrap().unwrap();
    assert_eq!(
        cart.items
            .iter()
            .map(|l| l.product_id.0)
            .collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(cart.subtotal, decimal("19.98"));
    // Its line may still be removed (quantity 0 needs no live product).
    engine
        .set_cart_quantity(id, ProductId(2), 0)
        .wait()
        .unwrap();
    engine.remove_cart_line(id, ProductId(99)).wait().unwrap();

    // An unknown cart.
    let nowhere = CartId(Uuid::now_v7());
    assert_eq!(engine.cart(nowhere).unwrap(), None);
    for write in [
        Write::set_cart_quantity(nowhere, ProductId(1), 1),
        Write::remove_cart_line(nowhere, ProductId(1)),
        Write::clear_cart(nowhere),
    ] {
        assert_eq!(
            engine.write(write).wait().unwrap_err(),
            Error::CartNotFound(nowhere)
        );
    }
}

#[test]
fn an_archived_line_no_longer_counts_against_the_line_limit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    let max = CART_LINES_MAX as u64;
    engine
        .import_products((1..=max + 1).map(|id| product(id, 1)).collect())
        .wait()
        .unwrap();
    let id = engine.create_cart(user("carol")).wait().unwrap().id;
    for product_id in 1..=max {
        engine
            .set_cart_quantity(id, ProductId(product_id), CART_QUANTITY_MAX)
            .wait()
            .unwrap();
    }
    let error = engine
        .set_cart_quantity(id, ProductId(max + 1), 1)
        .wait()
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field, .. } if field == "items"),
        "{error:?}"
    );
    // A line already there can still change.
    engine
        .set_cart_quantity(id, ProductId(1), 1)
        .wait()
        .unwrap();
    // The next change drops the archived product's line, making room.
    engine.archive_product(ProductId(7)).wait().unwrap();
    let cart = engine
        .set_cart_quantity(id, ProductId(max + 1), 1)
        .wait()
        .unwrap();
    assert_eq!(cart.items.len(), CART_LINES_MAX);
    assert!(
        cart.items
            .iter()
            .all(|line| line.product_id != ProductId(7))
    );
    let subtotal: Decimal = cart.items.iter().map(|line| line.line_total).sum();
    assert_eq!(cart.subtotal, subtotal);
}

#[test]
fn limits_refuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 1)).wait().unwrap();
    let id = engine.create_cart(user("dave")).wait().unwrap().id;
    let before = engine.cart(id).unwrap();
    let error = engine
        .set_cart_quantity(id, ProductId(1), CART_QUANTITY_MAX + 1)
        .wait()
        .unwrap_err();
    assert!(matches!(&error, Error::InvalidInput { field, .. } if field == "quantity"));
    assert_eq!(engine.cart(id).unwrap(), before, "not even touched");

    for _ in 1..CARTS_PER_USER_MAX {
        engine.create_cart(user("dave")).wait().unwrap();
    }
    let error = engine.create_cart(user("dave")).wait().unwrap_err();
    assert!(matches!(&error, Error::InvalidInput { field, .. } if field == "user_id"));
    assert_eq!(
        engine.carts_of_user(&user("dave")).unwrap().len(),
        CARTS_PER_USER_MAX
    );
    // Another user is not affected.
    engine.create_cart(user("dave2")).wait().unwrap();

    for bad in [String::new(), "x".repeat(256), "tab\there".to_owned()] {
        assert_eq!(UserId::new(bad).unwrap_err().code(), "invalid_request");
    }
}

#[test]
fn a_users_carts_are_listed_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 1)).wait().unwrap();
    let first = engine.create_cart(user("erin")).wait().unwrap();
    clock.advance(Duration::from_millis(1));
    let second = engine.create_cart(user("erin")).wait().unwrap();
    engine.create_cart(user("erin-other")).wait().unwrap();
    engine
        .set_cart_quantity(first.id, ProductId(1), 2)
        .wait()
        .unwrap();
    let carts = engine.carts_of_user(&user("erin")).unwrap();
    assert_eq!(
        carts.iter().map(|cart| cart.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert_eq!(carts[0].subtotal, decimal("19.98"));
    assert_eq!(engine.carts_of_user(&user("nobody")).unwrap(), []);
}

#[test]
fn carts_unchanged_for_the_ttl_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 1)).wait().unwrap();
    assert_eq!(engine.config().cart_ttl, 30 * DAY, "the default");
    let idle = engine.create_cart(user("fay")).wait().unwrap().id;
    let busy = engine.create_cart(user("fay")).wait().unwrap().id;

    clock.advance(20 * DAY);
    engine
        .set_cart_quantity(busy, ProductId(1), 1)
        .wait()
        .unwrap();
    // Reads do not count as a change.
    engine.cart(idle).unwrap().unwrap();

    clock.advance(10 * DAY - Duration::from_millis(1));
    engine.flush().wait().unwrap();
    assert!(engine.cart(idle).unwrap().is_some(), "not yet due");

    clock.advance(Duration::from_millis(1));
    engine.flush().wait().unwrap();
    assert_eq!(engine.cart(idle).unwrap(), None, "30 days unchanged");
    assert!(engine.cart(busy).unwrap().is_some());
    assert_eq!(
        engine.carts_of_user(&user("fay")).unwrap().len(),
        1,
        "and gone from the user's index"
    );
    assert_eq!(
        engine.clear_cart(idle).wait().unwrap_err(),
        Error::CartNotFound(idle)
    );

    clock.advance(20 * DAY);
    engine.flush().wait().unwrap();
    assert_eq!(engine.cart(busy).unwrap(), None);
    assert_eq!(engine.carts_of_user(&user("fay")).unwrap(), []);
    // The user may create carts again.
    engine.create_cart(user("fay")).wait().unwrap();
}

#[test]
fn the_purge_takes_a_bounded_number_per_batch_and_the_idle_writer_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let mut config = config(dir.path(), &clock);
    config.expiries_per_batch_max = 3;
    config.cart_ttl = Duration::from_secs(60);
    let engine = Engine::open(config).unwrap();
    let ids: Vec<CartId> = (0..10)
        .map(|_| engine.create_cart(user("gus")).wait().unwrap().id)
        .collect();
    clock.advance(Duration::from_secs(60));
    // No call: the writer's own tick removes them, a few per batch.
    for _ in 0..500 {
        if engine.carts_of_user(&user("gus")).unwrap().is_empty() {
            for id in ids {
                assert_eq!(engine.cart(id).unwrap(), None);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the idle writer did not remove the carts");
}

#[test]
fn cart_ttl_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    for ttl in [Duration::ZERO, Duration::from_millis(999), 3_651 * DAY] {
        let mut config = EngineConfig::new(dir.path());
        config.cart_ttl = ttl;
        let error = Engine::open(config).err().unwrap();
        assert!(
            matches!(&error, Error::InvalidInput { field, .. } if field == "config.cart_ttl"),
            "{error:?}"
        );
    }
}

#[test]
fn carts_survive_a_reopen_and_still_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let engine = open(dir.path(), &clock);
    engine.create_product(product(1, 1)).wait().unwrap();
    let id = engine.create_cart(user("hal")).wait().unwrap().id;
    let cart = engine
        .set_cart_quantity(id, ProductId(1), 4)
        .wait()
        .unwrap();
    engine.shutdown();
    drop(engine);

    let engine = open(dir.path(), &clock);
    assert_eq!(engine.cart(id).unwrap(), Some(cart.clone()));
    assert_eq!(engine.carts_of_user(&user("hal")).unwrap(), [cart]);
    clock.advance(30 * DAY);
    engine.flush().wait().unwrap();
    assert_eq!(engine.cart(id).unwrap(), None, "the expiry index was kept");
}

const CHILD_DIR: &str = "MERCATO_CART_CHILD_DIR";

/// The child of [`carts_are_replayed_from_the_log_after_sigkill`]: does
/// nothing unless started by it.
#[test]
fn cart_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let mut config = EngineConfig::new(dir);
    // No checkpoint before the kill: the carts are in the log only.
    config.checkpoint_interval = Duration::from_secs(60);
    let engine = Engine::open(config).unwrap();
    engine.create_product(product(1, 1)).wait().unwrap();
    let kept = engine.create_cart(user("ivy")).wait().unwrap().id;
    engine
        .set_cart_quantity(kept, ProductId(1), 3)
        .wait()
        .unwrap();
    let emptied = engine.create_cart(user("ivy")).wait().unwrap().id;
    engine
        .set_cart_quantity(emptied, ProductId(1), 1)
        .wait()
        .unwrap();
    engine.clear_cart(emptied).wait().unwrap();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "DONE {kept} {emptied}").unwrap();
    stdout.flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn carts_are_replayed_from_the_log_after_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["carts::cart_child", "--exact", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut done = None;
    for text in stdout.lines() {
        let text = text.unwrap();
        // libtest may print the test's name on the same line.
        if let Some(at) = text.find("DONE ") {
            done = Some(text[at + 5..].to_owned());
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = done.expect("the child wrote its carts");
    let ids: Vec<CartId> = done.split(' ').map(|id| id.parse().unwrap()).collect();
    let (kept, emptied) = (ids[0], ids[1]);

    let report = Engine::recover(EngineConfig::new(dir.path()), false).unwrap();
    assert!(report.replayed_records > 0, "{report:?}");
    // The replayed carts are all there, in both indexes: the user's, and
    // the expiry index, which removes them once the clock passes their ttl.
    let clock = ManualClock::new(Timestamp(0));
    let engine = open(dir.path(), &clock);
    let cart = engine.cart(kept).unwrap().expect("replayed");
    assert_eq!(
        cart.items
            .iter()
            .map(|line| (line.product_id.0, line.quantity))
            .collect::<Vec<_>>(),
        [(1, 3)]
    );
    assert_eq!(engine.cart(emptied).unwrap().unwrap().items, []);
    assert_eq!(engine.carts_of_user(&user("ivy")).unwrap().len(), 2);
    clock.set(cart.updated_at.plus(31 * DAY));
    engine.flush().wait().unwrap();
    assert_eq!(engine.carts_of_user(&user("ivy")).unwrap(), []);
    assert_eq!(engine.cart(kept).unwrap(), None);
}

#[test]
fn a_cart_write_saves_its_idempotency_record_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine.create_product(product(1, 1)).wait().unwrap();
    let write = Write::create_cart(user("jo")).remember("cart-key", DAY, |outcome| {
        outcome
            .as_ref()
            .ok()
            .map(|cart| cart.id.to_string().into_bytes())
    });
    let cart = engine.write(write).wait().unwrap();
    assert_eq!(
        engine.idempotency_record("cart-key").unwrap(),
        Some(cart.id.to_string().into_bytes())
    );
}
