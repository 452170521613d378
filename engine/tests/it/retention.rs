//! Retention: old events that every consumer has passed, and finished
//! reservations whose orders cannot change, are removed by the writer; the
//! newest event, anything a consumer still needs, and active reservations
//! stay, across a restart.

use std::time::Duration;

use mercato_engine::{ManualClock, ReservationStatus};

use crate::support::{START, config, order, product, request};

const DAY: Duration = Duration::from_secs(86_400);

#[test]
fn old_events_and_finished_reservations_go_what_is_needed_stays() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let mut settings = config(dir.path(), &clock);
    settings.compactions_per_batch_max = 3;
    let engine = mercato_engine::Engine::open(settings.clone()).unwrap();
    engine.create_product(product(1, 100)).wait().unwrap();
    for n in 1..=4 {
        engine.reserve(request(order(n), &[(1, 1)])).wait().unwrap();
    }
    engine.commit_reservation(order(1)).wait().unwrap();
    engine.release_reservation(order(2)).wait().unwrap();
    // A consumer that has read only the first 3 events.
    engine.save_consumer_position("slow", 3).wait().unwrap();
    let head = engine.last_event_seq();
    assert!(head > 6);

    // A month and a day later, the writer compacts in slices.
    clock.advance(31 * DAY);
    for _ in 0..10 {
        clock.advance(Duration::from_secs(61));
        engine.flush().wait().unwrap();
    }
    let events = engine.events_after(0, 500).unwrap();
    assert_eq!(
        events.first().map(|event| event.seq),
        Some(4),
        "1-3 removed, no further than the slow consumer"
    );
    // The two expiries just now added their events.
    assert_eq!(
        events.last().map(|event| event.seq),
        Some(engine.last_event_seq())
    );
    assert!(engine.last_event_seq() > head);
    assert!(
        engine.reservation(order(1)).unwrap().is_none(),
        "committed, old: gone"
    );
    assert!(
        engine.reservation(order(2)).unwrap().is_none(),
        "released, old: gone"
    );
    // Still active (their deadline is long past, so the writer expired
    // them just now: finished today, kept for a month).
    for n in [3, 4] {
        let reservation = engine.reservation(order(n)).unwrap().unwrap();
        assert_eq!(reservation.status, ReservationStatus::Expired);
    }

    // Once the consumer moves on, everything but the newest event goes.
    engine
        .save_consumer_position("slow", engine.last_event_seq())
        .wait()
        .unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(61));
        engine.flush().wait().unwrap();
    }
    let events = engine.events_after(0, 500).unwrap();
    let newest = engine.last_event_seq();
    assert!(events.iter().all(|event| event.seq > 3));
    assert_eq!(events.last().map(|event| event.seq), Some(newest));
    let kept_before = events.len();

    // A restart continues the numbering after the newest event.
    engine.shutdown();
    let engine = mercato_engine::Engine::open(settings).unwrap();
    assert_eq!(engine.last_event_seq(), newest);
    engine
        .adjust_stock(mercato_engine::ProductId(1), 1)
        .wait()
        .unwrap();
    assert_eq!(engine.last_event_seq(), newest + 1);
    assert!(engine.events_after(0, 500).unwrap().len() <= kept_before + 1);
    let stock = engine.stock(mercato_engine::ProductId(1)).unwrap().unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (100, 0));
    engine.shutdown();
}

#[test]
fn a_backlog_is_removed_ten_slices_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let mut settings = config(dir.path(), &clock);
    settings.compactions_per_batch_max = 4;
    let engine = mercato_engine::Engine::open(settings).unwrap();
    engine.create_product(product(1, 100)).wait().unwrap();
    for n in 1..=20 {
        engine.reserve(request(order(n), &[(1, 1)])).wait().unwrap();
        engine.release_reservation(order(n)).wait().unwrap();
    }
    let written = engine.events_after(0, 500).unwrap().len();
    assert!(written > 40, "{written}");

    // A month later: 1.5 s of batches 100 ms apart. One slice a second
    // would remove 8 events and look at 8 reservations; while behind, a
    // slice every 100 ms removes the whole backlog.
    clock.advance(31 * DAY);
    for _ in 0..15 {
        clock.advance(Duration::from_millis(100));
        engine.flush().wait().unwrap();
    }
    let events = engine.events_after(0, 500).unwrap();
    assert_eq!(events.len(), 1, "only the newest event stays");
    assert_eq!(events[0].seq, engine.last_event_seq());
    for n in 1..=20 {
        assert!(
            engine.reservation(order(n)).unwrap().is_none(),
            "released a month ago: reservation {n} gone"
        );
    }
}
