//! `Engine::upsert_products` and `Engine::check_upsert`: the bulk write that
//! `mercato import` applies, batch by batch.

use mercato_engine::{Error, Event, ManualClock, NewProduct, ProductId};

use crate::support::{START, check_log_matches_stock, open, order, product, request};

fn events_since(engine: &mercato_engine::Engine, after: u64) -> Vec<Event> {
    engine
        .events_after(after, 500)
        .unwrap()
        .into_iter()
        .map(|envelope| envelope.event)
        .collect()
}

#[test]
fn upsert_creates_updates_and_leaves_matching_products_alone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    let created = engine
        .upsert_products(vec![product(1, 10), product(2, 0)])
        .wait()
        .unwrap();
    assert_eq!(
        (created.created, created.updated, created.unchanged),
        (2, 0, 0)
    );
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().on_hand, 10);

    // The same products again: nothing written, not even an event.
    let head = engine.last_event_seq();
    let again = engine
        .upsert_products(vec![product(1, 10), product(2, 0)])
        .wait()
        .unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(engine.last_event_seq(), head);

    // New fields and stock for 1, a new product 3, 2 unchanged.
    let changed = NewProduct {
        name: "Renamed".into(),
        category: Some("moved".into()),
        price: "1.5".parse().unwrap(),
        ..product(1, 4)
    };
    let upserted = engine
        .upsert_products(vec![changed, product(2, 0), product(3, 7)])
        .wait()
        .unwrap();
    assert_eq!(
        (upserted.created, upserted.updated, upserted.unchanged),
        (1, 1, 1)
    );
    let one = engine.product(ProductId(1)).unwrap().unwrap();
    assert_eq!(one.name, "Renamed");
    assert_eq!(one.price.to_string(), "1.50");
    assert_eq!(engine.stock(ProductId(1)).unwrap().unwrap().on_hand, 4);
    // The category index follows the product.
    let odd = engine.list_products(Some("odd"), None, 10).unwrap();
    assert_eq!(odd.items.iter().map(|p| p.id.0).collect::<Vec<_>>(), [3]);
    let moved = engine.list_products(Some("moved"), None, 10).unwrap();
    assert_eq!(moved.items.len(), 1);
    let events = events_since(&engine, head);
    assert!(events.contains(&Event::ProductUpdated {
        product_id: ProductId(1)
    }));
    assert!(events.contains(&Event::ProductCreated {
        product_id: ProductId(3)
    }));
    assert!(events.iter().any(|event| matches!(
        event,
        Event::StockUpdated {
            product_id: ProductId(1),
            on_hand: 4,
            ..
        }
    )));
    assert!(!events.iter().any(|event| matches!(
        event,
        Event::ProductUpdated {
            product_id: ProductId(2)
        }
    )));
    check_log_matches_stock(&engine);
    engine.shutdown();
}

#[test]
fn one_product_that_cannot_apply_refuses_the_whole_upsert() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine
        .upsert_products(vec![product(1, 10), product(2, 5), product(3, 1)])
        .wait()
        .unwrap();
    engine.archive_product(ProductId(3)).wait().unwrap();
    engine.reserve(request(order(1), &[(2, 4)])).wait().unwrap();
    let head = engine.last_event_seq();

    // An archived product's id is not reused.
    let archived = engine
        .upsert_products(vec![product(4, 1), product(3, 1)])
        .wait()
        .unwrap_err();
    match &archived {
        Error::InvalidInput { field, message } => {
            assert_eq!(field, "products[1].id");
            assert!(message.contains("archived"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        engine.check_upsert(&product(3, 1)).unwrap_err().code(),
        "invalid_request"
    );

    // Stock below what is reserved.
    let below = engine
        .upsert_products(vec![product(4, 1), product(2, 3)])
        .wait()
        .unwrap_err();
    assert!(
        matches!(below, Error::BelowReserved { reserved: 4, .. }),
        "{below:?}"
    );
    assert!(matches!(
        engine.check_upsert(&product(2, 3)),
        Err(Error::BelowReserved { .. })
    ));
    engine.check_upsert(&product(2, 4)).unwrap();

    // A bad field, an id missing, an id twice.
    let bad_price = NewProduct {
        price: "1.001".parse().unwrap(),
        ..product(5, 0)
    };
    match engine.check_upsert(&bad_price) {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "price"),
        other => panic!("{other:?}"),
    }
    match engine
        .upsert_products(vec![product(4, 1), bad_price])
        .wait()
    {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "products[1].price"),
        other => panic!("{other:?}"),
    }
    let no_id = NewProduct {
        id: None,
        ..product(6, 0)
    };
    match engine.check_upsert(&no_id) {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "id"),
        other => panic!("{other:?}"),
    }
    match engine
        .upsert_products(vec![product(4, 1), product(4, 2)])
        .wait()
    {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "products[1].id"),
        other => panic!("{other:?}"),
    }

    // Nothing of any of them was written.
    engine.wait_durable().wait().unwrap();
    assert_eq!(engine.last_event_seq(), head);
    assert_eq!(engine.product(ProductId(4)).unwrap(), None);
    assert_eq!(engine.stock(ProductId(2)).unwrap().unwrap().on_hand, 5);
    check_log_matches_stock(&engine);
    engine.shutdown();
}
