//! `mercato bench compare`: the PostgreSQL baseline and Mercato, run back
//! to back on the same machine with the same workloads, and the ratios
//! between them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Value, json};

use crate::Error;
use crate::load::{Bound, LoadPlan, Skew};
use crate::reserve::{self, ReserveReport, ServerSource};

/// Everything `compare` was asked to do, validated.
#[derive(Debug)]
pub(crate) struct CompareOptions {
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) connections: Vec<usize>,
    pub(crate) pg_clients: Vec<usize>,
    pub(crate) workloads: Vec<Skew>,
    pub(crate) lines: Vec<usize>,
    pub(crate) products: u64,
    pub(crate) stock: u64,
    pub(crate) out: Option<PathBuf>,
    pub(crate) postgres_script: Option<PathBuf>,
    pub(crate) server_bin: PathBuf,
    pub(crate) skip_postgres: bool,
    pub(crate) skip_periodic: bool,
}

/// One point of a curve: a client or connection count and what it gave.
#[derive(Clone, Debug, Serialize)]
struct Point {
    clients: usize,
    tps: f64,
    p99_ms: f64,
}

/// The best (highest throughput) point of a series, and all of them.
#[derive(Clone, Debug, Serialize)]
struct Series {
    best: Point,
    points: Vec<Point>,
    /// False if any run of the series oversold or disagreed with the server.
    checks_passed: bool,
}

impl Series {
    fn new(points: Vec<Point>, checks_passed: bool) -> Option<Series> {
        let best = points
            .iter()
            .max_by(|left, right| left.tps.total_cmp(&right.tps))?
            .clone();
        Some(Series {
            best,
            points,
            checks_passed,
        })
    }
}

/// One workload's comparison.
#[derive(Debug, Serialize)]
struct Row {
    workload: &'static str,
    lines: usize,
    postgresql: Option<Series>,
    mercato_immediate: Option<Series>,
    mercato_periodic: Option<Series>,
    /// Mercato immediate best tps / PostgreSQL best tps.
    throughput_ratio: Option<f64>,
    /// PostgreSQL's p99 at its best / Mercato immediate's p99 at its best.
    p99_ratio: Option<f64>,
    /// Mercato immediate best tps / Mercato periodic best tps.
    durable_vs_periodic: Option<f64>,
    /// The lowest p99 of a Mercato immediate run that reached at least
    /// PostgreSQL's best throughput: the latency at which Mercato matches
    /// (or beats) PostgreSQL's throughput.
    mercato_p99_at_postgresql_best_tps: Option<Point>,
}

/// Runs everything; answers whether every oversell check passed.
pub(crate) async fn run(options: CompareOptions) -> Result<bool, Error> {
    let script = if options.skip_postgres {
        None
    } else {
        Some(locate_script(options.postgres_script.as_deref())?)
    };
    let out = match &options.out {
        Some(out) => out.clone(),
        None => default_results_dir(script.as_deref()).join(utc_timestamp()),
    };
    std::fs::create_dir_all(&out)
        .map_err(|error| format!("cannot create {}: {error}", out.display()))?;
    let durabilities: &[&str] = if options.skip_periodic {
        &["immediate"]
    } else {
        &["immediate", "periodic"]
    };
    let runs_per_workload = options.connections.len() * durabilities.len()
        + if script.is_some() {
            options.pg_clients.len()
        } else {
            0
        };
    let workloads = options.lines.len() * options.workloads.len();
    let run_seconds = options.duration.as_secs_f64() + options.warmup.as_secs_f64() + 4.0;
    eprintln!(
        "[compare] {workloads} workload(s) x {runs_per_workload} runs of ~{run_seconds:.0} s: about {:.0} minutes; results in {}",
        (workloads * runs_per_workload) as f64 * run_seconds / 60.0,
        out.display()
    );

    let mut rows = Vec::new();
    let mut all_passed = true;
    for &lines in &options.lines {
        for &skew in &options.workloads {
            let postgresql = match &script {
                Some(script) => {
                    let series = run_postgres(script, &options, skew, lines, &out).await?;
                    all_passed &= series.checks_passed;
                    Some(series)
                }
                None => None,
            };
            let mut mercato = Vec::new();
            for durability in durabilities {
                let mut points = Vec::new();
                let mut passed = true;
                for &connections in &options.connections {
                    let report =
                        run_mercato(&options, skew, lines, connections, durability).await?;
                    let file = out.join(format!(
                        "mercato-{durability}-{}-l{lines}-c{connections}.json",
                        skew.name()
                    ));
                    std::fs::write(&file, serde_json::to_string_pretty(&report)? + "\n")?;
                    passed &= !report.oversell && report.server_agrees;
                    points.push(Point {
                        clients: connections,
                        tps: report.throughput_rps,
                        p99_ms: report.latency_ms.p99,
                    });
                }
                all_passed &= passed;
                mercato.push(Series::new(points, passed));
            }
            let mercato_immediate = mercato.first().cloned().flatten();
            let mercato_periodic = mercato.get(1).cloned().flatten();
            let ratio =
                |numerator: Option<f64>, denominator: Option<f64>| match (numerator, denominator) {
                    (Some(numerator), Some(denominator)) if denominator > 0.0 => {
                        Some((numerator / denominator * 100.0).round() / 100.0)
                    }
                    _ => None,
                };
            let best_tps = |series: &Option<Series>| series.as_ref().map(|series| series.best.tps);
            let best_p99 =
                |series: &Option<Series>| series.as_ref().map(|series| series.best.p99_ms);
            rows.push(Row {
                workload: skew.name(),
                lines,
                throughput_ratio: ratio(best_tps(&mercato_immediate), best_tps(&postgresql)),
                p99_ratio: ratio(best_p99(&postgresql), best_p99(&mercato_immediate)),
                durable_vs_periodic: ratio(
                    best_tps(&mercato_immediate),
                    best_tps(&mercato_periodic),
                ),
                mercato_p99_at_postgresql_best_tps: match (&postgresql, &mercato_immediate) {
                    (Some(postgresql), Some(mercato)) => mercato
                        .points
                        .iter()
                        .filter(|point| point.tps >= postgresql.best.tps)
                        .min_by(|left, right| left.p99_ms.total_cmp(&right.p99_ms))
                        .cloned(),
                    _ => None,
                },
                postgresql,
                mercato_immediate,
                mercato_periodic,
            });
        }
    }

    let table = render_table(&rows);
    print!("{table}");
    std::fs::write(out.join("summary.txt"), &table)?;
    let summary = json!({
        "machine": machine(),
        "options": {
            "duration_s": options.duration.as_secs(),
            "warmup_s": options.warmup.as_secs_f64(),
            "connections": options.connections,
            "pg_clients": options.pg_clients,
            "products": options.products,
            "stock": options.stock,
        },
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "rows": rows,
        "checks_passed": all_passed,
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    eprintln!("[compare] results in {}", out.display());
    Ok(all_passed)
}

async fn run_mercato(
    options: &CompareOptions,
    skew: Skew,
    lines: usize,
    connections: usize,
    durability: &str,
) -> Result<ReserveReport, Error> {
    eprintln!(
        "[compare] mercato {durability}: {}, lines={lines}, connections={connections}",
        skew.name()
    );
    let plan = LoadPlan {
        products: options.products,
        stock: options.stock,
        lines,
        quantity: 1,
        skew,
        hot_products: 10,
        hot_fraction: 0.9,
        connections,
        bound: Bound::Duration(options.duration),
        rate: None,
        warmup: options.warmup,
        timeout: Duration::from_secs(10),
        progress: true,
    };
    let source = ServerSource::Spawn {
        binary: options.server_bin.clone(),
        durability: durability.to_owned(),
    };
    let report = reserve::run(&source, &plan).await?;
    eprintln!(
        "[compare]   {:.0} reservations/s, p99 {:.3} ms, {} errors, oversell {}, server agrees {}",
        report.throughput_rps,
        report.latency_ms.p99,
        report.errors,
        report.oversell,
        report.server_agrees
    );
    Ok(report)
}

async fn run_postgres(
    script: &Path,
    options: &CompareOptions,
    skew: Skew,
    lines: usize,
    out: &Path,
) -> Result<Series, Error> {
    let json_path = out.join(format!("postgresql-{}-l{lines}.json", skew.name()));
    let clients = options
        .pg_clients
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "[compare] postgresql: {}, lines={lines}, clients {clients}",
        skew.name()
    );
    let output = tokio::process::Command::new("bash")
        .arg(script)
        .args(["--workload", skew.name()])
        .args(["--lines", &lines.to_string()])
        .args(["--duration", &options.duration.as_secs().to_string()])
        .args(["--clients", &clients])
        .args(["--products", &options.products.to_string()])
        .args(["--stock", &options.stock.to_string()])
        .arg("--json")
        .arg(&json_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|error| format!("cannot run {}: {error}", script.display()))?;
    let report = String::from_utf8_lossy(&output.stdout);
    eprint!("{report}");
    std::fs::write(
        out.join(format!("postgresql-{}-l{lines}.txt", skew.name())),
        report.as_bytes(),
    )?;
    // Exit status 1 is the oversell check failing: the JSON is still there.
    if !(output.status.success() || output.status.code() == Some(1)) {
        return Err(format!("{} failed ({})", script.display(), output.status).into());
    }
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&json_path)?)?;
    let points = value["results"]
        .as_array()
        .ok_or("the PostgreSQL JSON has no results")?
        .iter()
        .map(|result| Point {
            clients: result["clients"].as_u64().unwrap_or(0) as usize,
            tps: result["tps"].as_f64().unwrap_or(0.0),
            p99_ms: result["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
        })
        .collect();
    let passed = value["oversell"] == Value::Bool(false);
    Series::new(points, passed).ok_or_else(|| "the PostgreSQL JSON has no results".into())
}

fn render_table(rows: &[Row]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<12} | {:>18} {:>7} | {:>18} {:>7} | {:>6} {:>6} | {:>18} | {:>18} {:>7}",
        "workload",
        "PostgreSQL tps (c)",
        "p99 ms",
        "Mercato tps (c)",
        "p99 ms",
        "x tps",
        "x p99",
        "p99 ms @ PG tps (c)",
        "periodic tps (c)",
        "imm/per"
    );
    let _ = writeln!(table, "{}", "-".repeat(132));
    let best = |series: &Option<Series>| match series {
        Some(series) => (
            format!("{:.0} ({})", series.best.tps, series.best.clients),
            format!("{:.2}", series.best.p99_ms),
        ),
        None => ("-".to_owned(), "-".to_owned()),
    };
    let ratio = |value: Option<f64>| value.map_or("-".to_owned(), |value| format!("{value:.2}"));
    for row in rows {
        let (pg_tps, pg_p99) = best(&row.postgresql);
        let (mercato_tps, mercato_p99) = best(&row.mercato_immediate);
        let (periodic_tps, _) = best(&row.mercato_periodic);
        let matching = row
            .mercato_p99_at_postgresql_best_tps
            .as_ref()
            .map_or("-".to_owned(), |point| {
                format!("{:.2} ({})", point.p99_ms, point.clients)
            });
        let _ = writeln!(
            table,
            "{:<12} | {pg_tps:>18} {pg_p99:>7} | {mercato_tps:>18} {mercato_p99:>7} | {:>6} {:>6} | {matching:>18} | {periodic_tps:>18} {:>7}",
            format!("{} l{}", row.workload, row.lines),
            ratio(row.throughput_ratio),
            ratio(row.p99_ratio),
            ratio(row.durable_vs_periodic),
        );
    }
    let _ = writeln!(
        table,
        "\n(c) = clients/connections of the best run; x tps = Mercato immediate / PostgreSQL; \
         x p99 = PostgreSQL p99 / Mercato p99, both at their best; p99 @ PG tps = the lowest \
         p99 of a Mercato immediate run at least as fast as PostgreSQL's best; imm/per = Mercato \
         immediate / periodic."
    );
    for row in rows {
        for (name, series) in [
            ("PostgreSQL", &row.postgresql),
            ("Mercato immediate", &row.mercato_immediate),
            ("Mercato periodic", &row.mercato_periodic),
        ] {
            if let Some(series) = series {
                let points: Vec<String> = series
                    .points
                    .iter()
                    .map(|point| {
                        format!(
                            "{}: {:.0}/s p99 {:.2} ms",
                            point.clients, point.tps, point.p99_ms
                        )
                    })
                    .collect();
                let _ = writeln!(
                    table,
                    "{} l{} {name}: {}{}",
                    row.workload,
                    row.lines,
                    points.join(", "),
                    if series.checks_passed {
                        ""
                    } else {
                        "  CHECK FAILED"
                    }
                );
            }
        }
    }
    table
}

/// `--postgres-script`, else `benches/postgres/run.sh` under the current
/// directory, beside the executable's repo (`target/release/../..`), or in
/// the source tree this was built from.
fn locate_script(given: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!("--postgres-script: {} is not a file", path.display()).into())
        };
    }
    let mut candidates = vec![PathBuf::from("benches/postgres/run.sh")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("../../benches/postgres/run.sh"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("postgres/run.sh"));
    candidates
        .into_iter()
        .find(|path| path.is_file())
        .ok_or_else(|| "cannot find benches/postgres/run.sh: run from the repository root or pass --postgres-script".into())
}

/// `benches/results` beside the script's `postgres/` directory, or under
/// the current directory.
fn default_results_dir(script: Option<&Path>) -> PathBuf {
    script
        .and_then(|script| {
            script
                .parent()?
                .parent()
                .map(|benches| benches.join("results"))
        })
        .unwrap_or_else(|| PathBuf::from("benches/results"))
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub(crate) fn utc_timestamp() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let time = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What the numbers were measured on.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned());
    let memory_kb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    json!({
        "cpu_model": model,
        "cpus": std::thread::available_parallelism().map(usize::from).ok(),
        "memory_gib": memory_kb.map(|kb| (kb as f64 / 1_048_576.0 * 10.0).round() / 10.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|text| text.trim().to_owned()),
        "date_utc": utc_timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn the_best_point_has_the_highest_throughput() {
        let series = Series::new(
            vec![
                Point {
                    clients: 8,
                    tps: 10.0,
                    p99_ms: 1.0,
                },
                Point {
                    clients: 16,
                    tps: 30.0,
                    p99_ms: 2.0,
                },
                Point {
                    clients: 32,
                    tps: 20.0,
                    p99_ms: 3.0,
                },
            ],
            true,
        )
        .unwrap();
        assert_eq!(series.best.clients, 16);
        assert!(Series::new(Vec::new(), true).is_none());
    }
}
