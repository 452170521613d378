//! `plot`: draws p99 latency against throughput (log-log) from the raw
//! results of a `mercato bench compare` run, one panel per workload, one
//! curve per system (PostgreSQL by client count, Mercato by connection
//! count, immediate and periodic durability).
//!
//! `cargo run --release -p mercato-benches --features plot --bin plot -- RESULTS_DIR`
//! writes `RESULTS_DIR/latency-throughput.png`. Text is drawn with a TTF
//! font read at run time (`--font`, else DejaVu Sans or Liberation Sans from
//! Debian's fonts-dejavu-core / fonts-liberation), so nothing depends on
//! fontconfig.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

/// Fonts tried, in order, when `--font` is not given.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];
const PANEL_WIDTH: u32 = 800;
const PANEL_HEIGHT: u32 = 560;
const TITLE_HEIGHT: u32 = 50;

#[derive(Parser)]
#[command(about = "Plot p99 latency versus throughput from a `mercato bench compare` results dir")]
struct Args {
    /// The results directory (holds postgresql-*.json and mercato-*.json).
    results: PathBuf,
    /// The PNG to write (default: RESULTS/latency-throughput.png).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A TrueType font for the text.
    #[arg(long)]
    font: Option<PathBuf>,
}

/// One measured point.
#[derive(Clone, Copy, Debug)]
struct Point {
    clients: u64,
    throughput: f64,
    p99_ms: f64,
}

/// Curves by series name, per workload panel.
type Panels = BTreeMap<String, BTreeMap<&'static str, Vec<Point>>>;

const SERIES: [(&str, RGBColor); 3] = [
    (
        "PostgreSQL (FOR UPDATE, 1 txn/reservation)",
        RGBColor(31, 119, 180),
    ),
    ("Mercato, durability immediate", RGBColor(214, 39, 40)),
    ("Mercato, durability periodic", RGBColor(255, 127, 14)),
];

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(path) => {
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<PathBuf, Box<dyn std::error::Error>> {
    register_font(args.font.as_deref())?;
    let panels = read_results(&args.results)?;
    if panels.is_empty() {
        return Err(format!(
            "no postgresql-*.json or mercato-*.json in {}",
            args.results.display()
        )
        .into());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.results.join("latency-throughput.png"));
    draw(&panels, &out)?;
    Ok(out)
}

fn register_font(given: Option<&Path>) -> Result<(), Box<dyn std::error::Error>> {
    let path = match given {
        Some(path) => path.to_owned(),
        None => FONT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .ok_or("no TrueType font found: install fonts-dejavu-core or pass --font FILE.ttf")?,
    };
    let bytes =
        std::fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    // plotters keeps registered fonts for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a usable TrueType font", path.display()))?;
    Ok(())
}

fn read_results(dir: &Path) -> Result<Panels, Box<dyn std::error::Error>> {
    let mut panels = Panels::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    entries.sort();
    for path in entries {
        let value: Value = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
        {
            Some(value) => value,
            None => continue,
        };
        let panel = format!(
            "{}, {} line(s) per reservation",
            value["workload"].as_str().unwrap_or("?"),
            value["lines"].as_u64().unwrap_or(1)
        );
        match value["system"].as_str() {
            Some("postgresql") => {
                let points = panels
                    .entry(panel)
                    .or_default()
                    .entry(SERIES[0].0)
                    .or_default();
                for result in value["results"].as_array().into_iter().flatten() {
                    points.push(Point {
                        clients: result["clients"].as_u64().unwrap_or(0),
                        throughput: result["committed_tps"].as_f64().unwrap_or(0.0),
                        p99_ms: result["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                    });
                }
            }
            Some("mercato") => {
                let series = match value["durability"].as_str() {
                    Some("periodic") => SERIES[2].0,
                    _ => SERIES[1].0,
                };
                panels
                    .entry(panel)
                    .or_default()
                    .entry(series)
                    .or_default()
                    .push(Point {
                        clients: value["connections"].as_u64().unwrap_or(0),
                        throughput: value["throughput_rps"].as_f64().unwrap_or(0.0),
                        p99_ms: value["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                    });
            }
            _ => {}
        }
    }
    for series in panels.values_mut() {
        for points in series.values_mut() {
            points.retain(|point| point.throughput > 0.0 && point.p99_ms > 0.0);
            points.sort_by_key(|point| point.clients);
        }
    }
    Ok(panels)
}

/// The decade (power of ten) at or below `value`, and at or above.
fn decades(low: f64, high: f64) -> (f64, f64) {
    (
        10f64.powf(low.log10().floor()),
        10f64.powf(high.log10().ceil()),
    )
}

fn draw(panels: &Panels, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // Two panels a row, so four workloads make a square-ish picture.
    let columns = panels.len().min(2);
    let rows = panels.len().div_ceil(2);
    let width = PANEL_WIDTH * columns as u32;
    let height = TITLE_HEIGHT + PANEL_HEIGHT * rows as u32;
    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title_area, body) = root.split_vertically(TITLE_HEIGHT);
    title_area.titled(
        "Stock reservations: p99 latency vs throughput (each point: one client/connection count)",
        ("sans-serif", 24),
    )?;
    let areas = body.split_evenly((rows, columns));

    // One scale for every panel, so they compare at a glance.
    let all = panels.values().flat_map(|series| series.values().flatten());
    let (mut x_low, mut x_high, mut y_low, mut y_high) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for point in all {
        x_low = x_low.min(point.throughput);
        x_high = x_high.max(point.throughput);
        y_low = y_low.min(point.p99_ms);
        y_high = y_high.max(point.p99_ms);
    }
    let (x_low, x_high) = decades(x_low, x_high);
    let (y_low, y_high) = decades(y_low, y_high);

    for (area, (panel, series)) in areas.iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(panel, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((x_low..x_high).log_scale(), (y_low..y_high).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("reservations per second (log)")
            .y_desc("p99 latency, ms (log)")
            .x_label_formatter(&|value| format_number(*value))
            .y_label_formatter(&|value| format_number(*value))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()?;
        for (name, color) in SERIES {
            let Some(points) = series.get(name) else {
                continue;
            };
            let style = ShapeStyle::from(color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|point| (point.throughput, point.p99_ms)),
                    style,
                ))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(points.iter().map(|point| {
                EmptyElement::at((point.throughput, point.p99_ms))
                    + Circle::new((0, 0), 4, color.filled())
                    + Text::new(
                        point.clients.to_string(),
                        (6, -16),
                        ("sans-serif", 13).into_font().color(&color),
                    )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn format_number(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 1.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}
