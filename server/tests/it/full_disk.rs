//! A full disk over HTTP, through the router in process: the store lives on
//! a small tmpfs and a filler file takes every byte left. Writes answer
//! `503 storage_unavailable` (a problem document with `Retry-After`), reads
//! keep answering 200, `/readyz` says `storage_unavailable`; once the filler
//! is deleted writes succeed again by themselves and `/readyz` is 200. A
//! client that retries every refused request with its `Idempotency-Key`
//! gets each applied exactly once, also after a restart.
//!
//! Mounting a tmpfs needs root (as in CI); without it the test says so on
//! stderr and passes without running.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use mercato_engine::Uuid;
use mercato_server::Limits;
use serde_json::{Value, json};

use crate::support::{
    ADMIN, Answer, TestServer, assert_problem, engine_config, request, server_with,
};

/// The tmpfs's size: room for the store, its log and a filler.
const DISK_MIB: u64 = 24;
/// Small log segments, so that the log is not one big preallocated file.
const LOG_SEGMENT_BYTES: u64 = 1 << 20;
/// Every reservation holds one unit of this product.
const RESERVED_PRODUCT: u64 = 1;
/// Every adjustment adds one unit to this product.
const ADJUSTED_PRODUCT: u64 = 2;
const ON_HAND: u64 = 1_000_000;
/// Keyed reservations use order numbers from here on; plain ones below.
const KEYED_ORDERS: u128 = 1 << 64;
/// The order of the reservation that polls for the engine's recovery.
const RECOVERY_ORDER: u128 = 2 << 64;
/// Requests of each kind sent at once by one wave.
const WAVE_WIDTH: u64 = 8;
/// How long writes on a full disk may keep succeeding (the store may find
/// room in pages it already has for a while) before the test gives up.
const FILL_TIME_MAX: Duration = Duration::from_secs(30);
/// How long the engine may take to take writes again once there is room.
const RECOVERY_TIME_MAX: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// A little longer than the engine waits between attempts to reopen its
/// store after a fault (1 s).
const RETRY_WAIT: Duration = Duration::from_millis(1_500);

/// A tmpfs mounted on a fresh directory under /tmp, unmounted (lazily if it
/// is still busy) and removed on drop, however the test ends.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts one, or tells the person running the tests why this test is
    /// skipped (on stderr itself, which the test harness does not capture).
    fn mount_or_skip(test: &str) -> Option<Tmpfs> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = PathBuf::from(format!(
            "/tmp/mercato-server-full-disk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK_MIB}m"), "tmpfs"])
            .arg(&path)
            .output();
        let why = match mounted {
            Ok(output) if output.status.success() => return Some(Tmpfs { path }),
            Ok(output) => format!(
                "`mount -t tmpfs` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Err(error) => format!("cannot run `mount`: {error}"),
        };
        let _ = std::fs::remove_dir(&path);
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED full_disk::{test}: it needs a tmpfs, which needs root: {why}"
        );
        None
    }

    fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // A file is still open (a failed test left an engine behind):
            // detach the mount now; the kernel frees it once it is unused.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A file that takes whatever room is left on the disk.
struct Filler {
    path: PathBuf,
    file: File,
}

impl Filler {
    fn create(disk: &Tmpfs) -> Filler {
        let path = disk.path.join("filler");
        let file = File::create(&path).expect("the filler is created");
        Filler { path, file }
    }

    /// Writes until the file system answers ENOSPC.
    fn top_up(&mut self) {
        let chunk = vec![0xA5; 64 << 10];
        loop {
            match self.file.write(&chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => return,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
    }

    /// Gives all its room back.
    fn remove(self) {
        drop(self.file);
        std::fs::remove_file(&self.path).expect("the filler is removed");
    }
}

fn open_server(dir: &Path) -> Arc<TestServer> {
    let mut config = engine_config(dir, None);
    config.log_segment_bytes = LOG_SEGMENT_BYTES;
    Arc::new(server_with(config, Limits::default()))
}

fn order_id(number: u128) -> String {
    Uuid::from_u128(number).to_string()
}

/// One request the test sent.
#[derive(Clone, Debug)]
enum Sent {
    /// `POST /inventory/reserve` of one unit of `RESERVED_PRODUCT`, with an
    /// `Idempotency-Key` when there is one.
    Reserve { order: u128, key: Option<String> },
    /// `POST /inventory/{ADJUSTED_PRODUCT}/adjust` by one, with a key.
    Adjust { key: String },
}

impl Sent {
    fn request(&self) -> axum::http::Request<axum::body::Body> {
        let (uri, body, key) = match self {
            Sent::Reserve { order, key } => (
                "/api/v1/inventory/reserve".to_owned(),
                json!({"order_id": order_id(*order), "items": [{"product_id": RESERVED_PRODUCT, "quantity": 1}]}),
                key.as_deref(),
            ),
            Sent::Adjust { key } => (
                format!("/api/v1/inventory/{ADJUSTED_PRODUCT}/adjust"),
                json!({"delta": 1}),
                Some(key.as_str()),
            ),
        };
        let headers: Vec<(&str, &str)> = key
            .map(|key| ("idempotency-key", key))
            .into_iter()
            .collect();
        request("POST", &uri, Some(ADMIN), Some(body), &headers)
    }

    /// The status of a first success: 201 for a new reservation, 200 for
    /// an adjustment.
    fn created(&self) -> StatusCode {
        match self {
            Sent::Reserve { .. } => StatusCode::CREATED,
            Sent::Adjust { .. } => StatusCode::OK,
        }
    }
}

/// What the test knows of the requests it sent.
#[derive(Default)]
struct Model {
    /// Answered with success: each must be applied exactly once.
    acknowledged: Vec<Sent>,
    /// Answered 503 `storage_unavailable`: applied whole or not at all.
    in_doubt: Vec<Sent>,
}

/// Checks a refusal for want of room: 503, the stable code, a problem
/// document, `Retry-After`.
fn assert_storage_unavailable(answer: &Answer, what: &str) {
    assert_problem(answer, 503, "storage_unavailable");
    assert!(
        answer.headers.contains_key(header::RETRY_AFTER),
        "{what}: a 503 says when to retry: {:?}",
        answer.headers
    );
}

impl Model {
    /// Files `sent` by its answer; true when it was refused for want of room.
    fn answer(&mut self, sent: Sent, answer: &Answer) -> bool {
        if answer.status == sent.created() {
            self.acknowledged.push(sent);
            return false;
        }
        assert_eq!(
            answer.status.as_u16(),
            503,
            "{sent:?}: a full disk answers 503 storage_unavailable, not {}",
            answer.text
        );
        assert_storage_unavailable(answer, &format!("{sent:?}"));
        self.in_doubt.push(sent);
        true
    }
}

/// Sends [`WAVE_WIDTH`] plain reservations, as many keyed reservations and
/// as many keyed adjustments at once, then files their answers. True when
/// any was refused for want of room.
async fn wave(server: &Arc<TestServer>, wave: u64, model: &mut Model) -> bool {
    let mut tasks = Vec::new();
    for number in wave * WAVE_WIDTH..(wave + 1) * WAVE_WIDTH {
        for sent in [
            Sent::Reserve {
                order: u128::from(number),
                key: None,
            },
            Sent::Reserve {
                order: KEYED_ORDERS + u128::from(number),
                key: Some(format!("reserve-{number}")),
            },
            Sent::Adjust {
                key: format!("adjust-{number}"),
            },
        ] {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let answer = server.send(sent.request()).await;
                (sent, answer)
            }));
        }
    }
    let mut refused = false;
    for task in tasks {
        let (sent, answer) = task.await.unwrap();
        refused |= model.answer(sent, &answer);
    }
    refused
}

async fn stock(server: &TestServer, product_id: u64) -> Value {
    let stock = server
        .call(
            "GET",
            &format!("/api/v1/inventory/{product_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(stock.status, 200, "stock of {product_id}: {}", stock.text);
    stock.body
}

/// Whether the reservation of order `number` is there (GET answers 200 or 404).
async fn reservation_there(server: &TestServer, number: u128) -> bool {
    let uri = format!("/api/v1/inventory/reservations/{}", order_id(number));
    let answer = server.admin("GET", &uri, None).await;
    match answer.status.as_u16() {
        200 => {
            assert_eq!(answer.body["status"], "active", "{}", answer.text);
            true
        }
        404 => false,
        _ => panic!("GET {uri}: {}", answer.text),
    }
}

/// Reads during the fault answer 200 and show every acknowledged write;
/// `/readyz` is 503 `storage_unavailable` while `/healthz` stays 200.
async fn check_reads_during_fault(server: &TestServer, model: &Model) {
    let ready = server.call("GET", "/readyz", None, None).await;
    assert_storage_unavailable(&ready, "/readyz");
    let health = server.call("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.text);
    for product_id in [RESERVED_PRODUCT, ADJUSTED_PRODUCT] {
        let product = server
            .call("GET", &format!("/api/v1/products/{product_id}"), None, None)
            .await;
        assert_eq!(product.status, 200, "{}", product.text);
    }
    let mut reservations = 0;
    let mut adjustments = 0;
    for sent in &model.acknowledged {
        match sent {
            Sent::Reserve { order, .. } => {
                assert!(
                    reservation_there(server, *order).await,
                    "acknowledged {sent:?} reads during the fault"
                );
                reservations += 1;
            }
            Sent::Adjust { .. } => adjustments += 1,
        }
    }
    let mut adjustments_in_doubt = 0;
    for sent in &model.in_doubt {
        match sent {
            Sent::Reserve { order, .. } => {
                reservations += u64::from(reservation_there(server, *order).await);
            }
            Sent::Adjust { .. } => adjustments_in_doubt += 1,
        }
    }
    let reserved = stock(server, RESERVED_PRODUCT).await;
    assert_eq!(
        reserved["reserved"], reservations,
        "reserved during the fault: the acknowledged reservations and those in doubt shown"
    );
    let adjusted = stock(server, ADJUSTED_PRODUCT).await;
    let on_hand = adjusted["on_hand"].as_u64().unwrap();
    assert!(
        (ON_HAND + adjustments..=ON_HAND + adjustments + adjustments_in_doubt).contains(&on_hand),
        "on_hand during the fault: {on_hand}, {adjustments} adjustments acknowledged, \
         {adjustments_in_doubt} in doubt"
    );
}

/// Retries every refused request as a client would, with its key: a keyed
/// request is replayed (`Idempotent-Replayed`) exactly when its write was
/// there after all, and applied afresh otherwise; a plain reservation
/// answers 200 (a repeat) or 201. A second retry of a keyed request replays
/// the first retry's answer. Answers how many were there after all.
async fn settle_in_doubt(server: &TestServer, model: &mut Model) -> usize {
    let mut there = 0;
    for sent in std::mem::take(&mut model.in_doubt) {
        let present = match &sent {
            Sent::Reserve { order, .. } => Some(reservation_there(server, *order).await),
            Sent::Adjust { .. } => None,
        };
        let retried = server.send(sent.request()).await;
        let replayed = retried.headers.contains_key("idempotent-replayed");
        let was_there = match &sent {
            Sent::Reserve { key: None, .. } => {
                let was_there = present.expect("a reservation");
                let status = if was_there { 200 } else { 201 };
                assert_eq!(retried.status, status, "{sent:?} retried: {}", retried.text);
                was_there
            }
            Sent::Reserve { key: Some(_), .. } | Sent::Adjust { .. } => {
                assert_eq!(
                    retried.status,
                    sent.created(),
                    "{sent:?} retried: {}",
                    retried.text
                );
                if let Some(present) = present {
                    assert_eq!(
                        replayed, present,
                        "{sent:?}: replayed exactly when the write was there (a write and its \
                         answer are there together or not at all)"
                    );
                }
                let again = server.send(sent.request()).await;
                assert_eq!(
                    (again.status, &again.body),
                    (retried.status, &retried.body),
                    "{sent:?} retried twice"
                );
                assert_eq!(again.headers["idempotent-replayed"], "true");
                replayed
            }
        };
        there += usize::from(was_there);
        model.acknowledged.push(sent);
    }
    there
}

/// Every acknowledged request was applied exactly once.
async fn check_exactly_once(server: &TestServer, model: &Model) {
    assert!(model.in_doubt.is_empty(), "settled first");
    let mut reservations = 0;
    let mut adjustments = 0;
    for sent in &model.acknowledged {
        match sent {
            Sent::Reserve { order, .. } => {
                assert!(
                    reservation_there(server, *order).await,
                    "acknowledged {sent:?} is lost"
                );
                reservations += 1;
            }
            Sent::Adjust { .. } => adjustments += 1,
        }
    }
    assert_eq!(
        stock(server, RESERVED_PRODUCT).await,
        json!({"product_id": RESERVED_PRODUCT, "on_hand": ON_HAND, "reserved": reservations, "available": ON_HAND - reservations}),
        "every reservation is held exactly once"
    );
    let adjusted = ON_HAND + adjustments;
    assert_eq!(
        stock(server, ADJUSTED_PRODUCT).await,
        json!({"product_id": ADJUSTED_PRODUCT, "on_hand": adjusted, "reserved": 0, "available": adjusted}),
        "every adjustment is applied exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_storage_unavailable_keeps_reads_and_recovers_by_itself() {
    let Some(disk) = Tmpfs::mount_or_skip(
        "a_full_disk_answers_503_storage_unavailable_keeps_reads_and_recovers_by_itself",
    ) else {
        return;
    };
    let dir = disk.data_dir();
    let server = open_server(&dir);
    for product_id in [RESERVED_PRODUCT, ADJUSTED_PRODUCT] {
        let created = server
            .admin(
                "POST",
                "/api/v1/products",
                Some(json!({"id": product_id, "name": format!("Thing {product_id}"), "price": "2.50"})),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let stocked = server
            .admin(
                "PUT",
                &format!("/api/v1/inventory/{product_id}"),
                Some(json!({"on_hand": ON_HAND})),
            )
            .await;
        assert_eq!(stocked.status, 200, "{}", stocked.text);
    }
    let mut model = Model::default();
    let mut number = 0;
    while number < 10 {
        number += 1;
        assert!(
            !wave(&server, number, &mut model).await,
            "the disk has room"
        );
    }
    assert_eq!(server.call("GET", "/readyz", None, None).await.status, 200);

    let mut filler = Filler::create(&disk);
    let started = Instant::now();
    loop {
        filler.top_up();
        number += 1;
        if wave(&server, number, &mut model).await {
            break;
        }
        assert!(
            started.elapsed() < FILL_TIME_MAX,
            "writes kept succeeding on a full disk for {FILL_TIME_MAX:?}"
        );
    }
    check_reads_during_fault(&server, &model).await;
    // A keyed request acknowledged before the fault, sent again: its
    // stored answer is replayed, or (the engine cannot confirm it durable
    // while the store is unavailable) it is refused for now.
    let first_keyed = model.acknowledged[1].clone();
    assert!(matches!(first_keyed, Sent::Reserve { key: Some(_), .. }));
    let again = server.send(first_keyed.request()).await;
    if again.status == StatusCode::CREATED {
        assert_eq!(again.headers["idempotent-replayed"], "true");
    } else {
        assert_storage_unavailable(&again, "a replay during the fault");
    }
    // Still full, past the engine's next attempt to reopen its store.
    tokio::time::sleep(RETRY_WAIT).await;
    filler.top_up();
    number += 1;
    assert!(
        wave(&server, number, &mut model).await,
        "refused while full"
    );
    check_reads_during_fault(&server, &model).await;

    filler.remove();
    let started = Instant::now();
    let recovery = Sent::Reserve {
        order: RECOVERY_ORDER,
        key: None,
    };
    loop {
        let answer = server.send(recovery.request()).await;
        if answer.status == StatusCode::CREATED {
            break;
        }
        assert_storage_unavailable(&answer, "a write while the engine recovers");
        assert!(
            started.elapsed() < RECOVERY_TIME_MAX,
            "the disk has room again, but writes were still refused after {RECOVERY_TIME_MAX:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let took = started.elapsed();
    model.acknowledged.push(recovery);
    let ready = server.call("GET", "/readyz", None, None).await;
    assert_eq!(
        ready.status, 200,
        "ready once writes succeed: {}",
        ready.text
    );
    let (acknowledged, in_doubt) = (model.acknowledged.len(), model.in_doubt.len());
    let there = settle_in_doubt(&server, &mut model).await;
    let _ = writeln!(
        std::io::stderr(),
        "full_disk (server): {acknowledged} requests acknowledged, {in_doubt} refused ({there} \
         of them there after all); writes resumed {took:?} after the disk had room"
    );
    check_exactly_once(&server, &model).await;
    number += 1;
    assert!(!wave(&server, number, &mut model).await);
    check_exactly_once(&server, &model).await;
    server.state.engine.shutdown();
    drop(server);

    // A restart keeps everything, and the stored answers with it.
    let server = open_server(&dir);
    check_exactly_once(&server, &model).await;
    let first_keyed = Sent::Reserve {
        order: KEYED_ORDERS + u128::from(WAVE_WIDTH),
        key: Some(format!("reserve-{WAVE_WIDTH}")),
    };
    let replayed = server.send(first_keyed.request()).await;
    assert_eq!(replayed.status, 201, "{}", replayed.text);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    check_exactly_once(&server, &model).await;
    server.state.engine.shutdown();
}
