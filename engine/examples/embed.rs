//! The whole library story in one runnable file:
//! `cargo run -p mercato-engine --example embed`.
//!
//! Opens a store in a temporary directory, loads products and stock,
//! reserves from many threads at once, commits and releases, lets a
//! reservation expire, and follows the event log as a consumer would.

use std::time::Duration;

use mercato_engine::{
    Engine, EngineConfig, Error, NewProduct, OrderId, ProductId, ReservationLine, ReserveRequest,
    Uuid,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("mercato-embed-{}", std::process::id()));
    let engine = Engine::open(EngineConfig::new(&dir))?;
    println!("store opened in {}", dir.display());

    // A catalog: one call, one transaction, all products or none.
    let products = engine
        .import_products(vec![
            NewProduct {
                name: "Espresso cup".into(),
                category: Some("home-kitchen".into()),
                price: "12.50".parse().expect("a price"),
                on_hand: 100,
                ..NewProduct::default()
            },
            NewProduct {
                name: "Milk jug".into(),
                category: Some("home-kitchen".into()),
                price: "18".parse().expect("a price"),
                on_hand: 3,
                ..NewProduct::default()
            },
        ])
        .await?;
    let (cup, jug) = (products[0].id, products[1].id);

    // Many callers at once: the writer batches them into few transactions,
    // and the stock check happens inside the writer, so nothing oversells.
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .reserve(ReserveRequest {
                        order_id: OrderId(Uuid::now_v7()),
                        items: vec![line(cup, 2), line(jug, 1)],
                        ttl: None,
                    })
                    .await
            })
        })
        .collect();
    let mut held = Vec::new();
    for attempt in attempts {
        match attempt.await.expect("the task runs") {
            Ok(reserved) => held.push(reserved.reservation.order_id),
            Err(Error::InsufficientStock {
                product_id,
                available,
                ..
            }) => {
                println!("refused: product {product_id} has {available} left")
            }
            Err(other) => return Err(other),
        }
    }
    println!("{} of 10 orders got stock", held.len());

    // Commit one (a sale), release one (a cancelled checkout).
    engine.commit_reservation(held[0]).await?;
    engine.release_reservation(held[1]).await?;
    print_stock(&engine, jug)?;

    // A short reservation, left to expire: the writer releases it by itself.
    let quick = OrderId(Uuid::now_v7());
    engine
        .reserve(ReserveRequest {
            order_id: quick,
            items: vec![line(jug, 1)],
            ttl: Some(Duration::from_secs(1)),
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let status = engine.reservation(quick)?.expect("it exists").status;
    println!("the short reservation is now {}", status.as_str());

    // The event log: every change, in commit order, from a saved position.
    let mut subscription = engine.subscribe("example")?;
    let events = subscription.try_next_batch(100)?;
    for envelope in &events {
        println!("event {:>3} {}", envelope.seq, envelope.event.type_name());
    }
    if let Some(last) = events.last() {
        subscription.ack(last.seq).await?;
    }

    engine.shutdown();
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn line(product_id: ProductId, quantity: u64) -> ReservationLine {
    ReservationLine {
        product_id,
        quantity,
    }
}

fn print_stock(engine: &Engine, product_id: ProductId) -> Result<(), Error> {
    let stock = engine.stock(product_id)?.expect("the product exists");
    println!(
        "product {product_id}: on_hand {}, reserved {}, available {}",
        stock.on_hand,
        stock.reserved,
        stock.available()
    );
    Ok(())
}
