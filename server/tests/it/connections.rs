//! The real binary against clients that hold connections: one that sends
//! nothing, one that sends half its headers, one that sends its body too
//! slowly, an idle keep-alive, more clients than the connection cap, and a
//! shutdown with a request still half sent. Every wait is for an outcome
//! under a generous deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::binary::{TOKEN, start, wait_ready};

fn connect(base: &str) -> TcpStream {
    let address = base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent.
fn read_to_close(stream: &mut TcpStream, case: &str) -> String {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) => panic!(
            "{case}: the server kept the connection open ({error}) after sending {:?}",
            String::from_utf8_lossy(&answer)
        ),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_idle_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(
        dir.path(),
        &["--header-timeout-ms", "300", "--request-timeout-ms", "1000"],
        &[("MERCATO_EMPTY", "1")],
        Some(TOKEN),
    );
    wait_ready(&server, &client).await;
    let base = server.base.clone();
    tokio::task::spawn_blocking(move || {
        // Nothing sent: closed.
        let mut silent = connect(&base);
        assert_eq!(read_to_close(&mut silent, "silent"), "");
        // Half the headers: closed.
        let mut half = connect(&base);
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let answer = read_to_close(&mut half, "half headers");
        assert!(!answer.contains("200 OK"), "{answer}");
        // A body sent too slowly: 408 as a problem document.
        let mut slow = connect(&base);
        write!(
            slow,
            "POST /api/v1/products HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
        )
        .unwrap();
        let answer = read_to_close(&mut slow, "slow body");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        // An idle keep-alive connection: answered, then closed.
        let mut idle = connect(&base);
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let answer = read_to_close(&mut idle, "idle keep-alive");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    })
    .await
    .unwrap();
    // And the server still serves.
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_shutdown_does_not_wait_for_a_stalled_client() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = start(
        dir.path(),
        &[
            "--connections-max",
            "4",
            "--header-timeout-ms",
            "60000",
            "--shutdown-grace-ms",
            "300",
        ],
        &[("MERCATO_EMPTY", "1")],
        Some(TOKEN),
    );
    wait_ready(&server, &client).await;
    let base = server.base.clone();
    // Four connections that send nothing fill the house.
    let held: Vec<TcpStream> = (0..4).map(|_| connect(&base)).collect();
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(1_500))
        .build()
        .unwrap();
    let refused = quick.get(format!("{base}/healthz")).send().await;
    assert!(
        refused.is_err(),
        "a fifth connection was served: {refused:?}"
    );
    // One leaves: the next client is served.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(answer) = quick.get(format!("{base}/healthz")).send().await {
            assert_eq!(answer.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served after the others left"
        );
    }
    // A request half sent, then SIGTERM: the server exits after its grace.
    let mut stalled = connect(&base);
    stalled
        .write_all(b"POST /api/v1/products HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        .unwrap();
    crate::binary::sigterm(&server);
    let exit = crate::binary::exit_status(
        &mut server,
        Duration::from_secs(20),
        "SIGTERM waited for the stalled client",
    )
    .await;
    assert!(exit.success(), "exit status {exit}");
}
