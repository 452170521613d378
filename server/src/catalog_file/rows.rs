//! The two catalog file formats, row by row: a streaming reader that turns
//! each row into a [`NewProduct`] (or says what is wrong with it, naming the
//! field), and a writer of the same format. Memory stays bounded: one row
//! at a time, each at most [`CATALOG_ROW_BYTES_MAX`].

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};

use mercato_engine::{Decimal, NewProduct, Product, ProductId};
use serde::{Deserialize, Serialize};

use super::{CATALOG_ROW_BYTES_MAX, CatalogFormat};

/// The columns of a CSV catalog, in the order an export writes them.
pub(super) const CSV_COLUMNS: [&str; 10] = [
    "id",
    "sku",
    "name",
    "description",
    "category",
    "brand",
    "price",
    "attributes",
    "low_stock_threshold",
    "on_hand",
];
/// The columns a CSV catalog must have; the others take their defaults.
const CSV_REQUIRED_COLUMNS: [&str; 4] = ["id", "name", "price", "on_hand"];

/// One row of a catalog file.
pub(super) struct Row {
    /// The line the row starts on (1-based; a CSV row may span lines).
    pub(super) line: u64,
    pub(super) product: Result<NewProduct, RowError>,
}

/// What is wrong with a row.
#[derive(Debug)]
pub(super) struct RowError {
    /// The row's id, when it could be read: a later row with the same id is
    /// still a duplicate.
    pub(super) id: Option<u64>,
    pub(super) field: Option<String>,
    pub(super) message: String,
}

impl RowError {
    fn new(id: Option<u64>, field: Option<&str>, message: impl Into<String>) -> RowError {
        RowError {
            id,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// A problem with the file itself, not one row: reading stops.
#[derive(Debug)]
pub(super) enum FileError {
    Io(io::Error),
    /// At `line`: a row too long, a bad CSV header.
    At {
        line: u64,
        message: String,
    },
}

impl From<io::Error> for FileError {
    fn from(error: io::Error) -> FileError {
        FileError::Io(error)
    }
}

/// Reads a catalog file row by row.
pub(super) enum RowReader<R: Read> {
    Jsonl(JsonlRows<R>),
    Csv(Box<CsvRows<R>>),
}

impl<R: Read> RowReader<R> {
    pub(super) fn new(reader: R, format: CatalogFormat) -> Result<RowReader<R>, FileError> {
        Ok(match format {
            CatalogFormat::Jsonl => RowReader::Jsonl(JsonlRows::new(reader)),
            CatalogFormat::Csv => RowReader::Csv(Box::new(CsvRows::new(reader)?)),
        })
    }

    /// The next row, `None` at the end of the file.
    pub(super) fn next_row(&mut self) -> Option<Result<Row, FileError>> {
        match self {
            RowReader::Jsonl(rows) => rows.next_row(),
            RowReader::Csv(rows) => rows.next_row(),
        }
    }

    /// Bytes of the file read so far.
    pub(super) fn bytes_read(&self) -> u64 {
        match self {
            RowReader::Jsonl(rows) => rows.bytes,
            RowReader::Csv(rows) => rows.bytes,
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// JSON Lines: one product object per line; blank lines are skipped.
pub(super) struct JsonlRows<R: Read> {
    reader: io::BufReader<R>,
    line: u64,
    bytes: u64,
    buffer: Vec<u8>,
}

/// A product as one line of JSON: the sample catalog's shape, which an
/// export writes back. Fields that may be absent take the default a new
/// product gets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    id: u64,
    #[serde(default)]
    sku: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    brand: Option<String>,
    /// A string, as money is everywhere in the API (`"4.50"`).
    #[serde(deserialize_with = "crate::money::required")]
    price: Decimal,
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
    #[serde(default)]
    low_stock_threshold: Option<u64>,
    on_hand: u64,
}

/// What an export writes for one product, in the order of the sample.
#[derive(Serialize)]
struct JsonRowOut<'a> {
    id: u64,
    sku: &'a str,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    brand: &'a str,
    price: Decimal,
    attributes: &'a BTreeMap<String, String>,
    low_stock_threshold: u64,
    on_hand: u64,
}

impl<R: Read> JsonlRows<R> {
    fn new(reader: R) -> JsonlRows<R> {
        JsonlRows {
            reader: io::BufReader::with_capacity(64 * 1024, reader),
            line: 0,
            bytes: 0,
            buffer: Vec::new(),
        }
    }

    fn next_row(&mut self) -> Option<Result<Row, FileError>> {
        loop {
            self.buffer.clear();
            // One byte more than a row may have, for its newline.
            let limit = CATALOG_ROW_BYTES_MAX as u64 + 1;
            let read = match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
            {
                Ok(read) => read,
                Err(error) => return Some(Err(FileError::Io(error))),
            };
            if read == 0 {
                return None;
            }
            self.line += 1;
            self.bytes += read as u64;
            if self.buffer.last() == Some(&b'\n') {
                self.buffer.pop();
            } else if read as u64 == limit {
                return Some(Err(FileError::At {
                    line: self.line,
                    message: format!("longer than {CATALOG_ROW_BYTES_MAX} bytes"),
                }));
            }
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
            let mut text = self.buffer.as_slice();
            if self.line == 1 {
                text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(Row {
                line: self.line,
                product: parse_json_row(text),
            }));
        }
    }
}

fn parse_json_row(text: &[u8]) -> Result<NewProduct, RowError> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let parsed = serde_path_to_error::deserialize::<_, JsonRow>(&mut deserializer)
        .map_err(|error| {
            let path = error.path().to_string();
            let field = (path != ".").then_some(path);
            (field, error.into_inner().to_string())
        })
        .and_then(|row| {
            deserializer
                .end()
                .map(|()| row)
                .map_err(|error| (None, error.to_string()))
        });
    let row = match parsed {
        Ok(row) => row,
        Err((field, message)) => {
            // The id, if the line has one, so that a later line with the
            // same id is still reported as a duplicate.
            let id = serde_json::from_slice::<serde_json::Value>(text)
                .ok()
                .and_then(|value| value.get("id").and_then(serde_json::Value::as_u64));
            return Err(RowError::new(id, field.as_deref(), message));
        }
    };
    Ok(NewProduct {
        id: Some(ProductId(row.id)),
        sku: row.sku,
        name: row.name,
        description: row.description,
        category: row.category,
        brand: row.brand,
        price: row.price,
        attributes: row.attributes.unwrap_or_default(),
        low_stock_threshold: row.low_stock_threshold,
        on_hand: row.on_hand,
    })
}

/// The CSV reader's source: counts the bytes pulled from the file since
/// the last row ended, and refuses to read on once that is well past
/// [`CATALOG_ROW_BYTES_MAX`] (the CSV reader grows its record buffer to fit
/// a row, so without this one unterminated quote could make it hold the
/// whole file). It also ends the file with a line break when it lacks one,
/// so that every row ends with one: that is what makes line numbers exact.
struct Bounded<R> {
    inner: R,
    since_row: u64,
    last_byte: Option<u8>,
    finished: bool,
}

/// The CSV reader's buffer: what it may read ahead of the row it is on.
const CSV_BUFFER_BYTES: usize = 64 * 1024;

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.since_row > (CATALOG_ROW_BYTES_MAX + CSV_BUFFER_BYTES) as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a row longer than {CATALOG_ROW_BYTES_MAX} bytes"),
            ));
        }
        if self.finished || buffer.is_empty() {
            return Ok(0);
        }
        let read = self.inner.read(buffer)?;
        if read == 0 {
            self.finished = true;
            if self.last_byte.is_some_and(|byte| byte != b'\n') {
                buffer[0] = b'\n';
                return Ok(1);
            }
            return Ok(0);
        }
        self.last_byte = Some(buffer[read - 1]);
        self.since_row += read as u64;
        Ok(read)
    }
}

/// CSV with a header row naming the columns (see the module documentation
/// of `catalog_file` for them).
pub(super) struct CsvRows<R: Read> {
    reader: csv::Reader<Bounded<R>>,
    /// For each column of the file, which product field it holds.
    columns: Vec<&'static str>,
    record: csv::ByteRecord,
    bytes: u64,
}

impl<R: Read> CsvRows<R> {
    fn new(reader: R) -> Result<CsvRows<R>, FileError> {
        let bounded = Bounded {
            inner: reader,
            since_row: 0,
            last_byte: None,
            finished: false,
        };
        // Rows end at a line feed only: csv's default (CR, LF or CRLF) ends
        // a row at the CR of a CRLF and counts its LF into the next row's
        // read, which would put line numbers off by one. A CR before the
        // LF is taken off the row's last cell instead.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(CSV_BUFFER_BYTES)
            .from_reader(bounded);
        let mut header = csv::ByteRecord::new();
        let columns = match reader.read_byte_record(&mut header) {
            Err(error) => return Err(csv_error(error, 1)),
            // An empty file: no rows.
            Ok(false) => Vec::new(),
            Ok(true) => {
                let line_breaks = header.as_slice().iter().filter(|b| **b == b'\n').count();
                let line = reader.position().line() - line_breaks as u64 - 1;
                parse_header(&header, line)?
            }
        };
        reader.get_mut().since_row = 0;
        Ok(CsvRows {
            reader,
            columns,
            record: csv::ByteRecord::new(),
            bytes: 0,
        })
    }

    fn next_row(&mut self) -> Option<Result<Row, FileError>> {
        if self.columns.is_empty() {
            return None;
        }
        let line_before = self.reader.position().line();
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Err(error) => return Some(Err(csv_error(error, line_before))),
                Ok(false) => return None,
                Ok(true) => {}
            }
            // A line of nothing but a CR (a blank line of a CRLF file), or of
            // spaces: skipped, as csv skips empty lines.
            let blank =
                self.record.len() == 1 && self.record[0].iter().all(u8::is_ascii_whitespace);
            if !blank {
                break;
            }
        }
        // Every row ends with its line feed (see `Bounded`), consumed with
        // it; the row starts that many lines back, over the line breaks
        // inside its quoted cells. (The record's own position is where the
        // reader stood before it, which is before any blank lines skipped.)
        let line_breaks = self.record.as_slice().iter().filter(|b| **b == b'\n');
        let line = self.reader.position().line() - line_breaks.count() as u64 - 1;
        self.reader.get_mut().since_row = 0;
        self.bytes = self.reader.position().byte();
        if self.record.as_slice().len() > CATALOG_ROW_BYTES_MAX {
            return Some(Err(FileError::At {
                line,
                message: format!("longer than {CATALOG_ROW_BYTES_MAX} bytes"),
            }));
        }
        Some(Ok(Row {
            line,
            product: parse_csv_row(&self.columns, &self.record),
        }))
    }
}

fn csv_error(error: csv::Error, line: u64) -> FileError {
    let line = error.position().map_or(line, csv::Position::line);
    match error.into_kind() {
        csv::ErrorKind::Io(error) if error.kind() == io::ErrorKind::InvalidData => FileError::At {
            line,
            message: error.to_string(),
        },
        csv::ErrorKind::Io(error) => FileError::Io(error),
        other => FileError::At {
            line,
            message: format!("{other:?}"),
        },
    }
}

fn parse_header(header: &csv::ByteRecord, line: u64) -> Result<Vec<&'static str>, FileError> {
    let at_header = |message: String| FileError::At { line, message };
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for (index, name) in header.iter().enumerate() {
        let name = if index == 0 {
            name.strip_prefix(UTF8_BOM).unwrap_or(name)
        } else {
            name
        };
        let name = std::str::from_utf8(name)
            .map_err(|_| at_header("the header row is not valid UTF-8".to_owned()))?
            .trim();
        let Some(column) = CSV_COLUMNS.iter().find(|column| **column == name) else {
            return Err(at_header(format!(
                "unknown column `{name}` in the header row (the columns are {})",
                CSV_COLUMNS.join(",")
            )));
        };
        if columns.contains(column) {
            return Err(at_header(format!(
                "column `{name}` appears twice in the header row"
            )));
        }
        columns.push(column);
    }
    let missing: Vec<&str> = CSV_REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|required| !columns.contains(required))
        .collect();
    if !missing.is_empty() {
        return Err(at_header(format!(
            "the header row lacks the column(s) {} (required: {})",
            missing.join(","),
            CSV_REQUIRED_COLUMNS.join(",")
        )));
    }
    Ok(columns)
}

fn parse_csv_row(
    columns: &[&'static str],
    record: &csv::ByteRecord,
) -> Result<NewProduct, RowError> {
    let mut cells: BTreeMap<&str, &str> = BTreeMap::new();
    let mut bad = None;
    let last = record.len().saturating_sub(1);
    for (index, (column, cell)) in columns.iter().zip(record.iter()).enumerate() {
        let cell = if index == last {
            cell.strip_suffix(b"\r").unwrap_or(cell)
        } else {
            cell
        };
        match std::str::from_utf8(cell) {
            Ok(text) => {
                cells.insert(column, text);
            }
            Err(_) => {
                bad.get_or_insert((*column, "is not valid UTF-8".to_owned()));
            }
        }
    }
    // The id first, so that even a bad row is known by it.
    let id = match cells.get("id").map(|cell| cell.trim()) {
        Some("") | None => None,
        Some(text) => text.parse::<u64>().ok(),
    };
    let error = |field: &str, message: String| RowError::new(id, Some(field), message);
    if record.len() != columns.len() {
        return Err(RowError::new(
            id,
            None,
            format!(
                "has {} fields, the header row has {}",
                record.len(),
                columns.len()
            ),
        ));
    }
    if let Some((field, message)) = bad {
        return Err(error(field, message));
    }
    let text = |column: &str| cells.get(column).map(|cell| (*cell).to_owned());
    let required = |column: &str| -> Result<&str, RowError> {
        match cells.get(column).map(|cell| cell.trim()) {
            Some("") | None => Err(error(column, "is required".to_owned())),
            Some(cell) => Ok(cell),
        }
    };
    let whole_number = |column: &str, cell: &str| -> Result<u64, RowError> {
        cell.parse::<u64>().map_err(|_| {
            error(
                column,
                format!("`{cell}` is not a whole number of 0 or more"),
            )
        })
    };
    let id_cell = required("id")?;
    let product_id = whole_number("id", id_cell)?;
    let name = text("name").unwrap_or_default();
    let price_cell = required("price")?;
    let price = crate::money::parse_money(price_cell).map_err(|message| error("price", message))?;
    let on_hand = whole_number("on_hand", required("on_hand")?)?;
    let low_stock_threshold = match cells.get("low_stock_threshold").map(|cell| cell.trim()) {
        Some("") | None => None,
        Some(cell) => Some(whole_number("low_stock_threshold", cell)?),
    };
    let attributes = match cells.get("attributes").map(|cell| cell.trim()) {
        Some("") | None => BTreeMap::new(),
        Some(cell) => serde_json::from_str::<BTreeMap<String, String>>(cell).map_err(|e| {
            error(
                "attributes",
                format!("must be a JSON object of strings, like {{\"colour\":\"red\"}}: {e}"),
            )
        })?,
    };
    let sku = text("sku").filter(|sku| !sku.trim().is_empty());
    Ok(NewProduct {
        id: Some(ProductId(product_id)),
        sku,
        name,
        description: text("description"),
        category: text("category"),
        brand: text("brand"),
        price,
        attributes,
        low_stock_threshold,
        on_hand,
    })
}

/// Writes products in one of the formats.
pub(super) enum RowWriter<W: Write> {
    Jsonl(io::BufWriter<W>),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> RowWriter<W> {
    pub(super) fn new(writer: W, format: CatalogFormat) -> io::Result<RowWriter<W>> {
        Ok(match format {
            CatalogFormat::Jsonl => RowWriter::Jsonl(io::BufWriter::new(writer)),
            CatalogFormat::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(writer);
                writer.write_record(CSV_COLUMNS)?;
                RowWriter::Csv(Box::new(writer))
            }
        })
    }

    pub(super) fn write(&mut self, product: &Product, on_hand: u64) -> io::Result<()> {
        match self {
            RowWriter::Jsonl(writer) => {
                let row = JsonRowOut {
                    id: product.id.0,
                    sku: &product.sku,
                    name: &product.name,
                    description: &product.description,
                    category: &product.category,
                    brand: &product.brand,
                    price: product.price,
                    attributes: &product.attributes,
                    low_stock_threshold: product.low_stock_threshold,
                    on_hand,
                };
                serde_json::to_writer(&mut *writer, &row)?;
                writer.write_all(b"\n")
            }
            RowWriter::Csv(writer) => {
                let attributes = serde_json::to_string(&product.attributes)?;
                writer.write_record([
                    product.id.0.to_string().as_str(),
                    &product.sku,
                    &product.name,
                    &product.description,
                    &product.category,
                    &product.brand,
                    &product.price.to_string(),
                    &attributes,
                    &product.low_stock_threshold.to_string(),
                    &on_hand.to_string(),
                ])?;
                Ok(())
            }
        }
    }

    /// Flushes everything written and hands back the writer.
    pub(super) fn finish(self) -> io::Result<W> {
        match self {
            RowWriter::Jsonl(writer) => writer.into_inner().map_err(io::IntoInnerError::into_error),
            RowWriter::Csv(writer) => writer
                .into_inner()
                .map_err(|error| io::Error::other(error.error().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_rows(text: &str, format: CatalogFormat) -> Vec<(u64, Result<NewProduct, String>)> {
        let mut reader = RowReader::new(text.as_bytes(), format).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row() {
            let row = row.unwrap();
            rows.push((
                row.line,
                row.product.map_err(|error| {
                    format!("{}: {}", error.field.unwrap_or_default(), error.message)
                }),
            ));
        }
        rows
    }

    #[test]
    fn csv_rows_are_numbered_by_the_line_they_start_on() {
        let text = "id,name,price,on_hand,description\n\
                    1,Tea,4.5,3,\"two\nlines\"\n\
                    \n\
                    2,\"Cup, large\",2,0,\"say \"\"hi\"\"\"\n";
        let rows = read_rows(text, CatalogFormat::Csv);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 2);
        assert_eq!(
            rows[0].1.as_ref().unwrap().description.as_deref(),
            Some("two\nlines")
        );
        assert_eq!(rows[1].0, 5);
        let cup = rows[1].1.as_ref().unwrap();
        assert_eq!(cup.name, "Cup, large");
        assert_eq!(cup.description.as_deref(), Some("say \"hi\""));
        // CRLF, a blank line, and a last row without a line end.
        let text = "id,name,price,on_hand\r\n1,a,1,1\r\n\r\n2,\"b\r\nc\",1,1\r\n3,d,1,1";
        let lines: Vec<u64> = read_rows(text, CatalogFormat::Csv)
            .iter()
            .map(|row| row.0)
            .collect();
        assert_eq!(lines, [2, 4, 6]);
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_accepted() {
        let text = "\u{feff}id,name,price,on_hand\r\n1,Tea,4.5,3\r\n";
        let csv = read_rows(text, CatalogFormat::Csv);
        assert_eq!(csv[0].1.as_ref().unwrap().name, "Tea");
        let text = "\u{feff}{\"id\":1,\"name\":\"Tea\",\"price\":\"4.5\",\"on_hand\":3}\r\n";
        let jsonl = read_rows(text, CatalogFormat::Jsonl);
        assert_eq!(jsonl[0].1.as_ref().unwrap().name, "Tea");
    }

    #[test]
    fn bad_cells_name_their_field() {
        let text = "id,name,price,on_hand,attributes,low_stock_threshold\n\
                    1,Tea,abc,3,,\n\
                    2,Tea,1,-1,,\n\
                    3,Tea,1,1,[1],\n\
                    4,Tea,1,1,,x\n\
                    ,Tea,1,1,,\n\
                    6,Tea,1\n";
        let errors: Vec<String> = read_rows(text, CatalogFormat::Csv)
            .into_iter()
            .map(|(line, row)| format!("{line} {}", row.unwrap_err()))
            .collect();
        assert!(
            errors[0].starts_with("2 price: \"abc\" is not an amount"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("3 on_hand:"), "{errors:?}");
        assert!(
            errors[2].starts_with("4 attributes: must be a JSON object"),
            "{errors:?}"
        );
        assert!(
            errors[3].starts_with("5 low_stock_threshold:"),
            "{errors:?}"
        );
        assert!(errors[4].starts_with("6 id: is required"), "{errors:?}");
        assert!(errors[5].starts_with("7 : has 3 fields"), "{errors:?}");
    }

    #[test]
    fn bad_json_names_the_field_and_keeps_the_id() {
        let mut reader = RowReader::new(
            &b"{\"id\":7,\"name\":\"Tea\",\"price\":\"x\",\"on_hand\":1}\n"[..],
            CatalogFormat::Jsonl,
        )
        .unwrap();
        let error = reader.next_row().unwrap().unwrap().product.unwrap_err();
        assert_eq!(error.id, Some(7));
        assert_eq!(error.field.as_deref(), Some("price"));
        let mut reader =
            RowReader::new(&b"{\"id\":7,\"colour\":1}\n"[..], CatalogFormat::Jsonl).unwrap();
        let error = reader.next_row().unwrap().unwrap().product.unwrap_err();
        assert!(
            error.message.contains("unknown field `colour`"),
            "{error:?}"
        );
    }

    #[test]
    fn a_header_must_name_known_columns_and_the_required_ones() {
        for (header, expected) in [
            ("id,name,price,on_hand,colour\n", "unknown column `colour`"),
            ("id,name,price,on_hand,name\n", "appears twice"),
            ("id,name,price\n", "lacks the column(s) on_hand"),
        ] {
            match RowReader::new(header.as_bytes(), CatalogFormat::Csv) {
                Err(FileError::At { line: 1, message }) => {
                    assert!(message.contains(expected), "{message}")
                }
                Err(other) => panic!("{other:?}"),
                Ok(_) => panic!("{header} was accepted"),
            }
        }
    }

    #[test]
    fn a_row_over_the_limit_stops_the_read() {
        let long = "x".repeat(CATALOG_ROW_BYTES_MAX + 10);
        let text = format!("{{\"id\":1}}\n{long}\n");
        let mut reader = RowReader::new(text.as_bytes(), CatalogFormat::Jsonl).unwrap();
        assert!(reader.next_row().unwrap().is_ok());
        match reader.next_row().unwrap() {
            Err(FileError::At { line: 2, .. }) => {}
            other => panic!("{:?}", other.map(|row| row.line)),
        }
        // An unterminated quote: the CSV reader stops instead of holding the file.
        let text = format!("id,name,price,on_hand\n1,\"{long}{long}\n");
        let mut reader = RowReader::new(text.as_bytes(), CatalogFormat::Csv).unwrap();
        match reader.next_row().unwrap() {
            Err(FileError::At { line: 2, message }) => assert!(message.contains("longer")),
            other => panic!("{:?}", other.map(|row| row.line)),
        }
    }
}
