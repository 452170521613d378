//! Many threads reserving the same product: never more than the stock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mercato_engine::{Error, ManualClock, ProductId};

use crate::support::{START, check_log_matches_stock, open, order, product, request};

#[test]
fn many_threads_reserving_the_last_units_get_exactly_the_stock() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &ManualClock::new(START));
    engine
        .import_products(vec![product(1, 500), product(2, 300)])
        .wait()
        .unwrap();
    let succeeded = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..16_u128)
        .map(|thread| {
            let engine = engine.clone();
            let succeeded = succeeded.clone();
            std::thread::spawn(move || {
                for n in 0..100_u128 {
                    // Every third request also wants a unit of product 2.
                    let lines: &[(u64, u64)] = if n.is_multiple_of(3) {
                        &[(1, 1), (2, 1)]
                    } else {
                        &[(1, 1)]
                    };
                    match engine
                        .reserve(request(order(thread * 1_000 + n), lines))
                        .wait()
                    {
                        Ok(held) => {
                            assert!(held.created);
                            succeeded.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::InsufficientStock { .. }) => {}
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stock = engine.stock(ProductId(1)).unwrap().unwrap();
    assert_eq!(succeeded.load(Ordering::Relaxed), 500);
    assert_eq!((stock.reserved, stock.available()), (500, 0));
    assert!(engine.stock(ProductId(2)).unwrap().unwrap().reserved <= 300);
    check_log_matches_stock(&engine);
}
