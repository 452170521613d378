//! The short soak CI runs: `mercato bench soak` for 30 s against a server
//! it starts on 127.0.0.1, checked for what it leaves behind (a pass, a CSV
//! with every sample, a well-formed SVG, a summary), never for how fast it
//! went. Too short for the growth checks to be judged; the load, the
//! replays, the drain and `mercato check` are.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The columns of `samples.csv`, in order.
const COLUMNS: [&str; 12] = [
    "elapsed_s",
    "rss_bytes",
    "open_fds",
    "data_dir_bytes",
    "data_dir_apparent_bytes",
    "requests",
    "errors",
    "reservations",
    "replays",
    "p50_ms",
    "p99_ms",
    "max_ms",
];
/// Samples of a 30 s run with one every 3 s.
const SAMPLES: usize = 10;
/// How long the run may take before the test interrupts it (the run takes
/// about 40 s; a loaded machine may take longer).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn a_short_soak_passes_and_leaves_its_curves() {
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mercato"))
        .args([
            "bench",
            "soak",
            "--duration",
            "30s",
            "--sample-every",
            "3s",
            "--rate",
            "150",
            "--connections",
            "8",
            "--products",
            "50",
            "--reservation-ttl",
            "3s",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .env_remove("MERCATO_ADMIN_TOKEN")
        .env("MERCATO_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SIGINT: the bench stops the server it started, then exits.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(20));
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the soak failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Verdict: **pass**"), "{stdout}");

    // One CSV line per sample, every field a number.
    let csv = std::fs::read_to_string(out.path().join("samples.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
    let rows: Vec<Vec<f64>> = lines
        .map(|line| {
            line.split(',')
                .map(|field| field.parse::<f64>().unwrap_or_else(|_| panic!("{line}")))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), SAMPLES, "{csv}");
    for row in &rows {
        assert_eq!(row.len(), COLUMNS.len(), "{row:?}");
        // The server was sampled, and load ran in every interval.
        assert!(row[1] > 0.0 && row[2] > 0.0 && row[3] > 0.0, "{row:?}");
        assert!(row[5] > 0.0, "{row:?}");
        assert_eq!(row[6], 0.0, "errors in {row:?}");
    }
    assert!(rows.windows(2).all(|pair| pair[0][0] < pair[1][0]), "{csv}");
    assert!(rows.iter().any(|row| row[7] > 0.0), "no reservation: {csv}");
    assert!(rows.iter().any(|row| row[8] > 0.0), "no replay: {csv}");

    // The plot: one SVG document whose tags balance, four panels.
    let svg = std::fs::read_to_string(out.path().join("soak.svg")).unwrap();
    assert_well_formed(&svg);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    for label in [
        "RSS (MiB)",
        "open descriptors",
        "data directory (MiB)",
        "p99 latency (ms)",
    ] {
        assert!(svg.contains(label), "{label}");
    }

    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    for check in [
        "| 5xx and transport errors | 0 of",
        "| mercato check |",
        "| stock after the load |",
        "not judged",
    ] {
        assert!(summary.contains(check), "{check}: {summary}");
    }
    let check = std::fs::read_to_string(out.path().join("check.txt")).unwrap();
    assert!(check.contains("every invariant holds"), "{check}");
}

/// Every element is closed in order, attribute values are quoted and text
/// holds no raw `<` or `&` outside an entity.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg.trim();
    let mut roots = 0;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        assert!(!text.contains('>'), "stray '>' in {text:?}");
        for (index, _) in text.match_indices('&') {
            let entity = &text[index..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|known| entity.starts_with(known)),
                "bare '&' in {text:?}"
            );
        }
        let end = start + rest[start..].find('>').expect("an unclosed tag");
        let tag = &rest[start + 1..end];
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name.trim()), "</{name}> closes nothing");
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .expect("a tag name")
                .trim_end_matches('/');
            if open.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert!(open.is_empty(), "left open: {open:?}");
    assert_eq!(roots, 1, "one root element");
}
