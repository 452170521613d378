//! Mercato's fuzz targets. Each target's body is a plain function over
//! bytes in [`targets`], so that it runs under libFuzzer
//! (`cargo +nightly fuzz run TARGET`) and, on stable, in the server's
//! integration tests, which replay the committed seeds and every crash
//! found (`fuzz/seeds/TARGET`, `fuzz/regressions/TARGET`).

pub mod targets;
