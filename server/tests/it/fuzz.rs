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
