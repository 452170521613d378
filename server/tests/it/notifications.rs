//! Notifications through the real binary: the webhook channel against a
//! local HTTP receiver (signature verified; one that fails 3 times then
//! succeeds, one that always fails), the email channel against a local SMTP
//! listener (recipient, subject and body checked), the API's reads and
//! retry with their permissions, the metrics, and a broken template
//! refused at start. Receivers listen on 127.0.0.1 and stop with the test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use mercato_engine::{Clock, SystemClock, WebhookSecret};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::binary::{TOKEN, admin, output_with, settled, start, wait_ready};

const NOTIFY_SECRET: &str = "notify_secret_for_tests_0123";

/// A webhook receiver: checks each delivery's signature, refuses the
/// first `failures_per_id` deliveries of each notification (all of them
/// while `always_fail`), and keeps the accepted ones.
#[derive(Default)]
struct Receiver {
    failures_per_id: u32,
    always_fail: AtomicBool,
    attempts: Mutex<HashMap<String, u32>>,
    accepted: Mutex<Vec<Value>>,
    bad_signatures: Mutex<u32>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("mercato-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let secret = WebhookSecret::new(NOTIFY_SECRET);
    if secret
        .verify(Some(signature), &body, SystemClock.now())
        .is_err()
    {
        *receiver.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers
        .get("mercato-notification-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let seen = {
        let mut attempts = receiver.attempts.lock().unwrap();
        let seen = attempts.entry(id).or_default();
        *seen += 1;
        *seen
    };
    if receiver.always_fail.load(Ordering::SeqCst) || seen <= receiver.failures_per_id {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let value: Value = serde_json::from_slice(&body).unwrap();
    receiver.accepted.lock().unwrap().push(value);
    StatusCode::NO_CONTENT
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/hook")
}

/// One email as the SMTP listener received it.
#[derive(Clone, Debug)]
struct Mail {
    recipients: Vec<String>,
    data: String,
}

/// A minimal SMTP server: enough of RFC 5321 for one client sending
/// messages in plain text, keeping every message.
async fn start_smtp(mails: Arc<Mutex<Vec<Mail>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let mails = mails.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                write.write_all(b"220 test ESMTP\r\n").await.ok()?;
                let mut recipients = Vec::new();
                loop {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await.ok()? == 0 {
                        return Some(());
                    }
                    let command = line.trim_end().to_ascii_uppercase();
                    let answer: &[u8] = if command.starts_with("EHLO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") {
                        b"250 ok\r\n"
                    } else if command.starts_with("RCPT TO") {
                        let address = line.trim_end()[8..]
                            .trim()
                            .trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_owned();
                        recipients.push(address);
                        b"250 ok\r\n"
                    } else if command == "DATA" {
                        write.write_all(b"354 go on\r\n").await.ok()?;
                        let mut data = String::new();
                        loop {
                            let mut line = String::new();
                            if lines.read_line(&mut line).await.ok()? == 0 {
                                return Some(());
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        mails.lock().unwrap().push(Mail {
                            recipients: std::mem::take(&mut recipients),
                            data,
                        });
                        b"250 queued\r\n"
                    } else if command == "RSET" || command == "NOOP" {
                        b"250 ok\r\n"
                    } else if command == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.ok()?;
                        return Some(());
                    } else {
                        b"502 unknown\r\n"
                    };
                    write.write_all(answer).await.ok()?;
                }
            });
        }
    });
    format!("smtp://{address}")
}

/// A message's text with quoted-printable soft breaks and escapes undone.
fn decoded(data: &str) -> String {
    let joined = data.replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let answer = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Polls the order's notifications until `done` holds, for at most 30 s.
async fn notifications_until(
    client: &reqwest::Client,
    base: &str,
    order_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = get(
            client,
            format!("{base}/api/v1/notifications?order_id={order_id}"),
            TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(Instant::now() < deadline, "notifications stuck: {items:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settled_all(items: &[Value], count: usize) -> bool {
    items.len() == count && items.iter().all(|item| item["status"] != "pending")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_a_webhook_and_an_smtp_server_and_are_read_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let receiver = Arc::new(Receiver {
        failures_per_id: 3,
        ..Receiver::default()
    });
    let hook = start_receiver(receiver.clone()).await;
    let mails = Arc::new(Mutex::new(Vec::new()));
    let smtp = start_smtp(mails.clone()).await;
    let server = start(
        dir.path(),
        &[
            "--notify-channels",
            "store,webhook,email",
            "--notify-webhook-url",
            &hook,
            "--smtp-url",
            &smtp,
            "--smtp-from",
            "Test Shop <shop@example.com>",
            "--shop-name",
            "Test Shop",
            "--notify-backoff-ms",
            "10",
            "--notify-attempts-max",
            "5",
        ],
        &[
            ("MERCATO_EMPTY", "1"),
            ("MERCATO_NOTIFY_WEBHOOK_SECRET", NOTIFY_SECRET),
        ],
        Some(TOKEN),
    );
    wait_ready(&server, &client).await;
    let base = server.base.clone();
    let output = output_with(&server, "API reference").await;
    assert!(
        output.contains("notifications: store, webhook, email"),
        "{output}"
    );

    let (status, _) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/products"),
        json!({"id": 1, "name": "Tea & Cup", "price": "4.00"}),
    )
    .await;
    assert_eq!(status, 201);
    admin(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/v1/inventory/1"),
        json!({"on_hand": 10}),
    )
    .await;
    let (_, order) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/orders"),
        json!({"user_id": "uma", "items": [{"product_id": 1, "quantity": 2}],
               "payment": {"method": "card", "token": "tok_visa"},
               "email": "uma@example.com"}),
    )
    .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(
        settled(&client, &base, TOKEN, &order_id).await["status"],
        "CONFIRMED"
    );

    // A receipt and a confirmation, on each of three channels.
    let items = notifications_until(&client, &base, &order_id, |items| settled_all(items, 6)).await;
    let mut kinds: Vec<(String, String)> = items
        .iter()
        .map(|item| {
            (
                item["kind"].as_str().unwrap().to_owned(),
                item["channel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let mut expected = Vec::new();
    for kind in ["order_confirmation", "payment_receipt"] {
        for channel in ["email", "store", "webhook"] {
            expected.push((kind.to_owned(), channel.to_owned()));
        }
    }
    assert_eq!(kinds, expected);
    for item in &items {
        assert_eq!(item["status"], "sent", "{item}");
        assert_eq!(item["user_id"], "uma");
        assert_eq!(item["order_id"], order_id.as_str());
        assert!(item["sent_at"].is_string());
        let attempts = match item["channel"].as_str().unwrap() {
            "store" => 0,
            "webhook" => 4, // refused 3 times, then taken
            _ => 1,
        };
        assert_eq!(item["attempts"], attempts, "{item}");
    }
    assert_eq!(*receiver.bad_signatures.lock().unwrap(), 0);
    let accepted = receiver.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2);
    assert!(
        accepted
            .iter()
            .all(|body| body["order_id"] == order_id.as_str())
    );

    // The emails: to the order's address, with the rendered subject and body.
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail.recipients, ["uma@example.com"]);
        let text = decoded(&mail.data);
        assert!(
            text.contains("From: \"Test Shop\" <shop@example.com>")
                || text.contains("From: Test Shop <shop@example.com>"),
            "{text}"
        );
        assert!(text.contains("To: uma@example.com"), "{text}");
        assert!(text.contains(&order_id), "{text}");
        assert!(text.contains("text/html"), "{text}");
        assert!(text.contains("2 x Tea & Cup"), "{text}");
        assert!(
            text.contains("Tea &amp; Cup"),
            "the HTML part is escaped: {text}"
        );
    }
    let subjects: Vec<String> = mails
        .iter()
        .map(|mail| {
            decoded(&mail.data)
                .lines()
                .find_map(|line| line.strip_prefix("Subject: ").map(str::to_owned))
                .unwrap()
        })
        .collect();
    assert!(
        subjects.contains(&"Your Test Shop order is confirmed".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"Receipt for your Test Shop order".to_owned()),
        "{subjects:?}"
    );

    // A customer reads only their own.
    let (_, uma) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/tokens"),
        json!({"user_id": "uma"}),
    )
    .await;
    let uma = uma["token"].as_str().unwrap().to_owned();
    let (_, vic) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/auth/tokens"),
        json!({"user_id": "vic"}),
    )
    .await;
    let vic = vic["token"].as_str().unwrap().to_owned();
    let (status, page) = get(&client, format!("{base}/api/v1/notifications"), &uma).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 6);
    let (status, page) = get(&client, format!("{base}/api/v1/notifications"), &vic).await;
    assert_eq!(status, 200);
    assert!(page["items"].as_array().unwrap().is_empty());
    let (status, problem) = get(
        &client,
        format!("{base}/api/v1/notifications?user_id=uma"),
        &vic,
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    let (status, page) = get(
        &client,
        format!("{base}/api/v1/notifications?order_id={order_id}"),
        &vic,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page["items"].as_array().unwrap().is_empty(), "{page}");
    let one = items[0]["id"].as_str().unwrap();
    let (status, _) = get(&client, format!("{base}/api/v1/notifications/{one}"), &vic).await;
    assert_eq!(status, 404);
    let (status, read) = get(&client, format!("{base}/api/v1/notifications/{one}"), &uma).await;
    assert_eq!((status, &read["id"]), (200, &items[0]["id"]));
    let (status, problem) = get(
        &client,
        format!("{base}/api/v1/notifications?limit=-1"),
        TOKEN,
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request"))
    );
    // Paging, newest first.
    let (_, first) = get(
        &client,
        format!("{base}/api/v1/notifications?limit=4"),
        TOKEN,
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(
        &client,
        format!("{base}/api/v1/notifications?limit=4&cursor={cursor}"),
        TOKEN,
    )
    .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert!(second["next_cursor"].is_null());

    // A receiver that always fails: the webhook notification is failed
    // after its 5 attempts; an admin retries it once the receiver is back.
    receiver.always_fail.store(true, Ordering::SeqCst);
    let (_, order) = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/v1/orders"),
        json!({"user_id": "uma", "items": [{"product_id": 1, "quantity": 1}],
               "payment": {"method": "card", "token": "tok_chargeDeclined"}}),
    )
    .await;
    let failed_order = order["id"].as_str().unwrap().to_owned();
    // payment_failed on store, webhook, and email (no address: failed at once).
    let items =
        notifications_until(&client, &base, &failed_order, |items| settled_all(items, 3)).await;
    let by_channel = |channel: &str| {
        items
            .iter()
            .find(|item| item["channel"] == channel)
            .unwrap()
            .clone()
    };
    let hook_item = by_channel("webhook");
    assert_eq!(hook_item["kind"], "payment_failed");
    assert_eq!(hook_item["status"], "failed");
    assert_eq!(hook_item["attempts"], 5);
    assert_eq!(hook_item["attempt_log"].as_array().unwrap().len(), 5);
    assert!(hook_item["last_error"].as_str().unwrap().contains("503"));
    let mail_item = by_channel("email");
    assert_eq!(mail_item["status"], "failed");
    assert_eq!(mail_item["attempts"], 0);
    assert!(mail_item["recipient"].is_null());
    assert!(
        mail_item["last_error"]
            .as_str()
            .unwrap()
            .contains("no recipient")
    );

    let hook_id = hook_item["id"].as_str().unwrap();
    let store_id = by_channel("store")["id"].as_str().unwrap().to_owned();
    let retry = |id: String, token: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let answer = client
                .post(format!("{base}/api/v1/notifications/{id}/retry"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = retry(hook_id.to_owned(), uma.clone()).await;
    assert_eq!(status, 403, "customers may not retry");
    let (status, problem) = retry(store_id, TOKEN.to_owned()).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "invalid_state");
    assert_eq!(problem["state"], "sent");
    let (status, _) = retry(
        "0193a5c4-0000-7000-8000-0000000000ff".to_owned(),
        TOKEN.to_owned(),
    )
    .await;
    assert_eq!(status, 404);
    receiver.always_fail.store(false, Ordering::SeqCst);
    let (status, retried) = retry(hook_id.to_owned(), TOKEN.to_owned()).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "pending");
    let items = notifications_until(&client, &base, &failed_order, |items| {
        items
            .iter()
            .any(|item| item["channel"] == "webhook" && item["status"] == "sent")
    })
    .await;
    let hook_item = items
        .iter()
        .find(|item| item["channel"] == "webhook")
        .unwrap();
    assert_eq!(hook_item["attempts"], 6);

    // The metrics count them by channel.
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "mercato_notifications_created_total{kind=\"order_confirmation\",channel=\"store\"} 1",
        "mercato_notifications_sent_total{channel=\"webhook\"} 3",
        "mercato_notifications_sent_total{channel=\"email\"} 2",
        "mercato_notifications_failed_total{channel=\"webhook\"} 1",
        "mercato_notifications_failed_total{channel=\"email\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains("mercato_notification_delivery_duration_seconds_bucket{"));
}

#[test]
fn a_broken_template_or_missing_channel_setting_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("order_confirmation.txt"),
        "Thanks!\n\n{% for line in order.items %}\n{{ line.name }\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mercato"))
            .args(["serve", "--empty", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("db"))
            .args(args)
            .env("MERCATO_ADMIN_TOKEN", "an-admin-token-for-tests")
            .env("MERCATO_LOG", "error")
            .output()
            .unwrap()
    };
    let templates_arg = templates.to_str().unwrap();
    let output = run(&["--templates", templates_arg]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("order_confirmation.txt"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(
        !dir.path()
            .join("db")
            .join(mercato_engine::DATABASE_FILE_NAME)
            .exists(),
        "nothing was opened"
    );

    let output = run(&["--notify-channels", "store,webhook"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--notify-webhook-url"), "{stderr}");

    let output = run(&["--notify-channels", "store,pigeon"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pigeon"), "{stderr}");
}

/// A follower's notification runner starts at its promotion, after the
/// router shares the state: the routes that wake it (a retry) find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_started_after_the_state_is_shared_is_the_one_the_routes_wake() {
    use mercato_engine::{Notifications, NotificationsConfig};
    let dir = tempfile::tempdir().unwrap();
    let server = crate::support::server(dir.path());
    let shared = server.state.clone();
    assert!(shared.notifications().is_none());
    let runner =
        Notifications::start(server.state.engine.clone(), NotificationsConfig::default()).unwrap();
    assert!(server.state.notifications_slot().set(runner).is_ok());
    assert!(shared.notifications().is_some(), "every clone sees it");
    let retried = server
        .admin(
            "POST",
            "/api/v1/notifications/0193a5c4-0000-7000-8000-000000000000/retry",
            None,
        )
        .await;
    assert_eq!(retried.status, 404, "{}", retried.text);
    shared.notifications().unwrap().stop().await;
}
