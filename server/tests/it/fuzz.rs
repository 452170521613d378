//! The fuzz targets on stable: every seed (`fuzz/seeds/TARGET`) and every
//! input that once crashed a target (`fuzz/regressions/TARGET`) run
//! through the same bodies libFuzzer runs (`fuzz/src/targets`), so a fixed
//! crash stays fixed without nightly. See `fuzz/README.md`.

use std::path::Path;

#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/targets/mod.rs"]
mod targets;

#[test]
fn every_seed_and_regression_passes_its_fuzz_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut ran = 0;
    let mut failed = Vec::new();
    for (target, run) in targets::TARGETS {
        for kind in ["seeds", "regressions"] {
            let dir = root.join(kind).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
            files.sort();
            for file in files {
                let bytes = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&bytes));
                ran += 1;
                if outcome.is_err() {
                    failed.push(file.display().to_string());
                }
            }
        }
    }
    assert!(failed.is_empty(), "fuzz inputs that fail: {failed:#?}");
    assert!(ran > 0, "no seeds found under {}", root.display());
}

/// The longest the short campaign may take: building the targets (a few
/// minutes from scratch) and 10 s of each.
const CAMPAIGN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1500);

/// The short campaign of issue 11: every target under libFuzzer for 10 s
/// (`fuzz/run.sh --quick 10`), new inputs and all. It needs the nightly
/// toolchain and cargo-fuzz, which `.ci/run` installs; a crash fails the
/// test with the input left under `fuzz/artifacts/TARGET/`.
#[test]
fn a_short_run_of_every_fuzz_target_finds_no_crash() {
    let has = |args: &[&str]| {
        std::process::Command::new("cargo")
            .args(args)
            .env_remove("RUSTUP_TOOLCHAIN")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    assert!(
        has(&["+nightly", "--version"]) && has(&["+nightly", "fuzz", "--version"]),
        "the fuzz targets need the nightly toolchain and cargo-fuzz: \
         `rustup toolchain install nightly --profile minimal` and \
         `cargo install cargo-fuzz --version 0.13.2 --locked` (.ci/run does both)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    // Below the other tests' priority: they run beside this one.
    let mut child = std::process::Command::new("nice")
        .args(["-n", "10", "./run.sh", "--quick", "10"])
        .current_dir(&root)
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fuzz/run.sh starts");
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = std::time::Instant::now() + CAMPAIGN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fuzz/run.sh --quick 10 did not finish within {CAMPAIGN_TIMEOUT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let output = format!("{stdout}{stderr}");
    assert!(
        status.success(),
        "the fuzz campaign failed ({status}):\n{output}"
    );
    for target in targets::TARGETS.iter().map(|(target, _)| target) {
        assert!(
            output.contains(&format!("fuzz: {target} for 10s")),
            "{target} did not run:\n{output}"
        );
    }
    let runs = output
        .lines()
        .filter(|line| line.starts_with("Done ") && line.contains(" runs in "))
        .count();
    assert_eq!(runs, targets::TARGETS.len(), "{output}");
}
