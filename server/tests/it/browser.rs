//! The storefront and the console in a real browser: Debian's chromium,
//! driven by npm `playwright-core` (server/tests/browser/run.mjs), against
//! the real binary on 127.0.0.1 with its own data directory (and a second
//! one with the demo sign-in switched off). Screenshots of every page at
//! desktop and phone widths go to `target/tmp/browser-screenshots/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binary::{TOKEN, run_tool as run, start, wait_ready};

/// Debian's chromium; the test needs it (`.ci/run` installs it).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest `npm ci` may take.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest the whole browser run may take (each condition inside it is
/// bounded too).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_and_an_operator_use_the_pages_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the browser tests drive Debian's chromium. Install it with \
         `apt-get install -y chromium` (.ci/run does)"
    );
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        run(
            tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            NPM_CI_TIMEOUT,
            "npm ci in server/tests/browser",
        )
        .await;
    }

    let data = tempfile::tempdir().unwrap();
    // A webhook delay long enough that the order page shows the delayed
    // card's order waiting before it confirms.
    let server = start(
        data.path(),
        &["--gateway-webhook-delay-ms", "4000"],
        &[],
        Some(TOKEN),
    );
    // A second shop whose operator switched the demo sign-in off: its
    // sign-in page says so, and the hand-over a real login uses works.
    let data_without_demo = tempfile::tempdir().unwrap();
    let server_without_demo = start(
        data_without_demo.path(),
        &["--no-demo-sign-in"],
        &[],
        Some(TOKEN),
    );
    let client = reqwest::Client::new();
    wait_ready(&server, &client).await;
    wait_ready(&server_without_demo, &client).await;

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&artifacts);
    let output = run(
        tokio::process::Command::new("node")
            .arg("run.mjs")
            .current_dir(&dir)
            .env("MERCATO_URL", &server.base)
            .env(
                "MERCATO_URL_WITHOUT_DEMO_SIGN_IN",
                &server_without_demo.base,
            )
            .env("MERCATO_ADMIN_TOKEN", TOKEN)
            .env("MERCATO_ARTIFACTS", &artifacts)
            .env("CHROMIUM", CHROMIUM),
        RUN_TIMEOUT,
        "the browser scenarios (server/tests/browser/run.mjs)",
    )
    .await;
    println!("{output}");
    assert!(output.contains(" passed, 0 failed"), "{output}");
    // Every page at both widths: `NAME-1280.png` beside `NAME-390.png`.
    let names: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.len() >= 40,
        "{} screenshots in {}",
        names.len(),
        artifacts.display()
    );
    for name in &names {
        let (page, width) = name
            .strip_suffix(".png")
            .and_then(|stem| stem.rsplit_once('-'))
            .unwrap_or_else(|| panic!("{name} is not NAME-WIDTH.png"));
        let other = match width {
            "1280" => "390",
            "390" => "1280",
            _ => panic!("{name}: a width other than 1280 or 390"),
        };
        assert!(
            names.contains(&format!("{page}-{other}.png")),
            "{name} has no {other} pixels wide twin"
        );
    }
}
