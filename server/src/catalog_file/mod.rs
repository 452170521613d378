//! Catalog files: what `mercato import` loads, `mercato export` writes, and
//! the server loads into an empty store on first start (the shipped sample
//! catalog, or `--catalog FILE`). One code path for all three.
//!
//! The formats are documented on [`CatalogFormat`], what an import does on
//! [`import_catalog`], what an export writes on [`export_catalog`]; README.md
//! repeats them for users of the command line.

mod progress;
mod rows;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use mercato_engine::{Engine, Error, IMPORT_PRODUCTS_MAX, NewProduct, PAGE_LIMIT_MAX, ProductId};

pub use progress::Progress;
use progress::Unit;
use rows::{FileError, Row, RowReader, RowWriter};

/// The longest row of a catalog file, in bytes.
pub const CATALOG_ROW_BYTES_MAX: usize = 1 << 20;
/// The most rows one import reads.
pub const IMPORT_ROWS_MAX: u64 = 1_000_000;
/// Products per write transaction of an import, unless told otherwise.
pub const IMPORT_BATCH_ROWS_DEFAULT: usize = 1_000;
/// Bad rows an [`ImportReport`] lists one by one; the rest are counted.
pub const IMPORT_BAD_ROWS_LISTED_MAX: usize = 50;

const _: () = assert!(IMPORT_BATCH_ROWS_DEFAULT <= IMPORT_PRODUCTS_MAX);

/// The catalog shipped in `data/catalog.jsonl`, compiled in: loaded into an
/// empty store on the server's first start.
pub const SAMPLE_CATALOG: &str = include_str!("../../../data/catalog.jsonl");

/// The format of a catalog file.
///
/// A catalog file holds one product per row, with its stock. **JSON Lines**
/// (`.jsonl`, `.ndjson`): one JSON object per line, blank lines skipped:
///
/// ```text
/// {"id":1,"sku":"TEA-1","name":"Green tea","description":"","category":"tea","brand":"Leaf","price":"4.50","attributes":{"origin":"Japan"},"low_stock_threshold":10,"on_hand":25}
/// ```
///
/// **CSV** (`.csv`, RFC 4180: comma separated, `"` quotes a cell that
/// holds a comma, a quote (doubled: `""`) or a line break): a header row
/// naming the columns, in any order, then one row per product:
///
/// ```text
/// id,sku,name,description,category,brand,price,attributes,low_stock_threshold,on_hand
/// 1,TEA-1,Green tea,"Steamed, not roasted",tea,Leaf,4.50,"{""origin"":""Japan""}",10,25
/// ```
///
/// | field | required | meaning |
/// |---|---|---|
/// | `id` | yes | the product id, at least 1: a row creates or updates that product |
/// | `name` | yes | not blank |
/// | `price` | yes | in the store currency, as the API takes money: digits, an optional point, at most 2 decimals; a string in JSON (`"4.50"`) |
/// | `on_hand` | yes | the units in stock |
/// | `sku` | no | default `P` and the zero-padded id |
/// | `description`, `category`, `brand` | no | default empty |
/// | `attributes` | no | an object of strings; in CSV a cell holding that JSON object; default none |
/// | `low_stock_threshold` | no | default 10 |
///
/// In JSON a field left out (or `null`) takes its default, and an unknown
/// field makes the row bad. In CSV a column left out of the header takes
/// its default for every row, an empty cell of an optional column takes its
/// default, an unknown column stops the import, and number cells may have
/// spaces around them. The engine's own rules apply to every field (the
/// limits in `mercato_engine`, such as
/// [`PRODUCT_NAME_LENGTH_MAX`](mercato_engine::PRODUCT_NAME_LENGTH_MAX)).
/// A UTF-8 byte order mark and CRLF line ends are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

impl CatalogFormat {
    /// The format a file's extension names: `.jsonl` or `.ndjson` for JSON
    /// Lines, `.csv` for CSV (any case); `None` otherwise.
    pub fn from_path(path: &Path) -> Option<CatalogFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "jsonl" | "ndjson" => Some(CatalogFormat::Jsonl),
            "csv" => Some(CatalogFormat::Csv),
            _ => None,
        }
    }
}

impl fmt::Display for CatalogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CatalogFormat::Jsonl => "jsonl",
            CatalogFormat::Csv => "csv",
        })
    }
}

/// What an import does when some rows are bad.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnError {
    /// Write nothing at all.
    #[default]
    Abort,
    /// Write the good rows and report the bad ones (unless every row is bad).
    Skip,
}

/// Where an import reads its rows. Read twice: checked, then written.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum CatalogSource<'a> {
    /// A file.
    Path(&'a Path),
    /// Bytes in memory, such as [`SAMPLE_CATALOG`](crate::SAMPLE_CATALOG).
    Bytes(&'a [u8]),
}

impl CatalogSource<'_> {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            CatalogSource::Path(path) => Box::new(File::open(path)?),
            CatalogSource::Bytes(bytes) => Box::new(*bytes),
        })
    }

    fn len(&self) -> io::Result<u64> {
        Ok(match self {
            CatalogSource::Path(path) => std::fs::metadata(path)?.len(),
            CatalogSource::Bytes(bytes) => bytes.len() as u64,
        })
    }

    fn name(&self) -> String {
        match self {
            CatalogSource::Path(path) => path.display().to_string(),
            CatalogSource::Bytes(_) => "the catalog".to_owned(),
        }
    }
}

/// How to import.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The file's format.
    pub format: CatalogFormat,
    /// What to do with bad rows.
    pub on_error: OnError,
    /// Products per write transaction, 1 to
    /// [`IMPORT_PRODUCTS_MAX`](mercato_engine::IMPORT_PRODUCTS_MAX).
    pub batch_rows: usize,
}

impl ImportOptions {
    /// Abort on a bad row, [`IMPORT_BATCH_ROWS_DEFAULT`] rows per batch.
    pub fn new(format: CatalogFormat) -> ImportOptions {
        ImportOptions {
            format,
            on_error: OnError::Abort,
            batch_rows: IMPORT_BATCH_ROWS_DEFAULT,
        }
    }
}

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// The line of the file the row starts on, from 1.
    pub line: u64,
    /// The field at fault, when one is (`price`, `attributes.colour`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: field {field}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// What an import found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Rows in the file (blank lines aside).
    pub rows: u64,
    /// Products created.
    pub created: u64,
    /// Products updated.
    pub updated: u64,
    /// Products that already matched their row.
    pub unchanged: u64,
    /// Bad rows, all of them counted.
    pub bad_row_count: u64,
    /// The first [`IMPORT_BAD_ROWS_LISTED_MAX`] bad rows, in file order.
    pub bad_rows: Vec<BadRow>,
}

impl ImportReport {
    /// Rows written (created, updated or found matching).
    pub fn imported(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }

    fn add_bad(&mut self, bad: BadRow) {
        self.bad_row_count += 1;
        if self.bad_rows.len() < IMPORT_BAD_ROWS_LISTED_MAX {
            self.bad_rows.push(bad);
        }
    }

    /// The bad rows, one per line (`line N: field X: reason`), then how
    /// many more there were beyond those listed.
    pub fn bad_rows_text(&self) -> String {
        let mut text = String::new();
        for bad in &self.bad_rows {
            text.push_str(&bad.to_string());
            text.push('\n');
        }
        let unlisted = self.bad_row_count - self.bad_rows.len() as u64;
        if unlisted > 0 {
            text.push_str(&format!("... and {unlisted} more bad row(s)\n"));
        }
        text
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} row(s) imported: {} created, {} updated, {} unchanged",
            self.imported(),
            self.rows,
            self.created,
            self.updated,
            self.unchanged
        )?;
        if self.bad_row_count > 0 {
            write!(f, "; {} bad row(s) skipped", self.bad_row_count)?;
        }
        Ok(())
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {name}: {source}")]
    Io {
        /// The file.
        name: String,
        /// The error.
        source: io::Error,
    },
    /// The file as a whole cannot be imported (a row over the length limit,
    /// too many rows, a bad CSV header). Nothing was written.
    #[error("{name}: line {line}: {message}; nothing was imported")]
    File {
        /// The file.
        name: String,
        /// Where.
        line: u64,
        /// What.
        message: String,
    },
    /// Bad rows with [`OnError::Abort`], or every row bad with
    /// [`OnError::Skip`]. Nothing was written; the report lists them.
    #[error(
        "{} bad row(s) in {name}; nothing was imported\n{}",
        report.bad_row_count,
        report.bad_rows_text().trim_end()
    )]
    Rejected {
        /// The file.
        name: String,
        /// What was found.
        report: Box<ImportReport>,
    },
    /// A write failed part way. The batches before it are in the store
    /// (`report` counts them); the failed one may be too, as any write
    /// whose storage failed; running the same import again completes it.
    #[error(
        "writing the rows from line {first_line} to line {last_line} failed: {error}. The {} \
         row(s) before them are in the store (those may be too); running the same import again \
         completes it",
        report.imported()
    )]
    Write {
        /// The first line of the failed batch.
        first_line: u64,
        /// The last line of the failed batch.
        last_line: u64,
        /// The engine's answer.
        error: Error,
        /// What was written before.
        report: Box<ImportReport>,
    },
    /// The file changed between the check and the write. The batches before
    /// the change are in the store (`report` counts them).
    #[error(
        "{name} changed during the import (line {line} differs from what was checked); \
         {} row(s) were written; import the file again once it no longer changes",
        report.imported()
    )]
    Changed {
        /// The file.
        name: String,
        /// Where the difference was seen.
        line: u64,
        /// What was written before.
        report: Box<ImportReport>,
    },
    /// The store could not be read while checking rows.
    #[error("cannot check the rows against the store: {0}")]
    Engine(Error),
    /// The options are out of range.
    #[error("invalid import options: {0}")]
    Options(String),
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing failed.
    #[error("cannot write {name}: {source}")]
    Io {
        /// Where it was writing.
        name: String,
        /// The error.
        source: io::Error,
    },
    /// Reading the store failed.
    #[error("cannot read the store: {0}")]
    Engine(#[from] Error),
}

/// Each id seen: the line of the first row that named it, and whether that
/// row is the one to write.
type SeenIds = HashMap<u64, (u64, bool)>;

/// Imports a catalog file into `engine`: checks every row, then writes the
/// good ones in batches. Blocks the calling thread; from async code, call
/// it in `spawn_blocking`.
///
/// A row **makes the store match it**: an unknown id is created, an existing
/// product gets every field of the row (a field the row leaves out takes its
/// default, as for a new product) and `on_hand` is set to the row's figure;
/// a product that already matches is left alone. So an export imported
/// again changes nothing, and an import that stopped part way is completed
/// by running it again. Products not in the file are left as they are.
///
/// A row is bad, and named by the line it starts on, when it cannot be
/// read, breaks a field rule, repeats an id of an earlier row (the earlier
/// row is the one that counts), names an archived product (ids are not
/// reused), or sets `on_hand` below what active reservations hold. Every row
/// is checked before the first write ([`Engine::check_upsert`], the
/// writer's own rules), then the good rows are written in batches of
/// [`ImportOptions::batch_rows`] through [`Engine::upsert_products`], each
/// batch one transaction. With [`OnError::Abort`] (the default) one bad row
/// means nothing is written; with [`OnError::Skip`] the good rows are
/// written and the bad ones reported, unless every row is bad.
///
/// Limits: a row at most [`CATALOG_ROW_BYTES_MAX`] bytes, a file at most
/// [`IMPORT_ROWS_MAX`] rows; a longer row or a larger file stops the import
/// before anything is written. Memory holds one batch and, per row, its id
/// and line (about 40 bytes a row). The file is read twice (checked, then
/// written), so it must not change during an import.
pub fn import_catalog(
    engine: &Engine,
    source: CatalogSource<'_>,
    options: &ImportOptions,
    progress: &Progress,
) -> Result<ImportReport, ImportError> {
    if options.batch_rows == 0 || options.batch_rows > IMPORT_PRODUCTS_MAX {
        return Err(ImportError::Options(format!(
            "batch_rows must be 1 to {IMPORT_PRODUCTS_MAX}"
        )));
    }
    let name = source.name();
    let io_error = |source: io::Error| ImportError::Io {
        name: name.clone(),
        source,
    };
    let file_error = |error: FileError| match error {
        FileError::Io(source) => ImportError::Io {
            name: name.clone(),
            source,
        },
        FileError::At { line, message } => ImportError::File {
            name: name.clone(),
            line,
            message,
        },
    };

    // Check every row before anything is written.
    let mut report = ImportReport::default();
    let mut seen = SeenIds::new();
    let mut good: u64 = 0;
    let mut stage = progress.stage(
        "checking",
        Some(source.len().map_err(io_error)?),
        Unit::Bytes,
    );
    let mut reader =
        RowReader::new(source.open().map_err(io_error)?, options.format).map_err(file_error)?;
    while let Some(row) = reader.next_row() {
        let row = row.map_err(file_error)?;
        report.rows += 1;
        if report.rows > IMPORT_ROWS_MAX {
            return Err(ImportError::File {
                name,
                line: row.line,
                message: format!("more than {IMPORT_ROWS_MAX} rows"),
            });
        }
        match check_row(engine, &row, &mut seen).map_err(ImportError::Engine)? {
            None => good += 1,
            Some(bad) => report.add_bad(bad),
        }
        stage.set(reader.bytes_read());
    }
    stage.finish();
    assert_eq!(good + report.bad_row_count, report.rows);
    if report.bad_row_count > 0 && (options.on_error == OnError::Abort || good == 0) {
        return Err(ImportError::Rejected {
            name,
            report: Box::new(report),
        });
    }
    if good == 0 {
        return Ok(report);
    }

    // Write the good rows, batch by batch.
    let mut stage = progress.stage("importing", Some(good), Unit::Rows);
    let mut reader =
        RowReader::new(source.open().map_err(io_error)?, options.format).map_err(file_error)?;
    let mut batch: Vec<NewProduct> = Vec::with_capacity(options.batch_rows);
    let mut batch_lines = (0, 0);
    let mut rows_read: u64 = 0;
    loop {
        let row = reader.next_row().transpose().map_err(file_error)?;
        let end = row.is_none();
        if let Some(row) = row {
            rows_read += 1;
            let changed = |report: &ImportReport| ImportError::Changed {
                name: name.clone(),
                line: row.line,
                report: Box::new(report.clone()),
            };
            let id = match &row.product {
                Ok(product) => product.id.map(|id| id.0),
                Err(error) => error.id,
            };
            let to_write = id.is_some_and(|id| seen.get(&id) == Some(&(row.line, true)));
            match (row.product, to_write) {
                (Ok(product), true) => {
                    if batch.is_empty() {
                        batch_lines.0 = row.line;
                    }
                    batch_lines.1 = row.line;
                    batch.push(product);
                }
                (Ok(_), false) if id.is_some_and(|id| !seen.contains_key(&id)) => {
                    return Err(changed(&report));
                }
                (Err(_), true) => return Err(changed(&report)),
                _ => {}
            }
        }
        if batch.len() == options.batch_rows || (end && !batch.is_empty()) {
            let products = std::mem::replace(&mut batch, Vec::with_capacity(options.batch_rows));
            let count = products.len() as u64;
            match engine.upsert_products(products).wait() {
                Ok(upserted) => {
                    report.created += upserted.created as u64;
                    report.updated += upserted.updated as u64;
                    report.unchanged += upserted.unchanged as u64;
                    assert_eq!(
                        (upserted.created + upserted.updated + upserted.unchanged) as u64,
                        count
                    );
                }
                Err(error) => {
                    return Err(ImportError::Write {
                        first_line: batch_lines.0,
                        last_line: batch_lines.1,
                        error,
                        report: Box::new(report),
                    });
                }
            }
            stage.set(report.imported());
        }
        if end {
            break;
        }
    }
    stage.finish();
    if rows_read != report.rows || report.imported() != good {
        return Err(ImportError::Changed {
            name,
            line: rows_read,
            report: Box::new(report),
        });
    }
    Ok(report)
}

/// Checks one row: `None` when it is to be written, else why not. Records
/// its id in `seen`. Only a failure to read the store is an error.
fn check_row(engine: &Engine, row: &Row, seen: &mut SeenIds) -> Result<Option<BadRow>, Error> {
    let bad = |field: Option<String>, message: String| BadRow {
        line: row.line,
        field,
        message,
    };
    let product = match &row.product {
        Ok(product) => product,
        Err(error) => {
            if let Some(id) = error.id {
                seen.entry(id).or_insert((row.line, false));
            }
            return Ok(Some(bad(error.field.clone(), error.message.clone())));
        }
    };
    let id = product.id.expect("every row names its id").0;
    if let Some((first_line, _)) = seen.get(&id) {
        return Ok(Some(bad(
            Some("id".to_owned()),
            format!("product {id} is also on line {first_line}, which counts"),
        )));
    }
    let verdict = match engine.check_upsert(product) {
        Ok(()) => None,
        Err(Error::InvalidInput { field, message }) => Some(bad(Some(field), message)),
        Err(Error::BelowReserved { reserved, .. }) => Some(bad(
            Some("on_hand".to_owned()),
            format!(
                "{} is below the {reserved} unit(s) that active reservations of product {id} hold",
                product.on_hand
            ),
        )),
        Err(error) if error.is_storage_fault() => return Err(error),
        Err(error) => Some(bad(None, error.to_string())),
    };
    seen.insert(id, (row.line, verdict.is_none()));
    Ok(verdict)
}

/// Writes every live product of `engine` in id order, with its current
/// `on_hand`, to `out` in `format`, page by page. Answers how many were
/// written. Archived products are left out (they are no longer products to
/// the API). Timestamps and the currency are not part of
/// the format: an import sets the times to its own, and prices are read in
/// the store's currency.
pub fn export_catalog(
    engine: &Engine,
    out: impl Write,
    format: CatalogFormat,
    progress: &Progress,
) -> Result<u64, ExportError> {
    let io_error = |source: io::Error| ExportError::Io {
        name: "the export".to_owned(),
        source,
    };
    let mut writer = RowWriter::new(out, format).map_err(io_error)?;
    let mut stage = progress.stage("exporting", None, Unit::Products);
    let mut written: u64 = 0;
    let mut after: Option<ProductId> = None;
    loop {
        let page = engine.list_products(None, after, PAGE_LIMIT_MAX)?;
        for product in &page.items {
            // Archived since the page was read: left out, as archived ones are.
            let Some(stock) = engine.stock(product.id)? else {
                continue;
            };
            writer.write(product, stock.on_hand).map_err(io_error)?;
            written += 1;
        }
        stage.set(written);
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    writer
        .finish()
        .map_err(io_error)?
        .flush()
        .map_err(io_error)?;
    stage.finish();
    Ok(written)
}

/// [`export_catalog`] into the file at `path`, which appears only once it
/// is complete: the export is written beside it under a temporary name,
/// synced, then renamed over it.
pub fn export_catalog_to_path(
    engine: &Engine,
    path: &Path,
    format: CatalogFormat,
    progress: &Progress,
) -> Result<u64, ExportError> {
    let io_error = |source: io::Error| ExportError::Io {
        name: path.display().to_string(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io_error(io::Error::other("not a file name")))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(file_name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial: PathBuf = path.with_file_name(partial_name);
    let written = (|| {
        let file = File::create(&partial).map_err(io_error)?;
        let written =
            export_catalog(engine, &file, format, progress).map_err(|error| match error {
                ExportError::Io { source, .. } => io_error(source),
                other => other,
            })?;
        file.sync_all().map_err(io_error)?;
        std::fs::rename(&partial, path).map_err(io_error)?;
        Ok(written)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
