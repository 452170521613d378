//! Replication through NATS JetStream with real processes: `nats-server`
//! (Debian's package; `.ci/run` installs it) on free loopback ports with
//! its own store directory, and the real `mercato` binary as primary and
//! followers. Every process is killed when its guard drops.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::binary::{Server, TOKEN, admin, free_port, get_json, start, wait_ready};

/// A `nats-server` with JetStream, killed on drop.
pub(crate) struct NatsServer {
    child: Child,
    pub(crate) url: String,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NatsServer {
    /// One server on a free port, its JetStream store in `dir`.
    pub(crate) fn start(dir: &Path) -> NatsServer {
        let port = free_port();
        NatsServer::spawn(dir, port, &[])
    }

    fn spawn(dir: &Path, port: u16, extra: &[String]) -> NatsServer {
        let mut command = Command::new("nats-server");
        command
            .args(["-js", "-sd"])
            .arg(dir)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start nats-server ({error}); install it: apt-get install -y nats-server")
        });
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// A three-node JetStream cluster on loopback.
    pub(crate) fn cluster(dir: &Path) -> Vec<NatsServer> {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all_routes = routes
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        (0..3)
            .map(|node| {
                let store = dir.join(format!("node{node}"));
                std::fs::create_dir_all(&store).unwrap();
                NatsServer::spawn(
                    &store,
                    ports[node],
                    &[
                        "--name".to_owned(),
                        format!("n{node}"),
                        "--cluster_name".to_owned(),
                        "mercato".to_owned(),
                        "--cluster".to_owned(),
                        format!("nats://127.0.0.1:{}", routes[node]),
                        "--routes".to_owned(),
                        all_routes.clone(),
                    ],
                )
            })
            .collect()
    }
}

/// The server's replication report.
async fn replication(client: &reqwest::Client, server: &Server) -> Value {
    get_json(client, format!("{}/api/v1/replication", server.base)).await
}

/// Waits (at most 60 s) until `follower` has applied everything `primary`
/// holds now.
async fn caught_up(client: &reqwest::Client, primary: &Server, follower: &Server) -> u64 {
    let target = replication(client, primary).await["lsn"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = replication(client, follower).await;
        if report["lsn"].as_u64().unwrap() >= target {
            return target;
        }
        assert!(
            Instant::now() < deadline,
            "the follower did not catch up with {target}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reservations, stock changes and a product change on `base`; answers the
/// order ids acknowledged.
async fn burst(client: &reqwest::Client, base: &str, round: u32) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for id in 1..=8 {
        let (status, _) = admin(
            client,
            reqwest::Method::PUT,
            format!("{base}/api/v1/inventory/{id}"),
            json!({"on_hand": 500 + round}),
        )
        .await;
        assert_eq!(status, 200);
    }
    for n in 0..40_u32 {
        let order_id = format!("0193a5c4-{round:04x}-7000-8000-{n:012}");
        let (status, _) = admin(
            client,
            reqwest::Method::POST,
            format!("{base}/api/v1/inventory/reserve"),
            json!({"order_id": order_id, "items": [{"product_id": 1 + n % 7, "quantity": 1}]}),
        )
        .await;
        assert_eq!(status, 201, "reserving for {order_id}");
        acknowledged.push(order_id.clone());
        if n % 4 == 0 {
            let (status, _) = admin(
                client,
                reqwest::Method::POST,
                format!("{base}/api/v1/inventory/commit"),
                json!({"order_id": order_id}),
            )
            .await;
            assert_eq!(status, 200);
        }
    }
    let (status, _) = admin(
        client,
        reqwest::Method::PATCH,
        format!("{base}/api/v1/products/3"),
        json!({"name": format!("Zanzibar Replicated Lantern {round}")}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin(
        client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/inventory/9"),
        json!({"on_hand": 0}),
    )
    .await;
    assert_eq!(status, 200);
    acknowledged
}

/// What a client sees of the store, to compare two servers.
async fn observed(
    client: &reqwest::Client,
    base: &str,
    orders: &[String],
) -> BTreeMap<String, Value> {
    let mut seen = BTreeMap::new();
    for id in 1..=12 {
        seen.insert(
            format!("product {id}"),
            get_json(client, format!("{base}/api/v1/products/{id}")).await,
        );
        seen.insert(
            format!("stock {id}"),
            get_json(client, format!("{base}/api/v1/inventory/{id}")).await,
        );
    }
    for order_id in orders {
        let (_, reservation) = admin(
            client,
            reqwest::Method::GET,
            format!("{base}/api/v1/inventory/reservations/{order_id}"),
            json!(null),
        )
        .await;
        seen.insert(format!("reservation {order_id}"), reservation);
    }
    let (_, events) = admin(
        client,
        reqwest::Method::GET,
        format!("{base}/api/v1/events?after=1190&limit=500"),
        json!(null),
    )
    .await;
    seen.insert("events".to_owned(), events);
    seen
}

/// A search's hits (ids) and total, waiting (at most 30 s) for `expect` to
/// be among them: the index follows the log within a second.
async fn search_ids(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    expect: u64,
) -> (Vec<u64>, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = get_json(client, format!("{base}/api/v1/search?q={query}&limit=10")).await;
        let ids: Vec<u64> = found["hits"]
            .as_array()
            .map(|hits| hits.iter().filter_map(|hit| hit["id"].as_u64()).collect())
            .unwrap_or_default();
        if ids.contains(&expect) || Instant::now() > deadline {
            return (ids, found["total"].as_u64().unwrap_or(0));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn nats_args<'a>(nats: &'a str, store: &'a str) -> Vec<&'a str> {
    vec!["--nats", nats, "--store-name", store]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_serves_what_the_primary_holds_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats"));
    let client = reqwest::Client::new();
    let primary = start(
        &dir.path().join("primary"),
        &nats_args(&nats.url, "shop"),
        &[],
        Some(TOKEN),
    );
    wait_ready(&primary, &client).await;
    let follower = start(
        &dir.path().join("follower"),
        &["--follow", &nats.url, "--store-name", "shop"],
        &[],
        Some(TOKEN),
    );
    wait_ready(&follower, &client).await;

    let orders = burst(&client, &primary.base, 1).await;
    caught_up(&client, &primary, &follower).await;
    assert_eq!(
        observed(&client, &follower.base, &orders).await,
        observed(&client, &primary.base, &orders).await,
        "the follower answers as the primary does"
    );
    let on_primary = search_ids(&client, &primary.base, "zanzibar", 3).await;
    let on_follower = search_ids(&client, &follower.base, "zanzibar", 3).await;
    assert!(on_primary.0.contains(&3));
    assert_eq!(on_follower, on_primary, "search answers the same");

    // Writes on the follower: 421 not_primary, naming the primary; nothing changes.
    let (status, problem) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{}/api/v1/inventory/1", follower.base),
        json!({"on_hand": 1}),
    )
    .await;
    assert_eq!(status, 421, "{problem}");
    assert_eq!(problem["code"], "not_primary");
    assert_eq!(problem["primary"], json!(primary.base));
    let stock = get_json(&client, format!("{}/api/v1/inventory/1", follower.base)).await;
    assert_ne!(stock["on_hand"], 1);

    // Read your writes: the primary's answer names its position; a read on
    // the follower with min_seq answers at that position or later.
    let answer = client
        .put(format!("{}/api/v1/inventory/2", primary.base))
        .bearer_auth(TOKEN)
        .json(&json!({"on_hand": 4321}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let seq: u64 = answer.headers()["mercato-seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let stock = get_json(
        &client,
        format!("{}/api/v1/inventory/2?min_seq={seq}", follower.base),
    )
    .await;
    assert_eq!(stock["on_hand"], 4321);
    let behind = client
        .get(format!("{}/api/v1/inventory/2", follower.base))
        .header("mercato-min-seq", (seq + 1_000_000).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(behind.status(), 503);
    let problem: Value = behind.json().await.unwrap();
    assert_eq!(problem["code"], "replica_behind");

    // Lag is reported.
    let report = replication(&client, &follower).await;
    assert_eq!(report["role"], "follower");
    assert_eq!(report["lag_records"], 0);
    let metrics = client
        .get(format!("{}/metrics", follower.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("mercato_replication_lag_records"));
    assert!(metrics.contains("mercato_replication_lag_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_follower_bootstraps_from_the_snapshot_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats"));
    let client = reqwest::Client::new();
    let mut args = nats_args(&nats.url, "late");
    args.extend(["--snapshot-every-records", "10"]);
    let primary = start(&dir.path().join("primary"), &args, &[], Some(TOKEN));
    wait_ready(&primary, &client).await;
    let mut orders = burst(&client, &primary.base, 1).await;
    orders.extend(burst(&client, &primary.base, 2).await);
    // A snapshot after the writes exists before the follower starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while replication(&client, &primary).await["snapshot_lsn"]
        .as_u64()
        .unwrap()
        < 20
    {
        assert!(Instant::now() < deadline, "no snapshot was taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let follower = start(
        &dir.path().join("follower"),
        &["--follow", &nats.url, "--store-name", "late"],
        &[],
        Some(TOKEN),
    );
    wait_ready(&follower, &client).await;
    orders.extend(burst(&client, &primary.base, 3).await);
    caught_up(&client, &primary, &follower).await;
    assert_eq!(
        observed(&client, &follower.base, &orders).await,
        observed(&client, &primary.base, &orders).await,
    );
    assert_eq!(
        search_ids(&client, &follower.base, "zanzibar", 3).await,
        search_ids(&client, &primary.base, "zanzibar", 3).await,
    );
}

/// Every message of the events stream: (msg id, subject, seq in the body).
async fn published_events(url: &str, store: &str) -> Vec<(String, String, u64)> {
    let client = async_nats::connect(url).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let mut stream = context
        .get_stream(format!("MERCATO_{}_EVENTS", store.to_ascii_uppercase()))
        .await
        .unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < last as usize {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream's messages arrive")
            .unwrap()
            .unwrap();
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&message.payload).unwrap();
        seen.push((
            id,
            message.subject.to_string(),
            body["seq"].as_u64().unwrap(),
        ));
        message.ack().await.unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_consumers_get_every_event_once_across_a_primary_restart() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&dir.path().join("nats"));
    let client = reqwest::Client::new();
    let data = dir.path().join("primary");
    let args = nats_args(&nats.url, "events");
    let primary = start(&data, &args, &[("MERCATO_EMPTY", "1")], Some(TOKEN));
    wait_ready(&primary, &client).await;
    for id in 1..=9 {
        let (status, _) = admin(
            &client,
            reqwest::Method::POST,
            format!("{}/api/v1/products", primary.base),
            json!({"id": id, "name": format!("Item {id}"), "price": "2.00"}),
        )
        .await;
        assert_eq!(status, 201);
    }
    burst(&client, &primary.base, 1).await;
    let mut primary = primary;
    primary.child.kill().unwrap(); // SIGKILL, events perhaps half published
    primary.child.wait().unwrap();
    drop(primary);
    let primary = start(&data, &args, &[], Some(TOKEN));
    wait_ready(&primary, &client).await;
    burst(&client, &primary.base, 2).await;
    let (_, head) = admin(
        &client,
        reqwest::Method::GET,
        format!("{}/api/v1/events?after=0&limit=1", primary.base),
        json!(null),
    )
    .await;
    assert_eq!(head["items"][0]["seq"], 1);
    // Every event up to the log's head is published, each once.
    let last = loop_until_published(&client, &primary, &nats.url).await;
    let published = published_events(&nats.url, "events").await;
    let mut seqs: Vec<u64> = published.iter().map(|(_, _, seq)| *seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "every event exactly once"
    );
    for (id, subject, seq) in &published {
        assert_eq!(*id, format!("events:{seq}"));
        assert!(subject.starts_with("mercato.events.events."), "{subject}");
    }
    assert!(
        published
            .iter()
            .any(|(_, subject, _)| subject == "mercato.events.events.inventory.reserved")
    );
}

/// Waits until the events stream holds as many messages as the log has
/// events; answers that number.
async fn loop_until_published(client: &reqwest::Client, primary: &Server, url: &str) -> u64 {
    let nats = async_nats::connect(url).await.unwrap();
    let context = async_nats::jetstream::new(nats);
    let mut stream = context.get_stream("MERCATO_EVENTS_EVENTS").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut last = 0;
        let mut after = 0;
        loop {
            let (_, page) = admin(
                client,
                reqwest::Method::GET,
                format!("{}/api/v1/events?after={after}&limit=500", primary.base),
                json!(null),
            )
            .await;
            let items = page["items"].as_array().unwrap();
            if let Some(item) = items.last() {
                last = item["seq"].as_u64().unwrap();
                after = last;
            }
            if page["next_cursor"].is_null() {
                break;
            }
        }
        let messages = stream.info().await.unwrap().state.messages;
        if messages >= last {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "{messages} of {last} events published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
/// Reservations from 16 clients until `stop`; answers the acknowledged
/// order ids. Clients keep going through errors (a dead server, a refusal).
fn load(
    client: &reqwest::Client,
    base: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..16_u32)
        .map(|worker| {
            let client = client.clone();
            let base = base.to_owned();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for n in 0..20_000_u32 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let order_id = format!("0193a5c4-{worker:04x}-7000-9000-{n:012}");
                    let body = json!({"order_id": order_id, "items": [{"product_id": 1 + n % 8, "quantity": 1}]});
                    let sent = client
                        .post(format!("{base}/api/v1/inventory/reserve"))
                        .bearer_auth(TOKEN)
                        .timeout(Duration::from_secs(20))
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(answer) if answer.status() == 201 => acknowledged.push(order_id),
                        Ok(answer) => panic!("a reservation was refused: {}", answer.status()),
                        Err(_) => break, // the server is gone
                    }
                }
                acknowledged
            })
        })
        .collect()
}

fn promote(base: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args(["promote", "--url", base, "--admin-token", TOKEN])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_failover_on_a_cluster_loses_no_acknowledged_write_and_fences_the_old_primary() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = NatsServer::cluster(&dir.path().join("nats"));
    let urls = cluster
        .iter()
        .map(|node| node.url.clone())
        .collect::<Vec<_>>()
        .join(",");
    let client = reqwest::Client::new();
    let primary_dir = dir.path().join("primary");
    let primary_args = [
        "--nats",
        &urls,
        "--store-name",
        "ha",
        "--nats-replicas",
        "3",
        "--replication",
        "sync",
    ];
    // The cluster elects its meta leader within seconds; the primary waits
    // for JetStream before it takes writes.
    let primary = start(&primary_dir, &primary_args, &[], Some(TOKEN));
    wait_ready(&primary, &client).await;
    let follower_args = [
        "--follow",
        &urls,
        "--store-name",
        "ha",
        "--nats-replicas",
        "3",
        "--replication",
        "sync",
    ];
    let follower = start(
        &dir.path().join("follower"),
        &follower_args,
        &[],
        Some(TOKEN),
    );
    wait_ready(&follower, &client).await;
    for id in 1..=8 {
        let (status, _) = admin(
            &client,
            reqwest::Method::PUT,
            format!("{}/api/v1/inventory/{id}", primary.base),
            json!({"on_hand": 1_000_000}),
        )
        .await;
        assert_eq!(status, 200);
    }

    // Under load, one NATS node dies: clients see nothing of it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = load(&client, &primary.base, stop.clone());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(cluster.remove(2));
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    // Then the primary's machine dies under load.
    let mut primary = primary;
    primary.child.kill().unwrap(); // SIGKILL
    primary.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "the load ran: {}",
        acknowledged.len()
    );

    let output = promote(&follower.base);
    assert!(
        output.status.success(),
        "{output:?}; the follower said {:?}",
        follower.stdout.lock().unwrap()
    );
    let report = replication(&client, &follower).await;
    assert_eq!(report["role"], "primary", "{report}");
    // Every acknowledged write is on the new primary.
    for order_id in &acknowledged {
        let (status, reservation) = admin(
            &client,
            reqwest::Method::GET,
            format!("{}/api/v1/inventory/reservations/{order_id}", follower.base),
            json!(null),
        )
        .await;
        assert_eq!(
            status, 200,
            "acknowledged {order_id} is lost: {reservation}"
        );
    }
    let (status, _) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{}/api/v1/inventory/1", follower.base),
        json!({"on_hand": 3_000_000}),
    )
    .await;
    assert_eq!(status, 200, "the new primary takes writes");

    // The old primary comes back: it finds itself fenced and refuses writes.
    drop(primary);
    let old = start(&primary_dir, &primary_args, &[], Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = client
            .get(format!("{}/api/v1/replication", old.base))
            .send()
            .await
            && let Ok(report) = answer.json::<Value>().await
            && report["role"] == "fenced"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old primary did not find itself fenced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, problem) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{}/api/v1/inventory/1", old.base),
        json!({"on_hand": 4_000_000}),
    )
    .await;
    assert_eq!(status, 421, "{problem}");
    assert_eq!(problem["code"], "not_primary");
    let stock = get_json(&client, format!("{}/api/v1/inventory/1", follower.base)).await;
    assert_eq!(
        stock["on_hand"], 3_000_000,
        "the deposed primary changed nothing"
    );
}
