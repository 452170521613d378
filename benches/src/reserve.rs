//! One `mercato bench reserve` run end to end: find or start the server, set
//! up the products, run the load, check for oversell, and describe where the
//! time went (the server's batch sizes, syncs and CPU per reservation).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde::Serialize;

use crate::Error;
use crate::client::{Connection, Target};
use crate::load::{self, Bound, Check, LatencyMs, LoadPlan};
use crate::server::SpawnedServer;

/// Where the server comes from.
#[derive(Clone, Debug)]
pub(crate) enum ServerSource {
    /// A running server.
    Url {
        url: String,
        admin_token: String,
        /// A label for the report; the server's mode is not discoverable.
        durability: Option<String>,
    },
    /// Started for this run from this binary, with this durability.
    Spawn { binary: PathBuf, durability: String },
}

/// The results of one run. The fields up to `server_agrees` are the stable
/// shape `compare` and `plot` read; the rest explain the numbers.
#[derive(Debug, Serialize)]
pub(crate) struct ReserveReport {
    pub(crate) system: &'static str,
    pub(crate) durability: Option<String>,
    pub(crate) workload: &'static str,
    pub(crate) lines: usize,
    pub(crate) connections: usize,
    pub(crate) mode: &'static str,
    pub(crate) rate: Option<f64>,
    pub(crate) duration_s: f64,
    pub(crate) requests: u64,
    pub(crate) succeeded: u64,
    pub(crate) rejected: u64,
    pub(crate) overloaded: u64,
    pub(crate) errors: u64,
    /// Reservations answered 201 per second.
    pub(crate) throughput_rps: f64,
    pub(crate) latency_ms: LatencyMs,
    pub(crate) oversell: bool,
    pub(crate) server_agrees: bool,
    /// Requests (of any outcome) per second.
    pub(crate) requests_rps: f64,
    pub(crate) products: u64,
    pub(crate) stock: u64,
    pub(crate) quantity: u64,
    pub(crate) warmup_s: f64,
    pub(crate) other_status: u64,
    pub(crate) transport_errors: u64,
    pub(crate) check: Check,
    pub(crate) server: ServerFigures,
    pub(crate) client_cpu_us_per_request: Option<f64>,
    pub(crate) url: String,
}

/// What the server did during the measurement, from its `/metrics` and
/// (when started here) its `/proc` entry.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ServerFigures {
    /// Write transactions committed with at least one command.
    pub(crate) batches: Option<u64>,
    /// Commands per batch, on average.
    pub(crate) batch_commands_mean: Option<f64>,
    pub(crate) batches_per_s: Option<f64>,
    /// Commits synced to disk, per second.
    pub(crate) syncs_per_s: Option<f64>,
    /// Time in redb's commit (sync included), on average.
    pub(crate) commit_ms_mean: Option<f64>,
    /// Syncs of the write-ahead log per second (immediate durability).
    pub(crate) log_syncs_per_s: Option<f64>,
    /// Commands made durable per log sync, on average.
    pub(crate) log_sync_commands_mean: Option<f64>,
    /// Time to append to the log and sync it, on average.
    pub(crate) log_sync_ms_mean: Option<f64>,
    /// Server CPU time (all threads) per 201-answered reservation.
    pub(crate) cpu_us_per_reservation: Option<f64>,
    /// Server CPU use over the measurement, in cores.
    pub(crate) cpu_cores: Option<f64>,
}

/// Runs one benchmark. The server, when started here, is stopped and its
/// directory removed before this returns, error or not.
pub(crate) async fn run(source: &ServerSource, plan: &LoadPlan) -> Result<ReserveReport, Error> {
    plan.validate()?;
    let spawned;
    let (target, durability, pid) = match source {
        ServerSource::Url {
            url,
            admin_token,
            durability,
        } => (
            Target::resolve(url, admin_token).await?,
            durability.clone(),
            None,
        ),
        ServerSource::Spawn { binary, durability } => {
            if plan.progress {
                eprintln!(
                    "[bench] starting {} serve --durability {durability}",
                    binary.display()
                );
            }
            spawned = SpawnedServer::start(binary, durability).await?;
            let target = Target::resolve(&spawned.url, &spawned.admin_token).await?;
            (target, Some(durability.clone()), spawned.pid())
        }
    };

    let baseline = load::set_up(&target, plan).await?;

    // Snapshots bracketing the measurement. The warm-up is excluded by
    // taking the first snapshot when it ends, from a task beside the load.
    let warmup = plan.warmup;
    let metrics_target = target.clone();
    let before = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        Snapshot::take(&metrics_target, pid).await
    });
    let (measured, ledger) = load::run_load(&target, plan).await?;
    let after = Snapshot::take(&target, pid).await;
    let before = before.await?;

    let check = load::check(&target, plan, &baseline, &ledger).await?;
    let server = before.figures_until(&after, measured.succeeded);
    let elapsed = measured.elapsed.as_secs_f64().max(1e-9);
    let client_cpu_us_per_request = match (before.client_cpu, after.client_cpu) {
        (Some(start), Some(end)) if measured.requests > 0 => {
            Some(end.saturating_sub(start).as_secs_f64() * 1e6 / measured.requests as f64)
        }
        _ => None,
    };
    Ok(ReserveReport {
        system: "mercato",
        durability,
        workload: plan.skew.name(),
        lines: plan.lines,
        connections: plan.connections,
        mode: if plan.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        rate: plan.rate,
        duration_s: round3(elapsed),
        requests: measured.requests,
        succeeded: measured.succeeded,
        rejected: measured.rejected,
        overloaded: measured.overloaded,
        errors: measured.other_status + measured.transport_errors,
        throughput_rps: round3(measured.succeeded as f64 / elapsed),
        latency_ms: measured.latency,
        oversell: check.oversell,
        server_agrees: check.server_agrees,
        requests_rps: round3(measured.requests as f64 / elapsed),
        products: plan.products,
        stock: plan.stock,
        quantity: plan.quantity,
        warmup_s: plan.warmup.as_secs_f64(),
        other_status: measured.other_status,
        transport_errors: measured.transport_errors,
        check,
        server,
        client_cpu_us_per_request,
        url: target.origin.clone(),
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Counters read at one moment.
struct Snapshot {
    at: Instant,
    metrics: Option<WriterMetrics>,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Snapshot {
    async fn take(target: &Target, pid: Option<u32>) -> Snapshot {
        let metrics = WriterMetrics::scrape(target).await;
        Snapshot {
            at: Instant::now(),
            metrics,
            server_cpu: pid.and_then(|pid| process_cpu(&format!("/proc/{pid}/stat"))),
            client_cpu: process_cpu("/proc/self/stat"),
        }
    }

    fn figures_until(&self, after: &Snapshot, reservations: u64) -> ServerFigures {
        let seconds = after
            .at
            .saturating_duration_since(self.at)
            .as_secs_f64()
            .max(1e-9);
        let mut figures = ServerFigures::default();
        if let (Some(start), Some(end)) = (&self.metrics, &after.metrics) {
            let batches = end.batches - start.batches;
            figures.batches = Some(batches as u64);
            figures.batches_per_s = Some(round3(batches / seconds));
            if batches > 0.0 {
                figures.batch_commands_mean = Some(round3(
                    (end.batch_commands - start.batch_commands) / batches,
                ));
            }
            figures.syncs_per_s = Some(round3((end.syncs - start.syncs) / seconds));
            let log_syncs = end.log_syncs - start.log_syncs;
            if log_syncs > 0.0 {
                figures.log_syncs_per_s = Some(round3(log_syncs / seconds));
                figures.log_sync_commands_mean = Some(round3(
                    (end.log_sync_commands - start.log_sync_commands) / log_syncs,
                ));
                figures.log_sync_ms_mean = Some(round3(
                    (end.log_sync_seconds - start.log_sync_seconds) * 1000.0 / log_syncs,
                ));
            }
            let commits = end.commits - start.commits;
            if commits > 0.0 {
                figures.commit_ms_mean = Some(round3(
                    (end.commit_seconds - start.commit_seconds) * 1000.0 / commits,
                ));
            }
        }
        if let (Some(start), Some(end)) = (self.server_cpu, after.server_cpu) {
            let cpu = end.saturating_sub(start).as_secs_f64();
            figures.cpu_cores = Some(round3(cpu / seconds));
            if reservations > 0 {
                figures.cpu_us_per_reservation = Some(round3(cpu * 1e6 / reservations as f64));
            }
        }
        figures
    }
}

/// The writer's counters from the server's Prometheus text.
#[derive(Debug, Default, PartialEq)]
struct WriterMetrics {
    batches: f64,
    batch_commands: f64,
    syncs: f64,
    commits: f64,
    commit_seconds: f64,
    log_syncs: f64,
    log_sync_commands: f64,
    log_sync_seconds: f64,
}

impl WriterMetrics {
    async fn scrape(target: &Target) -> Option<WriterMetrics> {
        let mut connection = Connection::open(target).await.ok()?;
        let answer = connection
            .send_within(Duration::from_secs(5), Method::GET, "/metrics", None)
            .await
            .ok()?;
        if answer.status != StatusCode::OK {
            return None;
        }
        WriterMetrics::parse(std::str::from_utf8(&answer.body).ok()?)
    }

    fn parse(text: &str) -> Option<WriterMetrics> {
        let mut metrics = WriterMetrics::default();
        let mut seen = false;
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let name = name.split('{').next().unwrap_or(name);
            let slot = match name {
                "mercato_writer_batch_commands_count" => &mut metrics.batches,
                "mercato_writer_batch_commands_sum" => &mut metrics.batch_commands,
                "mercato_writer_syncs_total" => &mut metrics.syncs,
                "mercato_writer_commit_duration_seconds_count" => &mut metrics.commits,
                "mercato_writer_commit_duration_seconds_sum" => &mut metrics.commit_seconds,
                "mercato_log_sync_duration_seconds_count" => &mut metrics.log_syncs,
                "mercato_log_sync_duration_seconds_sum" => &mut metrics.log_sync_seconds,
                "mercato_log_sync_commands_sum" => &mut metrics.log_sync_commands,
                _ => continue,
            };
            *slot += value;
            seen = true;
        }
        seen.then_some(metrics)
    }
}

/// A process's user + system CPU time from its `/proc/.../stat`.
fn process_cpu(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports clock ticks of USER_HZ, which Linux fixes at 100.
    Some(Duration::from_millis((user + system) * 10))
}

/// Prints the human report.
pub(crate) fn print_report(report: &ReserveReport, plan: &LoadPlan) {
    let bound = match plan.bound {
        Bound::Duration(_) => format!("{:.1} s", report.duration_s),
        Bound::Requests(count) => format!("{count} requests in {:.1} s", report.duration_s),
    };
    let mode = match report.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => "closed loop".to_owned(),
    };
    println!(
        "mercato bench reserve: {} (durability {})",
        report.url,
        report.durability.as_deref().unwrap_or("unknown")
    );
    println!(
        "workload {}, {} line(s) x {} unit(s), {} products, {} connections, {mode}, {bound} after {:.1} s warm-up",
        report.workload,
        report.lines,
        report.quantity,
        report.products,
        report.connections,
        report.warmup_s
    );
    println!(
        "reserved   {:>10}  {:>10.0}/s",
        report.succeeded, report.throughput_rps
    );
    println!(
        "requests   {:>10}  {:>10.0}/s  (rejected {}, overloaded {}, other status {}, transport errors {})",
        report.requests,
        report.requests_rps,
        report.rejected,
        report.overloaded,
        report.other_status,
        report.transport_errors
    );
    let latency = &report.latency_ms;
    println!(
        "latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        latency.p50, latency.p90, latency.p99, latency.p999, latency.max
    );
    let server = &report.server;
    let show = |value: Option<f64>, digits: usize| match value {
        Some(value) => format!("{value:.digits$}"),
        None => "-".to_owned(),
    };
    println!(
        "server     {} batches/s, {} commands/batch, {} syncs/s, {} ms/commit, {} us CPU/reservation ({} cores)",
        show(server.batches_per_s, 0),
        show(server.batch_commands_mean, 1),
        show(server.syncs_per_s, 0),
        show(server.commit_ms_mean, 3),
        show(server.cpu_us_per_reservation, 1),
        show(server.cpu_cores, 2),
    );
    if server.log_syncs_per_s.is_some() {
        println!(
            "log        {} syncs/s, {} commands/sync, {} ms/sync",
            show(server.log_syncs_per_s, 0),
            show(server.log_sync_commands_mean, 1),
            show(server.log_sync_ms_mean, 3),
        );
    }
    println!(
        "client     {} us CPU/request",
        show(report.client_cpu_us_per_request, 1)
    );
    let check = &report.check;
    println!(
        "check      oversell: {}; server agrees: {}{}",
        if report.oversell { "YES" } else { "none" },
        if report.server_agrees { "yes" } else { "NO" },
        if check.products_explained_by_lost_answers > 0 {
            format!(
                " ({} products hold {} units from requests whose answer was lost)",
                check.products_explained_by_lost_answers, check.units_from_lost_answers
            )
        } else {
            String::new()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_writer_metrics() {
        let text = "# HELP mercato_writer_batch_commands Commands per committed batch.\n\
                    # TYPE mercato_writer_batch_commands histogram\n\
                    mercato_writer_batch_commands_sum 300.0\n\
                    mercato_writer_batch_commands_count 10\n\
                    mercato_writer_batch_commands_bucket{le=\"1.0\"} 0\n\
                    mercato_writer_syncs_total 12\n\
                    mercato_writer_commit_duration_seconds_sum 0.5\n\
                    mercato_writer_commit_duration_seconds_count 12\n\
                    mercato_log_sync_commands_sum 280.0\n\
                    mercato_log_sync_duration_seconds_sum 0.25\n\
                    mercato_log_sync_duration_seconds_count 9\n";
        let metrics = WriterMetrics::parse(text).unwrap();
        assert_eq!(
            metrics,
            WriterMetrics {
                batches: 10.0,
                batch_commands: 300.0,
                syncs: 12.0,
                commits: 12.0,
                commit_seconds: 0.5,
                log_syncs: 9.0,
                log_sync_commands: 280.0,
                log_sync_seconds: 0.25,
            }
        );
        assert!(WriterMetrics::parse("other 1\n").is_none());
    }

    #[test]
    fn reads_its_own_cpu_time() {
        assert!(process_cpu("/proc/self/stat").is_some());
    }
}
