//! Checks a Parquet file's column chunks and page headers before polars
//! decodes them.
//!
//! polars trusts the counts in a data page header: a negative `num_values`
//! is cast to a length near 2^64, and the allocation for it aborts the
//! process. An abort is not a panic, so the `decoding` guard in `table.rs`
//! cannot turn it into an error; the only defence is to refuse such a file
//! before polars sees it. This walk reads each wanted column chunk's pages
//! with polars-parquet's own page reader (headers only; nothing is
//! decompressed or decoded) and checks what the decoder will later trust:
//!
//! - a chunk's byte range lies inside the file;
//! - a chunk holds as many values as its row group has rows (the recording's
//!   columns are flat: one value, or null, per row);
//! - every data page's `num_values` (and a v2 page's `num_nulls` and
//!   `num_rows`) is non-negative, the pages' values add up to the chunk's,
//!   and a page's uncompressed size is below [`MAX_PAGE_BYTES`].
//!
//! Found by the `parquet` fuzz target
//! (`fuzz/findings/parquet-negative-page-num-values.parquet`).

use super::RecordingError;
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
use polars_parquet::parquet::read::PageReader;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

/// Largest compressed or uncompressed page accepted. Writers cut pages at
/// about 1 MiB (polars, pyarrow, parquet-mr); a page claiming more than this
/// is corrupt or hostile, and decoding it would allocate that much.
pub const MAX_PAGE_BYTES: usize = 256 << 20;

/// Checks every column chunk of `columns` in every row group of `metadata`.
pub fn check(
    path: &Path,
    file: &mut File,
    metadata: &FileMetadata,
    columns: &[String],
) -> Result<(), RecordingError> {
    let file_len = file
        .metadata()
        .map_err(|e| RecordingError::file(path, format!("cannot read: {e}")))?
        .len();
    for (group, row_group) in metadata.row_groups.iter().enumerate() {
        for name in columns {
            let Some(chunks) = row_group.columns_under_root_iter(name) else {
                continue;
            };
            for chunk in chunks {
                check_chunk(file, file_len, chunk, row_group.num_rows()).map_err(|why| {
                    RecordingError::file(
                        path,
                        format!(
                            "not a readable Parquet file: column `{name}` in row group {group}: {why}"
                        ),
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn check_chunk(
    file: &mut File,
    file_len: u64,
    chunk: &ColumnChunkMetadata,
    rows: usize,
) -> Result<(), String> {
    let values = chunk.num_values();
    if usize::try_from(values).ok() != Some(rows) {
        return Err(format!("the chunk holds {values} values for {rows} rows"));
    }
    let start = chunk
        .dictionary_page_offset()
        .unwrap_or_else(|| chunk.data_page_offset());
    let len = chunk.compressed_size();
    let range = u64::try_from(start)
        .ok()
        .zip(u64::try_from(len).ok())
        .and_then(|(start, len)| Some(start..start.checked_add(len)?))
        .filter(|range| range.end <= file_len)
        .ok_or_else(|| {
            format!(
                "the chunk's {len} bytes at offset {start} lie outside the file ({file_len} bytes)"
            )
        })?;
    // Inside the file, so the allocation is bounded by the file's size.
    let mut bytes = vec![0; (range.end - range.start) as usize];
    file.seek(SeekFrom::Start(range.start))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read the chunk: {e}"))?;

    let pages = PageReader::new(Cursor::new(bytes.into()), chunk, Vec::new(), MAX_PAGE_BYTES);
    let mut seen: i64 = 0;
    for (index, page) in pages.enumerate() {
        let page = page.map_err(|e| format!("page {index}: {e}"))?;
        let CompressedPage::Data(page) = page else {
            continue;
        };
        let (count, nulls, page_rows) = match page.header() {
            DataPageHeader::V1(h) => (h.num_values, 0, 0),
            DataPageHeader::V2(h) => (h.num_values, h.num_nulls, h.num_rows),
        };
        if count < 0 || nulls < 0 || page_rows < 0 || nulls > count {
            return Err(format!(
                "page {index} claims {count} values, {nulls} nulls and {page_rows} rows"
            ));
        }
        if page.uncompressed_size() > MAX_PAGE_BYTES {
            return Err(format!(
                "page {index} claims {} bytes uncompressed (at most {MAX_PAGE_BYTES})",
                page.uncompressed_size()
            ));
        }
        seen += i64::from(count);
        if seen > values {
            return Err(format!(
                "the pages hold more values than the chunk's {values}"
            ));
        }
    }
    if seen != values {
        return Err(format!("the pages hold {seen} values, the chunk {values}"));
    }
    Ok(())
}
