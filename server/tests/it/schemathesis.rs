//! schemathesis (4.32.5, `--checks all`) against the real binary: every
//! operation of the served OpenAPI document, 20 examples each plus its
//! coverage, fuzzing and stateful phases, from a fixed seed. 0 failures
//! means the document is exact: what it describes is accepted, what it
//! rules out is refused, and every answer is one it lists. The rules it
//! cannot express are in `server/tests/schemathesis/schemathesis.toml`.

use std::path::Path;
use std::time::Duration;

use crate::binary::{TOKEN, run_tool, start, wait_ready};

/// The version `.ci/run` installs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// The longest the run may take (it takes well under a minute).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_document_exact() {
    let version = tokio::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        version.contains(SCHEMATHESIS_VERSION),
        "this test runs schemathesis {SCHEMATHESIS_VERSION} (found {version:?}): \
         `python3 -m pip install schemathesis=={SCHEMATHESIS_VERSION}` (.ci/run does)"
    );
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[], &[], Some(TOKEN));
    let client = reqwest::Client::new();
    wait_ready(&server, &client).await;

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/schemathesis.toml");
    let reports = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new("schemathesis");
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/api/v1/openapi.json", server.base)])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "20",
            "--seed",
            "20261130",
        ])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        // The event streams answer for as long as the client listens.
        .args(["--exclude-path-regex", "/stream$"])
        .args(["--request-timeout", "30", "--no-color"])
        .arg("--report-dir")
        .arg(reports.path())
        .current_dir(reports.path());
    // Fails with schemathesis's report when any check fails.
    let text = run_tool(&mut command, RUN_TIMEOUT, "schemathesis").await;
    assert!(
        !text.contains("Failures:"),
        "schemathesis reported failures:\n{text}"
    );
    // Every operation but the streams was tested, and every case passed.
    let count = |label: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split([' ', '/']).next()?.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
    };
    assert!(count("Tested: ") >= 40, "{text}");
    let cases = text
        .lines()
        .find(|line| line.contains(" generated, "))
        .unwrap_or_else(|| panic!("no case count in:\n{text}"));
    let numbers: Vec<usize> = cases
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    assert!(
        numbers.len() >= 2 && numbers[0] > 1000 && numbers[0] == numbers[1],
        "not every generated case passed: {cases}\n{text}"
    );
}
