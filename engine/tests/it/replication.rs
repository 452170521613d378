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

/// The NATS JetStream transport against a real `nats-server` (Debian's
/// package; `.ci/run` installs it): records larger than the server's
/// `max_payload` go in chunks, and the log stream is trimmed after
/// snapshots.
#[cfg(feature = "nats")]
mod over_nats {
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use mercato_engine::nats::{EPOCH_FILE_NAME, Follower, NatsConfig, Publisher, ReplicationMode};
    use mercato_engine::{Engine, ManualClock, NewProduct, ProductId, ReplicationRole};

    use super::open;
    use crate::support::START;

    /// A `nats-server` with JetStream on a free loopback port, killed on drop.
    struct NatsServer {
        child: Child,
        url: String,
    }

    impl Drop for NatsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl NatsServer {
        /// `max_payload` in bytes (the server's default is 1 MiB).
        fn start(dir: &Path, max_payload: usize) -> NatsServer {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let store = dir.join("jetstream");
            let config = dir.join("nats.conf");
            std::fs::write(
                &config,
                format!(
                    "listen: 127.0.0.1:{port}\nmax_payload: {max_payload}\njetstream {{ store_dir: {:?} }}\n",
                    store.display().to_string()
                ),
            )
            .unwrap();
            let child = Command::new("nats-server")
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("cannot start nats-server ({error}); apt-get install -y nats-server")
                });
            let server = NatsServer {
                child,
                url: format!("nats://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "nats-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            server
        }
    }

    fn nats_config(url: &str, store: &str, snapshot_every_records: u64) -> NatsConfig {
        let mut config = NatsConfig::new(url);
        config.store = store.to_owned();
        config.snapshot_every_records = snapshot_every_records;
        config
    }

    /// Waits (at most 60 s) for `done`.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn primary(dir: &Path, clock: &ManualClock, config: NatsConfig) -> (Engine, Publisher) {
        let sync = config.mode == ReplicationMode::Sync;
        let engine = open(dir, clock, ReplicationRole::Primary, sync);
        let publisher = Publisher::start(engine.clone(), config).unwrap();
        let writes = engine.clone();
        eventually("the primary takes writes", move || !writes.is_read_only()).await;
        (engine, publisher)
    }

    async fn follower(dir: &Path, clock: &ManualClock, config: NatsConfig) -> (Engine, Follower) {
        let engine = open(dir, clock, ReplicationRole::Follower, false);
        let follower = Follower::start(engine.clone(), config).await.unwrap();
        (engine, follower)
    }

    /// Waits until `follower` holds what `primary` holds, and checks that
    /// every table is the same.
    async fn same_store(primary: &Engine, follower: &Engine) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let target = primary.last_lsn();
            if follower.last_lsn() >= target {
                let theirs = primary.replication_snapshot().unwrap();
                let ours = follower.replication_snapshot().unwrap();
                if theirs.lsn == ours.lsn {
                    assert!(ours == theirs, "the follower's tables are the primary's");
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the follower is at {} short of {target}",
                follower.last_lsn()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn catalog(first: u64, count: u64) -> Vec<NewProduct> {
        (first..first + count)
            .map(|id| NewProduct {
                id: Some(ProductId(id)),
                name: format!("Imported product {id}"),
                description: Some(format!("{id} ").repeat(60)),
                category: Some("imported".to_owned()),
                price: "12.50".parse().unwrap(),
                on_hand: id % 17,
                ..NewProduct::default()
            })
            .collect()
    }

    /// Every message of the log stream: (its `Mercato-Chunk`, if any).
    async fn log_messages(url: &str, store: &str) -> (u64, Vec<Option<String>>) {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let mut stream = context
            .get_stream(format!("MERCATO_{}_LOG", store.to_ascii_uppercase()))
            .await
            .unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut chunks = Vec::new();
        if state.messages > 0 {
            for sequence in state.first_sequence..=state.last_sequence {
                let message = stream.get_raw_message(sequence).await.unwrap();
                chunks.push(
                    message
                        .headers
                        .get("Mercato-Chunk")
                        .map(|value| value.as_str().to_owned()),
                );
            }
        }
        (state.messages, chunks)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replication_of_records_larger_than_max_payload_goes_in_chunks() {
        let clock = ManualClock::new(START);
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(dir.path(), 65_536);
        // Snapshots only at the start (of an empty store) at first.
        let config = nats_config(&nats.url, "big", 1_000_000);
        let (primary, publisher) =
            primary(&dir.path().join("primary"), &clock, config.clone()).await;
        let (early, early_follower) =
            follower(&dir.path().join("early"), &clock, config.clone()).await;

        // One batch of 3,000 products: a record of about 1.4 MB.
        primary.import_products(catalog(1, 3_000)).await.unwrap();
        let import_lsn = primary.last_lsn();
        primary.set_stock(ProductId(7), 70).await.unwrap();
        primary.import_products(catalog(5_001, 40)).await.unwrap();
        same_store(&primary, &early).await;
        assert_eq!(
            early.product(ProductId(2_999)).unwrap(),
            primary.product(ProductId(2_999)).unwrap()
        );
        let (_, chunks) = log_messages(&nats.url, "big").await;
        let count: u64 = chunks
            .iter()
            .flatten()
            .find_map(|chunk| {
                chunk
                    .split_once('/')
                    .map(|(_, count)| count.parse().unwrap())
            })
            .expect("the import went in chunks");
        assert!(count >= 16, "{count} chunks of under 64 KiB each");
        assert_eq!(
            chunks.iter().flatten().count() as u64,
            count,
            "one record in chunks, the others whole"
        );
        assert!(import_lsn < primary.last_lsn());

        // A follower started now takes the empty snapshot and every record.
        let (late, late_follower) =
            follower(&dir.path().join("late"), &clock, config.clone()).await;
        same_store(&primary, &late).await;

        // A primary restarted with frequent snapshots uploads one of the
        // imported store (larger than max_payload: the object store chunks
        // it); a follower started afterwards starts from it.
        publisher.stop().await;
        let publisher =
            Publisher::start(primary.clone(), nats_config(&nats.url, "big", 1)).unwrap();
        let status = publisher.status();
        let lsn = primary.last_lsn();
        eventually("a snapshot of the imported store is uploaded", || {
            status.snapshot_lsn.load(Ordering::SeqCst) >= lsn
        })
        .await;
        primary.set_stock(ProductId(8), 80).await.unwrap();
        let (newest, newest_follower) = follower(&dir.path().join("newest"), &clock, config).await;
        same_store(&primary, &newest).await;
        same_store(&primary, &early).await;
        assert!(!early_follower.status().stopped.load(Ordering::SeqCst));

        for follower in [early_follower, late_follower, newest_follower] {
            follower.stop().await;
        }
        publisher.stop().await;
        for engine in [early, late, newest, primary] {
            engine.shutdown();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replication_trims_the_log_stream_after_snapshots() {
        let clock = ManualClock::new(START);
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(dir.path(), 1 << 20);
        let every = 5;
        let config = nats_config(&nats.url, "trim", every);
        let (primary, publisher) =
            primary(&dir.path().join("primary"), &clock, config.clone()).await;
        primary.import_products(catalog(1, 20)).await.unwrap();
        let (running, running_follower) =
            follower(&dir.path().join("running"), &clock, config.clone()).await;
        let (stopped, stopped_follower) =
            follower(&dir.path().join("stopped"), &clock, config.clone()).await;
        // A reservation whose deadline row the release below removes: a
        // follower that replaces its store keeps no row the snapshot lacks.
        primary
            .reserve(crate::support::request(crate::support::order(1), &[(3, 1)]))
            .await
            .unwrap();
        same_store(&primary, &stopped).await;
        // One follower stops here; the primary goes on.
        stopped_follower.stop().await;
        let stopped_at = stopped.last_lsn();
        stopped.shutdown();
        drop(stopped);
        primary
            .release_reservation(crate::support::order(1))
            .await
            .unwrap();
        for round in 0..300_u64 {
            primary
                .set_stock(ProductId(1 + round % 20), round)
                .await
                .unwrap();
        }
        let last = primary.last_lsn();
        assert!(last > stopped_at + 300);
        same_store(&primary, &running).await;

        // The stream keeps the records after the older of the last two
        // snapshots. A publisher behind the store publishes a round of up
        // to 256 records before its next snapshot: two more rounds of
        // `every` writes, each followed by a snapshot (one is due once
        // `every` records follow the last), make the last two snapshots
        // close, and the stream then holds about two intervals (and the
        // primary's few checkpoint records), not 300 records.
        let status = publisher.status();
        for round in 0..2 {
            for id in 1..=every {
                primary.set_stock(ProductId(id), round).await.unwrap();
            }
            let last = primary.last_lsn();
            eventually("a snapshot within an interval of the last record", || {
                status.snapshot_lsn.load(Ordering::SeqCst) + every > last
            })
            .await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (messages, _) = log_messages(&nats.url, "trim").await;
            if messages <= 6 * every {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the stream holds {messages} messages"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A follower started now bootstraps from a snapshot and finds every
        // record after it.
        let (late, late_follower) =
            follower(&dir.path().join("late"), &clock, config.clone()).await;
        same_store(&primary, &late).await;

        // The stopped follower's next record is gone from the stream: it
        // installs the newest snapshot in place of its store, then follows.
        let (stopped, stopped_follower) =
            follower(&dir.path().join("stopped"), &clock, config.clone()).await;
        same_store(&primary, &stopped).await;
        assert!(!stopped_follower.status().stopped.load(Ordering::SeqCst));
        assert!(!running_follower.status().stopped.load(Ordering::SeqCst));
        // Reopened, its store and its own log agree, and it goes on.
        stopped_follower.stop().await;
        stopped.shutdown();
        drop(stopped);
        primary.set_stock(ProductId(5), 55).await.unwrap();
        let (stopped, stopped_follower) =
            follower(&dir.path().join("stopped"), &clock, config).await;
        same_store(&primary, &stopped).await;

        for follower in [running_follower, late_follower, stopped_follower] {
            follower.stop().await;
        }
        publisher.stop().await;
        for engine in [running, late, stopped, primary] {
            engine.shutdown();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replication_in_sync_mode_answers_a_record_in_chunks_once_all_are_acknowledged() {
        let clock = ManualClock::new(START);
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(dir.path(), 65_536);
        let mut config = nats_config(&nats.url, "sync", 1_000_000);
        config.mode = ReplicationMode::Sync;
        let (primary, publisher) =
            primary(&dir.path().join("primary"), &clock, config.clone()).await;
        let mut follower_config = config.clone();
        follower_config.mode = ReplicationMode::Async;
        let (replica, replica_follower) =
            follower(&dir.path().join("replica"), &clock, follower_config).await;
        primary.import_products(catalog(1, 3_000)).await.unwrap();
        // Answered: JetStream holds every chunk of it (the publisher's
        // status is updated after the round, so the stream is asked).
        let (_, chunks) = log_messages(&nats.url, "sync").await;
        let whole = chunks.iter().flatten().any(|chunk| {
            let total = chunk.rsplit('/').next().unwrap();
            let of_it = chunks
                .iter()
                .flatten()
                .filter(|other| other.rsplit('/').next() == Some(total))
                .count();
            total
                .parse::<usize>()
                .is_ok_and(|total| total >= 16 && of_it >= total)
        });
        assert!(whole, "the import is in the stream, in chunks: {chunks:?}");
        primary.set_stock(ProductId(9), 90).await.unwrap();
        same_store(&primary, &replica).await;
        replica_follower.stop().await;
        publisher.stop().await;
        replica.shutdown();
        primary.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replication_after_a_primary_stopped_mid_record_publishes_it_again_whole() {
        let clock = ManualClock::new(START);
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(dir.path(), 65_536);
        let config = nats_config(&nats.url, "torn", 1_000_000);
        let primary_dir = dir.path().join("primary");
        let (primary, publisher) = primary(&primary_dir, &clock, config.clone()).await;
        let (replica, replica_follower) =
            follower(&dir.path().join("replica"), &clock, config.clone()).await;
        primary.import_products(catalog(1, 5)).await.unwrap();
        same_store(&primary, &replica).await;
        publisher.stop().await;

        // The next record is kept here; the stream gets two of its first
        // chunks only, as from a primary that died while publishing it.
        primary.import_products(catalog(6, 3_000)).await.unwrap();
        let torn = primary.last_lsn();
        let epoch = std::fs::read_to_string(primary_dir.join(EPOCH_FILE_NAME)).unwrap();
        let client = async_nats::connect(&nats.url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let mut stream = context.get_stream("MERCATO_TORN_LOG").await.unwrap();
        let mut last = stream.info().await.unwrap().state.last_sequence;
        let part = vec![7_u8; 40_000];
        for index in 1..=2_u64 {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                "Nats-Msg-Id",
                format!("{torn}:{index}/3@{}", last + 1).as_str(),
            );
            headers.insert("Nats-Expected-Last-Sequence", last.to_string().as_str());
            headers.insert("Mercato-Lsn", torn.to_string().as_str());
            headers.insert("Mercato-Epoch", epoch.trim());
            headers.insert("Mercato-Chunk", format!("{index}/3").as_str());
            headers.insert("Mercato-Record-Bytes", "120000");
            headers.insert("Mercato-Record-Crc32", "1");
            let ack = context
                .publish_with_headers("mercato.torn.log", headers, part.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
            last = ack.sequence;
        }
        assert_eq!(
            replica.last_lsn(),
            torn - 1,
            "nothing of an unfinished record is applied"
        );

        // Restarted, the publisher takes the record before the torn one as
        // the stream's last and publishes the torn one again, whole; the
        // follower drops the two chunks it held.
        let publisher = Publisher::start(primary.clone(), config).unwrap();
        same_store(&primary, &replica).await;
        assert!(!replica_follower.status().stopped.load(Ordering::SeqCst));
        assert_eq!(
            replica.product(ProductId(2_999)).unwrap(),
            primary.product(ProductId(2_999)).unwrap()
        );
        replica_follower.stop().await;
        publisher.stop().await;
        replica.shutdown();
        primary.shutdown();
    }
}
