//! Replication's engine side, without a transport: a primary's kept
//! records applied by a follower in process, a snapshot bootstrap, a
//! promotion that continues the numbering, trimming, and the synchronous
//! gate holding answers and reads until a batch is released.

use std::time::Duration;

use mercato_engine::{Engine, Error, ManualClock, ReplicationRole};

use crate::support::{START, check_log_matches_stock, config, order, product, request};

fn open(dir: &std::path::Path, clock: &ManualClock, role: ReplicationRole, sync: bool) -> Engine {
    let mut config = config(dir, clock);
    config.replication = role;
    config.replication_sync = sync;
    Engine::open(config).expect("engine opens")
}

/// Ships every kept record after the follower's position.
fn ship(primary: &Engine, follower: &Engine) {
    loop {
        let records = primary
            .replication_records_after(follower.last_lsn(), 100)
            .unwrap();
        if records.is_empty() {
            return;
        }
        for record in records {
            follower.apply_replicated(record).wait().unwrap();
        }
    }
}

fn state(engine: &Engine) -> (Vec<String>, Vec<String>, u64) {
    let stock = (1..=6)
        .map(|id| format!("{:?}", engine.stock(mercato_engine::ProductId(id)).unwrap()))
        .collect();
    let reservations = (0..30)
        .map(|n| format!("{:?}", engine.reservation(order(n)).unwrap()))
        .collect();
    (stock, reservations, engine.last_event_seq())
}

#[test]
fn a_follower_applies_a_primarys_records_and_is_promoted() {
    let clock = ManualClock::new(START);
    let primary_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let primary = open(primary_dir.path(), &clock, ReplicationRole::Primary, false);
    for id in 1..=6 {
        primary.create_product(product(id, 100)).wait().unwrap();
    }
    for n in 0..10 {
        primary
            .reserve(request(order(n), &[(1 + n as u64 % 6, 2)]))
            .wait()
            .unwrap();
    }
    // A follower starts from a snapshot taken now, then follows.
    let snapshot = primary.replication_snapshot().unwrap();
    assert_eq!(snapshot.lsn, primary.last_lsn());
    let follower = open(
        follower_dir.path(),
        &clock,
        ReplicationRole::Follower,
        false,
    );
    follower
        .bootstrap_follower(snapshot.clone())
        .wait()
        .unwrap();
    assert_eq!(follower.last_lsn(), snapshot.lsn);
    assert!(matches!(
        follower.bootstrap_follower(snapshot).wait(),
        Err(Error::Conflict(_))
    ));
    for n in 10..20 {
        primary
            .reserve(request(order(n), &[(1 + n as u64 % 6, 1)]))
            .wait()
            .unwrap();
    }
    primary.commit_reservation(order(3)).wait().unwrap();
    primary.release_reservation(order(4)).wait().unwrap();
    ship(&primary, &follower);
    assert_eq!(follower.last_lsn(), primary.last_lsn());
    assert_eq!(state(&follower), state(&primary));
    check_log_matches_stock(&follower);

    // A follower takes no writes; a record out of order is refused.
    assert!(matches!(
        follower.set_stock(mercato_engine::ProductId(1), 5).wait(),
        Err(Error::NotPrimary { .. })
    ));
    let mut far = primary.replication_records_after(0, 1).unwrap().remove(0);
    far.lsn = follower.last_lsn() + 5;
    assert!(matches!(
        follower.apply_replicated(far).wait(),
        Err(Error::Conflict(_))
    ));

    // Shipped records are trimmed.
    primary
        .trim_replication_log(primary.last_lsn())
        .wait()
        .unwrap();
    primary.wait_durable().wait().unwrap();
    assert!(primary.replication_records_after(0, 10).unwrap().is_empty());

    // Promoted, the follower writes, continuing the primary's numbering.
    let last = follower.promote().wait().unwrap();
    assert_eq!(last, primary.last_lsn());
    follower
        .reserve(request(order(25), &[(2, 1)]))
        .wait()
        .unwrap();
    let kept = follower.replication_records_after(last, 10).unwrap();
    assert_eq!(kept.first().map(|record| record.lsn), Some(last + 1));
    check_log_matches_stock(&follower);
    follower.shutdown();
    primary.shutdown();
}

#[test]
fn a_primary_keeps_its_records_across_a_restart() {
    let clock = ManualClock::new(START);
    let dir = tempfile::tempdir().unwrap();
    let primary = open(dir.path(), &clock, ReplicationRole::Primary, false);
    primary.create_product(product(1, 10)).wait().unwrap();
    primary
        .reserve(request(order(1), &[(1, 1)]))
        .wait()
        .unwrap();
    let last = primary.last_lsn();
    drop(primary);
    let primary = open(dir.path(), &clock, ReplicationRole::Primary, false);
    let records = primary.replication_records_after(0, 100).unwrap();
    let numbers: Vec<u64> = records.iter().map(|record| record.lsn).collect();
    assert_eq!(
        numbers,
        (1..=last).collect::<Vec<_>>(),
        "none lost, none twice"
    );
}

#[test]
fn sync_replication_holds_answers_and_reads_until_released() {
    let clock = ManualClock::new(START);
    let dir = tempfile::tempdir().unwrap();
    let primary = open(dir.path(), &clock, ReplicationRole::Primary, true);
    let gate = primary
        .take_replication_gate()
        .expect("a sync primary has a gate");
    let created = primary.create_product(product(1, 10));
    let batch = next_with_records(&gate);
    // Synced here, not yet replicated: nobody hears of it or sees it.
    assert!(
        primary
            .product(mercato_engine::ProductId(1))
            .unwrap()
            .is_none()
    );
    assert_eq!(primary.last_lsn(), 0);
    let lsn = batch.records.last().unwrap().lsn;
    batch.release();
    created.wait().unwrap();
    assert!(
        primary
            .product(mercato_engine::ProductId(1))
            .unwrap()
            .is_some()
    );
    assert_eq!(primary.last_lsn(), lsn);

    // A batch that fails replication answers its callers with the error.
    let refused = primary.set_stock(mercato_engine::ProductId(1), 20);
    let batch = next_with_records(&gate);
    batch.fail(&Error::NotPrimary {
        reason: "deposed".to_owned(),
        primary: None,
    });
    assert!(matches!(refused.wait(), Err(Error::NotPrimary { .. })));
    drop(gate);
    primary.shutdown();
}

/// The next batch at the gate that carries records (the writer's own
/// empty batches, a checkpoint say, are released on the way).
fn next_with_records(gate: &mercato_engine::ReplicationGate) -> mercato_engine::GatedBatch {
    loop {
        let batch = gate
            .next(Duration::from_secs(10))
            .expect("a batch arrives at the gate");
        if !batch.records.is_empty() {
            return batch;
        }
        batch.release();
    }
}
