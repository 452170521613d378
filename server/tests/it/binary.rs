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

use mercato_engine::{Engine, EngineConfig};
use mercato_server::{AppState, Auth, Limits, Metrics, router};
use serde_json::{Value, json};

const TOKEN: &str = "binary-test-admin-token-42";

/// A running server process, killed on drop.
struct Server {
    child: Child,
    base: String,
    stdout: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(
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

async fn wait_ready(server: &Server, client: &reqwest::Client) {
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

async fn admin(
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
    let stock: Value = client
        .get(format!("{}/api/v1/inventory/1", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reserved = stock["reserved"].as_u64().unwrap();
    assert!(
        reserved >= acknowledged.len() as u64,
        "{reserved} < {}",
        acknowledged.len()
    );

    // SIGTERM: stop accepting, finish, commit, exit 0.
    let mut server = server;
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
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
    let output = server.stdout.lock().unwrap().join("\n");
    assert!(
        output.contains(&token_file.display().to_string()),
        "the startup output says where the token is: {output}"
    );
    assert!(output.contains("127.0.0.1"), "{output}");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let page: Value = client
        .get(format!("{}/api/v1/products?limit=500", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_mounts_on_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let mut config = EngineConfig::new(dir.path());
    config.observer = Some(metrics.clone());
    let engine = Engine::open(config).unwrap();
    let state = AppState::new(
        engine.clone(),
        Auth::new(TOKEN.into(), b"secret".to_vec()),
        metrics,
        Limits::default(),
    );
    // Mounted under a prefix in another application, as an embedder would.
    let app = axum::Router::new().nest_service("/shop", router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
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
    let read: Value = client
        .get(format!("{base}/api/v1/products/{}", product["id"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, product);
    served.abort();
    engine.shutdown();
}
