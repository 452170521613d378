//! The real `mercato` binary on a real socket: first start with the sample
//! catalog, a burst of reservations killed with SIGKILL and restarted, and a
//! clean exit on SIGTERM. Servers listen on 127.0.0.1 only and are killed
//! when a test ends, however it ends.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mercato_engine::{Checkout, Engine, EngineConfig, PaymentGateway, SimulatedGateway};
use mercato_server::{AppState, Auth, HttpWebhookSink, Limits, Metrics, WEBHOOK_PATH, router};
use serde_json::{Value, json};

use crate::support::{checkout_config, gateway_config};

pub(crate) const TOKEN: &str = "binary-test-admin-token-42";

/// A running server process, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) stdout: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn start(
    dir: &Path,
    extra: &[&str],
    environment: &[(&str, &str)],
    admin_token: Option<&str>,
) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mercato"));
    command
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env_remove("MERCATO_ADMIN_TOKEN")
        .env_remove("MERCATO_WEBHOOK_SECRET")
        .env_remove("MERCATO_GATEWAY_LATENCY_MS")
        .env_remove("MERCATO_GATEWAY_WEBHOOK_DELAY_MS")
        .env("MERCATO_LOG", "warn")
        .envs(environment.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(token) = admin_token {
        command.env("MERCATO_ADMIN_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    let stdout = Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = stdout.clone();
    let pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        stdout,
    }
}

/// The server's output once it says `needle` (it is read by a thread, so
/// it may lag the server's readiness), for at most 30 s.
pub(crate) async fn output_with(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = server.stdout.lock().unwrap().join("\n");
        if output.contains(needle) || Instant::now() > deadline {
            return output;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON answer to a GET of `url`.
pub(crate) async fn get_json(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

pub(crate) async fn wait_ready(server: &Server, client: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(answer) = client.get(format!("{}/readyz", server.base)).send().await
            && answer.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the server did not become ready; it said: {:?}",
        server.stdout.lock().unwrap()
    );
}

pub(crate) async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let answer = client
        .request(method, url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reservations_survive_sigkill_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // MERCATO_EMPTY=1 (rather than --empty): flags can come from the environment.
    let server = start(dir.path(), &[], &[("MERCATO_EMPTY", "1")], Some(TOKEN));
    wait_ready(&server, &client).await;
    let base = server.base.clone();
    let (status, _) = admin(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/v1/products/1"),
        json!(null),
    )
    .await;
    assert_eq!(status, 404, "the store starts empty");
    let (status, _) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/products"),
        json!({"id": 1, "name": "Crate", "price": "3.00"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/inventory/1"),
        json!({"on_hand": 100_000}),
    )
    .await;
    assert_eq!(status, 200);

    // A burst of reservations; the server is killed while they are in flight.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let burst: Vec<_> = (0..64)
        .map(|worker: u32| {
            let client = client.clone();
            let base = base.clone();
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in 0..1_000_u32 {
                    let order_id = format!("0193a5c4-{worker:04x}-7000-8000-{n:012}");
                    let body =
                        json!({"order_id": order_id, "items": [{"product_id": 1, "quantity": 1}]});
                    let sent = client
                        .post(format!("{base}/api/v1/inventory/reserve"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    match sent {
                        Ok(answer) if answer.status() == 201 => {
                            acknowledged.lock().unwrap().push(order_id)
                        }
                        Ok(_) => {}
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for worker in burst {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "some reservations were acknowledged before the kill"
    );
    drop(server);

    // The killed store passes `mercato check` (which replays its log).
    let checked = Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args(["check", "--data-dir"])
        .arg(dir.path())
        .env("MERCATO_LOG", "error")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(said.contains("every invariant holds"), "{said}");

    let server = start(dir.path(), &["--empty"], &[], Some(TOKEN));
    wait_ready(&server, &client).await;
    for order_id in &acknowledged {
        let answer = client
            .get(format!(
                "{}/api/v1/inventory/reservations/{order_id}",
                server.base
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            200,
            "acknowledged reservation {order_id} was lost"
        );
    }
    let stock: Value = get_json(&client, format!("{}/api/v1/inventory/1", server.base)).await;
    let reserved = stock["reserved"].as_u64().unwrap();
    assert!(
        reserved >= acknowledged.len() as u64,
        "{reserved} < {}",
        acknowledged.len()
    );

    // SIGTERM: stop accepting, finish, commit, exit 0.
    let mut server = server;
    sigterm(&server);
    let exit = exit_status(
        &mut server,
        Duration::from_secs(30),
        "the server did not stop on SIGTERM",
    )
    .await;
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_loads_the_sample_catalog_and_stores_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(dir.path(), &[], &[], None);
    wait_ready(&server, &client).await;
    let token_file = dir.path().join(mercato_server::ADMIN_TOKEN_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let output = output_with(&server, "API reference").await;
    assert!(
        output.contains(&token_file.display().to_string()),
        "the startup output says where the token is: {output}"
    );
    assert!(output.contains("127.0.0.1"), "{output}");
    let secret_file = dir.path().join(mercato_server::WEBHOOK_SECRET_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        output.contains(&format!("webhook secret: in {}", secret_file.display())),
        "the startup output says where the webhook secret is: {output}"
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let page: Value = get_json(
        &client,
        format!("{}/api/v1/products?limit=500", server.base),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 500);
    assert!(page["next_cursor"].is_string());
    let events = client
        .get(format!("{}/api/v1/events?limit=1", server.base))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200, "the stored admin token works");
}

/// Polls an order until it has left `AWAITING_PAYMENT`, for at most 30 s.
pub(crate) async fn settled(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    order_id: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let order: Value = client
            .get(format!("{base}/api/v1/orders/{order_id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if order["status"] != "AWAITING_PAYMENT" {
            return order;
        }
        assert!(Instant::now() < deadline, "still awaiting payment: {order}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_payments_and_receives_its_gateways_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let secret = "whsec_binary_test_0123456789";
    let server = start(
        dir.path(),
        &["--gateway-webhook-delay-ms", "100"],
        &[
            ("MERCATO_EMPTY", "1"),
            ("MERCATO_WEBHOOK_SECRET", secret),
            ("MERCATO_GATEWAY_LATENCY_MS", "5"),
        ],
        Some(TOKEN),
    );
    wait_ready(&server, &client).await;
    let base = server.base.clone();
    let output = output_with(&server, "API reference").await;
    assert!(output.contains("webhook secret: from"), "{output}");
    assert!(
        !dir.path()
            .join(mercato_server::WEBHOOK_SECRET_FILE)
            .exists(),
        "a given secret is not stored"
    );
    let (status, _) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/products"),
        json!({"id": 1, "name": "Cup", "price": "4.00"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/inventory/1"),
        json!({"on_hand": 10}),
    )
    .await;
    assert_eq!(status, 200);
    let mut placed = Vec::new();
    for token in ["tok_visa", "tok_delayed", "tok_chargeDeclined"] {
        let (status, order) = admin(
            &client,
            reqwest::Method::POST,
            format!("{base}/api/v1/orders"),
            json!({"user_id": "ivan", "items": [{"product_id": 1, "quantity": 2}],
                   "payment": {"method": "card", "token": token}}),
        )
        .await;
        assert_eq!(status, 201, "{order}");
        placed.push(order["id"].as_str().unwrap().to_owned());
    }
    let mut statuses = Vec::new();
    for order_id in &placed {
        statuses.push(settled(&client, &base, TOKEN, order_id).await["status"].clone());
    }
    // tok_delayed was settled by the gateway's signed webhook to this server.
    assert_eq!(statuses, ["CONFIRMED", "CONFIRMED", "PAYMENT_FAILED"]);
    let stock: Value = get_json(&client, format!("{base}/api/v1/inventory/1")).await;
    assert_eq!(
        stock,
        json!({"product_id": 1, "on_hand": 6, "reserved": 0, "available": 6})
    );

    // The webhook route checks signatures with the given secret.
    let body = json!({"id": "evt_x", "type": "payment.succeeded",
                      "payment_id": "0193a5c4-0000-7000-8000-0000000000ff"})
    .to_string();
    let now = mercato_engine::Clock::now(&mercato_engine::SystemClock);
    for (signing, expected) in [(secret, 404), ("another-secret-0123456789", 401)] {
        let signature = mercato_engine::WebhookSecret::new(signing).sign(body.as_bytes(), now);
        let answer = client
            .post(format!("{base}/api/v1/payments/webhook"))
            .header("Mercato-Signature", signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_mounts_on_a_real_socket_and_a_delayed_payment_comes_back_by_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let mut config = EngineConfig::new(dir.path());
    config.observer = Some(metrics.clone());
    let engine = Engine::open(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    // The gateway's webhooks are POSTed to the mounted route over the socket,
    // by the same sink `mercato serve` uses.
    let sink = HttpWebhookSink::new(format!("http://{address}/shop{WEBHOOK_PATH}"));
    let gateway: Arc<dyn PaymentGateway> =
        Arc::new(SimulatedGateway::new(gateway_config(), Arc::new(sink)).unwrap());
    let checkout = Checkout::start(engine.clone(), gateway, checkout_config()).unwrap();
    let state = AppState::new(
        engine.clone(),
        Auth::new(TOKEN.into(), b"secret".to_vec()),
        metrics,
        Limits::default(),
        checkout.clone(),
    );
    // Mounted under a prefix in another application, as an embedder would.
    let app = axum::Router::new().nest_service("/shop", router(state));
    let served = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let base = format!("http://{address}/shop");
    let (status, product) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/products"),
        json!({"name": "Bowl", "price": "7.25"}),
    )
    .await;
    assert_eq!(status, 201);
    let read: Value = get_json(&client, format!("{base}/api/v1/products/{}", product["id"])).await;
    assert_eq!(read, product);

    let (status, _) = admin(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/inventory/{}", product["id"]),
        json!({"on_hand": 3}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, order) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/orders"),
        json!({"user_id": "dana", "items": [{"product_id": product["id"], "quantity": 2}],
               "payment": {"method": "card", "token": "tok_delayed"}}),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "AWAITING_PAYMENT");
    assert_eq!(order["total_amount"], "14.50");
    let url = format!("{base}/api/v1/orders/{}", order["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let confirmed = loop {
        let read: Value = client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if read["status"] != "AWAITING_PAYMENT" {
            break read;
        }
        assert!(Instant::now() < deadline, "still awaiting payment: {read}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(confirmed["status"], "CONFIRMED", "{confirmed}");
    let payment: Value = client
        .get(format!(
            "{base}/api/v1/payments/{}",
            confirmed["payment_id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["amount"], "14.50");
    let stock: Value = get_json(
        &client,
        format!("{base}/api/v1/inventory/{}", product["id"]),
    )
    .await;
    assert_eq!(
        stock,
        json!({"product_id": product["id"], "on_hand": 1, "reserved": 0, "available": 1})
    );
    served.abort();
    checkout.stop().await;
    engine.shutdown();
}

/// Runs `mercato reindex --data-dir DIR`; its exit code and standard output.
fn reindex(dir: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args(["reindex", "--data-dir"])
        .arg(dir)
        .env_remove("MERCATO_CURRENCY")
        .env("MERCATO_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_searches_the_sample_catalog_and_reindexes_it_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(reindex(dir.path()).0, Some(2), "no store there");

    let client = reqwest::Client::new();
    let server = start(dir.path(), &[], &[], Some(TOKEN));
    // Ready only once the index is built from the sample catalog.
    wait_ready(&server, &client).await;
    let search = |query: &'static str| {
        let client = client.clone();
        let base = server.base.clone();
        async move {
            let answer = client
                .get(format!("{base}/api/v1/search?{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            answer.json::<Value>().await.unwrap()
        }
    };
    let found = search("q=yoga+mat").await;
    assert!(found["total"].as_u64().unwrap() > 0, "{found}");
    assert!(
        found["hits"][0]["name"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("yoga"),
        "{found}"
    );
    let typo = search("q=cushoined+yoga").await;
    let ids: Vec<u64> = typo["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&1), "one typo in a long word: {typo}");
    assert_eq!(reindex(dir.path()).0, Some(1), "the store is in use");

    let mut server = server;
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.child.wait().unwrap().success());
    let (code, output) = reindex(dir.path());
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("1200 products"), "{output}");

    std::fs::remove_dir_all(dir.path().join(mercato_index::INDEX_DIRECTORY_NAME)).unwrap();
    let server = start(dir.path(), &[], &[], Some(TOKEN));
    wait_ready(&server, &client).await;
    let answer: Value =
        get_json(&client, format!("{}/api/v1/search?q=yoga+mat", server.base)).await;
    assert_eq!(answer["total"], found["total"], "rebuilt at start");
}

/// Runs a tool to its end within `timeout` and returns what it printed
/// (stdout, then stderr); panics with that text when it fails.
pub(crate) async fn run_tool(
    command: &mut tokio::process::Command,
    timeout: Duration,
    what: &str,
) -> String {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|error| {
        panic!("cannot start {what}: {error} (is Node.js 18+ with npm installed?)")
    });
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {timeout:?}"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{text}",
        output.status
    );
    text
}

/// A retention variable of the old spelling (days) is refused, not
/// ignored, and nothing is created.
#[test]
fn an_old_retention_variable_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("MERCATO_EVENT_RETENTION_DAYS", "7")
        .env("MERCATO_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("MERCATO_EVENT_RETENTION_DAYS is no longer read")
            && stderr.contains("MERCATO_EVENT_RETENTION=30days"),
        "{stderr}"
    );
    assert!(!data.exists());
}

/// Sends the server SIGTERM.
pub(crate) fn sigterm(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The server's exit status, once it exits; panics with `failure` when it
/// is still running after `within`.
pub(crate) async fn exit_status(
    server: &mut Server,
    within: Duration,
    failure: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            return exit;
        }
        assert!(Instant::now() < deadline, "{failure}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
