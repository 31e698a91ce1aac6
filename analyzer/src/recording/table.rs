//! The long table on disk: CSV or Parquet through polars, read and written
//! in chunks.
//!
//! Reading: a Parquet file is read a slice of rows at a time (polars reads
//! only the row groups a slice touches); a CSV file is cut at line
//! boundaries into chunks of a few megabytes, each parsed with the header
//! in front. CSV cells are read as text and parsed here, so a bad cell is
//! reported with its row and column instead of polars' inference guessing
//! a type. Rows are numbered from 1, the header not counted; CSV chunks
//! are cut at newlines, so quoted cells must not contain line breaks.
//! polars panics on some malformed bytes; each decoding call is guarded
//! (`decoding`) so that such a file is an error naming it, not a crash.
//! Some malformed Parquet pages make it abort instead, which no guard
//! catches: `parquet_pages` checks the page headers before it decodes.
//!
//! Writing: rows are buffered and flushed as one polars batch per chunk.

use super::{parse_le, parse_timestamp, parse_value, Arm, Recording, RecordingError, RowSink};
use crate::source::Sample;
use polars::prelude::{
    Column, CsvReadOptions, CsvWriter, DataFrame, DataType, Field, ParquetReader, ParquetWriter,
    Schema, SerReader, SerWriter, StringChunked,
};
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// Rows per written batch.
pub const CHUNK_ROWS: usize = 1 << 20;
/// Rows per Parquet slice read: polars' default row group (512²), so a
/// slice decodes one row group. A decoded row costs about 140 bytes
/// (text columns and the parsed cells), so a slice is ~35 MiB.
const PARQUET_SLICE_ROWS: usize = 512 * 512;
/// Bytes per CSV chunk (cut at the next newline): about a quarter of a
/// million rows, as a Parquet slice.
const CSV_CHUNK_BYTES: usize = 8 << 20;

/// The table's columns.
pub const TIMESTAMP: &str = "timestamp";
pub const METRIC: &str = "metric";
pub const ARM: &str = "arm";
pub const VALUE: &str = "value";
pub const LE: &str = "le";

/// On-disk format, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("csv") => Some(Format::Csv),
            Some("parquet" | "pq") => Some(Format::Parquet),
            _ => None,
        }
    }
}

fn polars_error(path: &Path, e: impl std::fmt::Display) -> RecordingError {
    RecordingError::file(path, e.to_string())
}

/// Runs a polars decoding call on `path`'s bytes, turning a panic inside
/// polars into an error naming the file. polars panics on some malformed
/// input (a corrupt Parquet footer panics in its Thrift decoder instead of
/// returning an error), and a bad file must be an error, never a crash.
/// Only decoding is guarded: a panic in Verdict's own code stays a panic.
fn decoding<T>(path: &Path, what: &str, call: impl FnOnce() -> T) -> Result<T, RecordingError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|payload| {
        let detail = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no detail");
        RecordingError::file(
            path,
            format!("{what}: the decoder failed on malformed data ({detail})"),
        )
    })
}

/// Reads a table's rows into `sink` in file order; returns their number.
pub fn read_rows(
    path: &Path,
    format: Format,
    sink: &mut dyn RowSink,
) -> Result<u64, RecordingError> {
    let rows = match format {
        Format::Csv => read_csv(path, sink)?,
        Format::Parquet => read_parquet(path, sink)?,
    };
    if rows == 0 {
        return Err(RecordingError::file(path, "the recording has no rows"));
    }
    Ok(rows)
}

fn read_parquet(path: &Path, sink: &mut dyn RowSink) -> Result<u64, RecordingError> {
    let open =
        || File::open(path).map_err(|e| RecordingError::file(path, format!("cannot open: {e}")));
    let mut reader = ParquetReader::new(open()?);
    const UNREADABLE: &str = "not a readable Parquet file";
    let metadata = decoding(path, UNREADABLE, || reader.get_metadata().cloned())?
        .map_err(|e| polars_error(path, format!("{UNREADABLE}: {e}")))?;
    let schema =
        decoding(path, UNREADABLE, || reader.schema())?.map_err(|e| polars_error(path, e))?;
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let columns = Columns::locate(path, &names)?;
    let wanted: Vec<String> = columns.names().map(String::from).collect();
    let mut file = open()?;
    decoding(path, UNREADABLE, || {
        super::parquet_pages::check(path, &mut file, &metadata, &wanted)
    })??;
    let total = metadata.num_rows;
    let mut offset = 0;
    while offset < total {
        let mut reader = ParquetReader::new(open()?);
        reader.set_metadata(metadata.clone());
        let df = decoding(path, UNREADABLE, || {
            reader
                .with_columns(Some(wanted.clone()))
                .with_slice(Some((offset, PARQUET_SLICE_ROWS)))
                .finish()
        })?
        .map_err(|e| polars_error(path, e))?;
        if df.height() == 0 {
            break;
        }
        ingest(path, &df, &columns, offset as u64, sink)?;
        offset += df.height();
    }
    Ok(offset as u64)
}

fn read_csv(path: &Path, sink: &mut dyn RowSink) -> Result<u64, RecordingError> {
    let file =
        File::open(path).map_err(|e| RecordingError::file(path, format!("cannot open: {e}")))?;
    let mut lines = BufReader::with_capacity(1 << 20, file);
    let mut header = Vec::new();
    lines
        .read_until(b'\n', &mut header)
        .map_err(|e| RecordingError::file(path, format!("cannot read: {e}")))?;
    let header_text = String::from_utf8_lossy(&header).into_owned();
    if header_text.trim().is_empty() {
        return Err(RecordingError::file(
            path,
            "the file is empty: expected a header row (timestamp,metric,arm,value[,le])",
        ));
    }
    if !header.ends_with(b"\n") {
        header.push(b'\n');
    }
    let names: Vec<String> = header_text
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|n| n.trim().trim_matches('"').to_string())
        .collect();
    let columns = Columns::locate(path, &names)?;
    let mut rows = 0u64;
    loop {
        let mut chunk = header.clone();
        let before = chunk.len();
        (&mut lines)
            .take(CSV_CHUNK_BYTES as u64)
            .read_to_end(&mut chunk)
            .map_err(|e| RecordingError::file(path, format!("cannot read: {e}")))?;
        if chunk.len() == before {
            break;
        }
        // Finish the last line of the chunk.
        if !chunk.ends_with(b"\n") {
            lines
                .read_until(b'\n', &mut chunk)
                .map_err(|e| RecordingError::file(path, format!("cannot read: {e}")))?;
        }
        if chunk[before..].iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        const UNREADABLE: &str = "not readable as CSV";
        let df = decoding(path, UNREADABLE, || {
            CsvReadOptions::default()
                .with_has_header(true)
                // Every column as text: cells are parsed (and reported) here.
                .with_infer_schema_length(Some(0))
                .into_reader_with_file_handle(Cursor::new(chunk))
                .finish()
        })?
        .map_err(|e| polars_error(path, format!("{UNREADABLE}: {e}")))?;
        ingest(path, &df, &columns, rows, sink)?;
        rows += df.height() as u64;
    }
    Ok(rows)
}

/// Which columns the file has.
struct Columns {
    le: bool,
}

impl Columns {
    fn locate(path: &Path, names: &[String]) -> Result<Columns, RecordingError> {
        for required in [TIMESTAMP, METRIC, ARM, VALUE] {
            if !names.iter().any(|n| n == required) {
                return Err(RecordingError {
                    file: path.to_path_buf(),
                    row: None,
                    column: Some(required.to_string()),
                    message: format!(
                        "missing column (the file has {}; a recording needs timestamp, metric, \
                         arm, value and optionally le)",
                        names.join(", ")
                    ),
                });
            }
        }
        Ok(Columns {
            le: names.iter().any(|n| n == LE),
        })
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        [TIMESTAMP, METRIC, ARM, VALUE]
            .into_iter()
            .chain(self.le.then_some(LE))
    }
}

/// A column's cells as numbers, one per row; `None` for an empty cell.
fn numbers(
    path: &Path,
    df: &DataFrame,
    name: &str,
    first_row: u64,
    parse: fn(&str) -> Result<f64, String>,
) -> Result<Vec<Option<f64>>, RecordingError> {
    let column = df.column(name).map_err(|e| polars_error(path, e))?;
    let dtype = column.dtype();
    if dtype.is_primitive_numeric() {
        let floats = column
            .cast(&DataType::Float64)
            .map_err(|e| polars_error(path, e))?;
        let floats = floats.f64().map_err(|e| polars_error(path, e))?;
        return Ok(floats.iter().collect());
    }
    if *dtype == DataType::String {
        let text = column.str().map_err(|e| polars_error(path, e))?;
        return text
            .iter()
            .enumerate()
            .map(|(i, cell)| match cell {
                None => Ok(None),
                Some(cell) if cell.trim().is_empty() => Ok(None),
                Some(cell) => parse(cell)
                    .map(Some)
                    .map_err(|m| RecordingError::cell(path, first_row + i as u64 + 1, name, m)),
            })
            .collect();
    }
    Err(RecordingError {
        file: path.to_path_buf(),
        row: None,
        column: Some(name.to_string()),
        message: format!("has type {dtype}; expected numbers or text"),
    })
}

fn text<'a>(
    path: &Path,
    df: &'a DataFrame,
    name: &str,
) -> Result<&'a StringChunked, RecordingError> {
    let column = df.column(name).map_err(|e| polars_error(path, e))?;
    column.str().map_err(|_| RecordingError {
        file: path.to_path_buf(),
        row: None,
        column: Some(name.to_string()),
        message: format!("has type {}; expected text", column.dtype()),
    })
}

/// Adds one chunk's rows to the sink. `first_row` is the number of rows
/// before the chunk.
fn ingest(
    path: &Path,
    df: &DataFrame,
    columns: &Columns,
    first_row: u64,
    sink: &mut dyn RowSink,
) -> Result<(), RecordingError> {
    let row = |i: usize| first_row + i as u64 + 1;
    let timestamps = numbers(path, df, TIMESTAMP, first_row, parse_timestamp)?;
    let values = numbers(path, df, VALUE, first_row, parse_value)?;
    let les = if columns.le {
        Some(numbers(path, df, LE, first_row, parse_le)?)
    } else {
        None
    };
    let metrics = text(path, df, METRIC)?;
    let arms = text(path, df, ARM)?;
    for (i, ((metric, arm), (timestamp, value))) in metrics
        .iter()
        .zip(arms.iter())
        .zip(timestamps.into_iter().zip(values))
        .enumerate()
    {
        let metric = match metric.map(str::trim) {
            Some(m) if !m.is_empty() => m,
            _ => {
                return Err(RecordingError::cell(
                    path,
                    row(i),
                    METRIC,
                    "empty metric name",
                ))
            }
        };
        let arm = match arm.map(str::trim).and_then(Arm::parse) {
            Some(a) => a,
            None => {
                return Err(RecordingError::cell(
                    path,
                    row(i),
                    ARM,
                    format!("arm {:?} is neither baseline nor canary", arm.unwrap_or("")),
                ))
            }
        };
        let timestamp = match timestamp {
            Some(t) if t.is_finite() => t,
            _ => {
                return Err(RecordingError::cell(
                    path,
                    row(i),
                    TIMESTAMP,
                    "missing or non-finite timestamp",
                ))
            }
        };
        let le = match &les {
            Some(les) => match les[i] {
                Some(le) if le.is_nan() => {
                    return Err(RecordingError::cell(
                        path,
                        row(i),
                        LE,
                        "bucket bound is NaN",
                    ))
                }
                le => le,
            },
            None => None,
        };
        sink.push(
            metric,
            arm,
            le,
            Sample {
                timestamp,
                value: value.unwrap_or(f64::NAN),
            },
        );
    }
    Ok(())
}

/// Writes a long table, buffering rows and flushing one batch per chunk.
///
/// The rows go to a partial file beside the destination (`.NAME.partial`),
/// renamed over it by [`TableWriter::finish`]: a writer that fails or is
/// dropped part way (Prometheus failing in the middle of `verdict record`)
/// removes the partial file and leaves whatever was at the destination.
pub struct TableWriter {
    path: PathBuf,
    partial: PathBuf,
    /// `None` once finished.
    sink: Option<Sink>,
    timestamp: Vec<f64>,
    metric: Vec<String>,
    arm: Vec<&'static str>,
    value: Vec<f64>,
    le: Vec<Option<f64>>,
}

enum Sink {
    Csv(polars::io::csv::write::BatchedWriter<File>),
    // Boxed: the Parquet writer is several times the CSV one's size.
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
}

fn schema() -> Schema {
    Schema::from_iter([
        Field::new(TIMESTAMP.into(), DataType::Float64),
        Field::new(METRIC.into(), DataType::String),
        Field::new(ARM.into(), DataType::String),
        Field::new(VALUE.into(), DataType::Float64),
        Field::new(LE.into(), DataType::Float64),
    ])
}

impl TableWriter {
    /// Creates (or truncates) `path`; the format follows its extension.
    pub fn create(path: &Path) -> Result<TableWriter, RecordingError> {
        let format = Format::of(path).ok_or_else(|| {
            RecordingError::file(path, "unknown format: name the file .csv or .parquet")
        })?;
        let name = path
            .file_name()
            .ok_or_else(|| RecordingError::file(path, "not a file name"))?;
        let partial = path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        let file = File::create(&partial).map_err(|e| {
            RecordingError::file(path, format!("cannot create {}: {e}", partial.display()))
        })?;
        let sink = match format {
            Format::Csv => Sink::Csv(
                CsvWriter::new(file)
                    .include_header(true)
                    .batched(&schema())
                    .map_err(|e| polars_error(path, e))?,
            ),
            Format::Parquet => Sink::Parquet(Box::new(
                ParquetWriter::new(file)
                    .batched(&schema())
                    .map_err(|e| polars_error(path, e))?,
            )),
        };
        Ok(TableWriter {
            path: path.to_path_buf(),
            partial,
            sink: Some(sink),
            timestamp: Vec::new(),
            metric: Vec::new(),
            arm: Vec::new(),
            value: Vec::new(),
            le: Vec::new(),
        })
    }

    /// Adds one row.
    pub fn push(
        &mut self,
        metric: &str,
        arm: Arm,
        le: Option<f64>,
        sample: Sample,
    ) -> Result<(), RecordingError> {
        self.timestamp.push(sample.timestamp);
        self.metric.push(metric.to_string());
        self.arm.push(arm.as_str());
        self.value.push(sample.value);
        self.le.push(le);
        if self.timestamp.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordingError> {
        if self.timestamp.is_empty() {
            return Ok(());
        }
        let height = self.timestamp.len();
        let df = DataFrame::new(
            height,
            vec![
                Column::new(TIMESTAMP.into(), std::mem::take(&mut self.timestamp)),
                Column::new(METRIC.into(), std::mem::take(&mut self.metric)),
                Column::new(ARM.into(), std::mem::take(&mut self.arm)),
                Column::new(VALUE.into(), std::mem::take(&mut self.value)),
                Column::new(LE.into(), std::mem::take(&mut self.le)),
            ],
        )
        .map_err(|e| polars_error(&self.path, e))?;
        match &mut self.sink {
            Some(Sink::Csv(w)) => w.write_batch(&df),
            Some(Sink::Parquet(w)) => w.write_batch(&df),
            None => return Err(RecordingError::file(&self.path, "the writer is finished")),
        }
        .map_err(|e| polars_error(&self.path, format!("cannot write: {e}")))
    }

    /// Flushes the last rows, closes the file and moves it to its
    /// destination.
    pub fn finish(mut self) -> Result<(), RecordingError> {
        self.flush()?;
        match self.sink.take() {
            Some(Sink::Csv(mut w)) => w.finish(),
            Some(Sink::Parquet(w)) => w.finish().map(|_| ()),
            None => Ok(()),
        }
        .map_err(|e| polars_error(&self.path, format!("cannot write: {e}")))?;
        std::fs::rename(&self.partial, &self.path).map_err(|e| {
            RecordingError::file(
                &self.path,
                format!("cannot move {} into place: {e}", self.partial.display()),
            )
        })
    }
}

impl Drop for TableWriter {
    /// Removes the partial file unless it was moved into place.
    fn drop(&mut self) {
        if self.partial.exists() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Writes a whole recording.
pub fn write(path: &Path, recording: &Recording) -> Result<(), RecordingError> {
    let mut writer = TableWriter::create(path)?;
    for s in &recording.series {
        for &sample in &s.samples {
            writer.push(&s.metric, s.arm, s.le, sample)?;
        }
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    /// Found by the `parquet` fuzz target: a 5-byte footer on which polars'
    /// Thrift decoder panics ("thrift bool field") instead of failing.
    const FOOTER_THAT_PANICS_POLARS: &[u8] = b"EAAA8\x05\x00\x00\x00PAR1";

    #[test]
    fn a_footer_that_panics_polars_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corrupt.parquet");
        std::fs::write(&path, FOOTER_THAT_PANICS_POLARS).unwrap();
        let e = crate::recording::read(&path).unwrap_err();
        assert_eq!(e.file, path);
        let text = e.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert!(text.contains("not a readable Parquet file"), "{text}");
        assert!(text.contains("malformed data"), "{text}");
    }

    /// Found by the `parquet` fuzz target: `gauge.parquet` with the `metric`
    /// column's data page claiming -57 values. polars would cast the count
    /// to a size near 2^64 and abort on the allocation; the page check
    /// (`parquet_pages`) refuses the file first.
    const NEGATIVE_PAGE_NUM_VALUES: &[u8] =
        include_bytes!("../../../fuzz/corpus/parquet/negative-page-num-values.parquet");

    #[test]
    fn a_page_with_a_negative_value_count_is_refused_before_polars_decodes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("negative.parquet");
        std::fs::write(&path, NEGATIVE_PAGE_NUM_VALUES).unwrap();
        let e = crate::recording::read(&path).unwrap_err();
        assert_eq!(e.file, path);
        let text = e.to_string();
        assert!(text.contains("column `metric` in row group 0"), "{text}");
        assert!(text.contains("claims -57 values"), "{text}");
    }

    /// A CSV file longer than one chunk: rows on both sides of the cut are
    /// read in order, and a bad cell after it is reported with its row.
    #[test]
    fn a_csv_longer_than_a_chunk_reads_whole_and_numbers_rows_across_chunks() {
        use std::fmt::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.csv");
        let mut text = String::from("timestamp,metric,arm,value\n");
        let mut rows = 0u64;
        while text.len() <= super::CSV_CHUNK_BYTES + 1000 {
            writeln!(text, "{},latency,canary,{}", 1_700_000_000 + rows, rows % 7).unwrap();
            rows += 1;
        }
        std::fs::write(&path, &text).unwrap();
        let recording = crate::recording::read(&path).unwrap();
        assert_eq!(recording.len() as u64, rows);
        let samples = &recording.series[0].samples;
        assert!(samples
            .iter()
            .enumerate()
            .all(|(i, p)| p.timestamp == 1_700_000_000.0 + i as f64 && p.value == (i % 7) as f64));

        writeln!(text, "{},latency,canary,fast", 1_700_000_000 + rows).unwrap();
        std::fs::write(&path, &text).unwrap();
        let e = crate::recording::read(&path).unwrap_err();
        assert_eq!(e.row, Some(rows + 1), "{e}");
        assert_eq!(e.column.as_deref(), Some("value"), "{e}");
    }

    /// A writer moves its file into place only when finished; dropped
    /// part way it leaves the destination as it was and no partial file.
    #[test]
    fn a_table_reaches_its_destination_only_when_finished() {
        use super::TableWriter;
        use crate::recording::Arm;
        use crate::source::Sample;
        let dir = tempfile::tempdir().unwrap();
        let names = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        for name in ["r.csv", "r.parquet"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "earlier").unwrap();
            let sample = Sample {
                timestamp: 1.0,
                value: 2.0,
            };
            let mut writer = TableWriter::create(&path).unwrap();
            writer.push("m", Arm::Canary, None, sample).unwrap();
            assert_eq!(names(), [format!(".{name}.partial"), name.to_string()]);
            drop(writer);
            assert_eq!(std::fs::read(&path).unwrap(), b"earlier");
            assert_eq!(names(), [name]);

            let mut writer = TableWriter::create(&path).unwrap();
            writer.push("m", Arm::Canary, None, sample).unwrap();
            writer.finish().unwrap();
            assert_eq!(names(), [name]);
            let recording = crate::recording::read(&path).unwrap();
            assert_eq!(recording.series[0].samples, [sample]);
            std::fs::remove_file(&path).unwrap();
        }
    }
}
