use super::{Bytes, DataError, Example, Value};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The kind of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// One little-endian i64 per row.
    Int64,
    /// A variable-length list of unsigned token ids per row, stored as u16 or
    /// u32 (whichever holds the column's largest id), with u64 row offsets.
    Tokens,
    /// A UTF-8 string per row, with u64 byte offsets.
    Text,
}

impl ColumnKind {
    /// The kind's name, as in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Int64 => "int64",
            ColumnKind::Tokens => "tokens",
            ColumnKind::Text => "text",
        }
    }
}

/// A column's name, kind and storage width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// Column kind.
    pub kind: ColumnKind,
    /// Bytes per stored element: 8 for int64, 2 or 4 for tokens, 1 for text.
    pub width: u8,
}

/// One column: its schema, its data buffer and (for lists and strings) its
/// row offsets.
///
/// Row reads check the row's two offsets (in order, within the data) and,
/// for text, UTF-8, so a damaged cache gives a [`DataError::Row`] naming the
/// file and row, never a panic or bytes of another row.
#[derive(Debug, Clone)]
pub struct Column {
    schema: ColumnSchema,
    data: Bytes,
    offsets: Option<Bytes>,
    /// Elements (ids, text bytes, integers) `data` holds: the bound of every offset.
    elements: u64,
    /// The files the column was mapped from (cache columns), for errors.
    files: Option<Arc<ColumnFiles>>,
}

#[derive(Debug)]
struct ColumnFiles {
    data: PathBuf,
    offsets: Option<PathBuf>,
}

/// Token ids of one row, read in place from the column's buffer.
#[derive(Debug, Clone, Copy)]
pub enum TokenSlice<'a> {
    /// Ids stored as little-endian u16.
    U16(&'a [u8]),
    /// Ids stored as little-endian u32.
    U32(&'a [u8]),
}

impl<'a> TokenSlice<'a> {
    /// All ids of a token column's data buffer of element `width` (2 or 4).
    pub fn from_column_data(data: &'a [u8], width: u8) -> Self {
        if width == 2 {
            TokenSlice::U16(data)
        } else {
            TokenSlice::U32(data)
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            TokenSlice::U16(b) => b.len() / 2,
            TokenSlice::U32(b) => b.len() / 4,
        }
    }

    /// True when there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id at position `i`.
    pub fn get(&self, i: usize) -> u32 {
        match self {
            TokenSlice::U16(b) => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32,
            TokenSlice::U32(b) => {
                u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }
        }
    }

    /// Appends the ids, widened to i64, to `out` (the collation hot path).
    pub fn extend_into(&self, out: &mut Vec<i64>) {
        match self {
            TokenSlice::U16(b) => out.extend(
                b.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64),
            ),
            TokenSlice::U32(b) => out.extend(
                b.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64),
            ),
        }
    }

    /// Appends ids `range` (widened to i64) to `out`.
    pub fn extend_range_into(&self, range: std::ops::Range<usize>, out: &mut Vec<i64>) {
        match self {
            TokenSlice::U16(b) => {
                TokenSlice::U16(&b[range.start * 2..range.end * 2]).extend_into(out)
            }
            TokenSlice::U32(b) => {
                TokenSlice::U32(&b[range.start * 4..range.end * 4]).extend_into(out)
            }
        }
    }

    /// The ids as a new vector.
    pub fn to_vec(&self) -> Vec<i64> {
        let mut v = Vec::with_capacity(self.len());
        self.extend_into(&mut v);
        v
    }
}

/// The `i`-th little-endian u64 of `buf` (row offsets are stored this way).
pub fn read_u64(buf: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

/// The last little-endian u64 of a non-empty offsets buffer: its total.
pub fn last_u64(buf: &[u8]) -> u64 {
    read_u64(buf, buf.len() / 8 - 1)
}

/// Little-endian u16 ids rewritten as little-endian u32 ids.
///
/// `bytes` must hold whole ids (an even number of bytes); an odd trailing
/// byte is ignored. A stream read in pieces must carry an odd trailing byte
/// over to the next piece (the cache writer does).
pub fn widen_u16_to_u32(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks_exact(2)
        .flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) as u32).to_le_bytes())
        .collect()
}

impl Column {
    /// Assembles a column from its parts; the cache reader checks sizes
    /// before calling this.
    pub fn from_parts(schema: ColumnSchema, data: Bytes, offsets: Option<Bytes>) -> Self {
        let elements = (data.len() / (schema.width.max(1) as usize)) as u64;
        Self {
            schema,
            data,
            offsets,
            elements,
            files: None,
        }
    }

    /// Records the files the column was mapped from, so that row errors name
    /// them (the cache reader calls this).
    pub fn with_files(mut self, data: PathBuf, offsets: Option<PathBuf>) -> Self {
        self.files = Some(Arc::new(ColumnFiles { data, offsets }));
        self
    }

    /// The data file the column was mapped from (`None` when built in memory).
    pub fn data_file(&self) -> Option<&Path> {
        self.files.as_deref().map(|f| f.data.as_path())
    }

    /// The offsets file the column was mapped from (`None` when built in
    /// memory or without offsets).
    pub fn offsets_file(&self) -> Option<&Path> {
        self.files.as_deref().and_then(|f| f.offsets.as_deref())
    }

    /// Schema of the column.
    pub fn schema(&self) -> &ColumnSchema {
        &self.schema
    }

    /// Raw data bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Raw offset bytes (lists and strings).
    pub fn offsets(&self) -> Option<&Bytes> {
        self.offsets.as_ref()
    }

    /// Elements the data buffer holds: ids (token column), bytes (text) or
    /// integers. Every row offset must be at most this.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// An error about `row` of this column, naming its offsets file (or its
    /// data file when it has none). For readers that find a row's offsets
    /// inconsistent with something else (e.g. the packing index).
    #[cold]
    pub fn row_error(&self, row: usize, reason: impl Into<String>) -> DataError {
        let path = self
            .files
            .as_deref()
            .map(|f| f.offsets.clone().unwrap_or_else(|| f.data.clone()));
        DataError::Row {
            path,
            column: self.schema.name.clone(),
            row,
            reason: reason.into(),
        }
    }

    /// An error about the bytes of `row`, naming the data file.
    #[cold]
    fn data_error(&self, row: usize, reason: String) -> DataError {
        DataError::Row {
            path: self.files.as_deref().map(|f| f.data.clone()),
            column: self.schema.name.clone(),
            row,
            reason,
        }
    }

    /// Offsets `row` and `row + 1`, if the offsets buffer has them.
    #[inline]
    fn raw_offsets(&self, row: usize) -> Option<(u64, u64)> {
        let off = self.offsets.as_ref()?;
        let at = row.checked_mul(8)?;
        let b = off.get(at..at.checked_add(16)?)?;
        Some((
            u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
        ))
    }

    /// Element range of `row`, checked: two comparisons on the offsets read.
    #[inline]
    fn range(&self, row: usize) -> Result<(usize, usize), DataError> {
        match self.raw_offsets(row) {
            Some((a, z)) if a <= z && z <= self.elements => Ok((a as usize, z as usize)),
            _ => Err(self.range_error(row)),
        }
    }

    #[cold]
    fn range_error(&self, row: usize) -> DataError {
        let Some(off) = &self.offsets else {
            return DataError::Kind {
                column: self.schema.name.clone(),
                expected: "token list or string",
                found: "int64",
            };
        };
        match self.raw_offsets(row) {
            None => self.row_error(
                row,
                format!(
                    "row is out of range: the offsets hold {} rows",
                    (off.len() / 8).saturating_sub(1)
                ),
            ),
            Some((a, z)) if a > z => self.row_error(
                row,
                format!("offsets decrease ({a} then {z}); offsets must never decrease"),
            ),
            Some((a, z)) => self.row_error(
                row,
                format!(
                    "offsets {a}..{z} run past the end of the data, which holds {} elements",
                    self.elements
                ),
            ),
        }
    }

    /// Element range of `row` (ids of a token column, bytes of a text
    /// column), checked against the data.
    pub fn row_range(&self, row: usize) -> Result<Range<usize>, DataError> {
        self.range(row).map(|(a, z)| a..z)
    }

    /// Checks that `row` can be read: offsets in order and in bounds, and
    /// text UTF-8 (what every accessor checks; `verify` runs it on every row).
    pub fn check_row(&self, row: usize) -> Result<(), DataError> {
        match self.schema.kind {
            ColumnKind::Int64 => Ok(()),
            ColumnKind::Tokens => self.range(row).map(|_| ()),
            ColumnKind::Text => self.text(row).map(|_| ()),
        }
    }

    /// Integer of `row` (int64 column); an error for another kind of
    /// column or a row past the data.
    #[inline]
    pub fn int(&self, row: usize) -> Result<i64, DataError> {
        if self.schema.kind != ColumnKind::Int64 {
            return Err(DataError::Kind {
                column: self.schema.name.clone(),
                expected: "int64",
                found: self.schema.kind.name(),
            });
        }
        row.checked_mul(8)
            .and_then(|a| self.data.get(a..a.checked_add(8)?))
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| self.data_error(row, "the row is past the end of the data".into()))
    }

    /// Number of elements of `row` (token column) or bytes (text column).
    #[inline]
    pub fn list_len(&self, row: usize) -> Result<usize, DataError> {
        let (a, b) = self.range(row)?;
        Ok(b - a)
    }

    /// Token ids of `row` (token column), read in place.
    #[inline]
    pub fn tokens(&self, row: usize) -> Result<TokenSlice<'_>, DataError> {
        let (a, b) = self.range(row)?;
        let w = self.schema.width as usize;
        // In bounds: b <= elements = data.len() / w.
        let bytes = &self.data[a * w..b * w];
        Ok(if w == 2 {
            TokenSlice::U16(bytes)
        } else {
            TokenSlice::U32(bytes)
        })
    }

    /// Hints the CPU to start loading row `row`'s bytes (up to 1 KiB), so a
    /// copy of it a few rows later does not wait on memory. No effect on
    /// architectures without a prefetch instruction, or for a row that
    /// cannot be read (reading it reports the error).
    #[inline]
    pub fn prefetch_row(&self, row: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let w = self.schema.width as usize;
            let bytes = match self.raw_offsets(row) {
                Some((a, z)) if a <= z && z <= self.elements => {
                    &self.data[a as usize * w..z as usize * w]
                }
                _ => return,
            };
            for line in (0..bytes.len().min(1024)).step_by(64) {
                // SAFETY: prefetch only hints the cache; the address is in bounds.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        bytes.as_ptr().add(line) as *const i8,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    /// String of `row` (text column), checked to be UTF-8.
    pub fn text(&self, row: usize) -> Result<&str, DataError> {
        let (a, b) = self.range(row)?;
        std::str::from_utf8(&self.data[a..b])
            .map_err(|e| self.data_error(row, format!("text is not valid UTF-8 ({e})")))
    }

    /// `row` as a [`Value`].
    pub fn value(&self, row: usize) -> Result<Value, DataError> {
        Ok(match self.schema.kind {
            ColumnKind::Int64 => Value::Int(self.int(row)?),
            ColumnKind::Tokens => Value::List(self.tokens(row)?.to_vec()),
            ColumnKind::Text => Value::Text(self.text(row)?.to_string()),
        })
    }
}

/// A dataset: named columns of equal length.
#[derive(Debug, Clone, Default)]
pub struct Table {
    len: usize,
    columns: Vec<Column>,
    fingerprint: Option<String>,
}

impl Table {
    /// Assembles a table; `columns` must all have `len` rows.
    pub fn from_columns(len: usize, columns: Vec<Column>) -> Self {
        Self {
            len,
            columns,
            fingerprint: None,
        }
    }

    /// Records a fingerprint computed elsewhere (the cache reader derives it
    /// from the manifest's checksums, in O(columns)).
    pub fn with_fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// A fingerprint of the table's contents: the recorded one, else a hash
    /// of the schema and every byte (O(size)).
    pub fn fingerprint(&self) -> String {
        if let Some(f) = &self.fingerprint {
            return f.clone();
        }
        let mut bytes = format!("{}:{:?}", self.len, self.schema()).into_bytes();
        for c in &self.columns {
            bytes.extend_from_slice(&crc32fast::hash(c.data()).to_le_bytes());
            if let Some(o) = c.offsets() {
                bytes.extend_from_slice(&crc32fast::hash(o).to_le_bytes());
            }
        }
        crate::hash::fingerprint(&bytes)
    }

    /// Builds a table from examples; the schema comes from the first one.
    pub fn from_examples(examples: impl IntoIterator<Item = Example>) -> Result<Self, DataError> {
        let mut builder = TableBuilder::new();
        for e in examples {
            builder.push(&e)?;
        }
        Ok(builder.finish())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The columns in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Column schemas in order.
    pub fn schema(&self) -> Vec<ColumnSchema> {
        self.columns.iter().map(|c| c.schema.clone()).collect()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.schema.name == name)
    }

    /// Row `i` as an example (allocates; the loader's hot path reads columns
    /// directly). Fails when the row's offsets or text are damaged (a cache
    /// checks them per row, not at open).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> Result<Example, DataError> {
        assert!(i < self.len, "row {i} of a table of {} rows", self.len);
        let mut e = Example::new();
        for c in &self.columns {
            e.set(&c.schema.name, c.value(i)?);
        }
        Ok(e)
    }

    /// Releases the resident pages of memory-mapped columns (see [`Bytes::release_pages`]).
    pub fn release_pages(&self) {
        for c in &self.columns {
            c.data.release_pages();
            if let Some(o) = &c.offsets {
                o.release_pages();
            }
        }
    }

    /// Total elements of list column `name` over all rows (0 if absent); O(1).
    pub fn list_elements(&self, name: &str) -> u64 {
        self.column(name)
            .and_then(|c| c.offsets())
            .filter(|o| o.len() >= 8)
            .map(|o| last_u64(o))
            .unwrap_or(0)
    }

    /// Rows `range` as a new table (copies them). Fails when an offset of
    /// the range is damaged.
    ///
    /// # Panics
    /// If `range` is not within `0..len()`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Table, DataError> {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "rows {range:?} of a table of {} rows",
            self.len
        );
        let mut columns = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let w = c.schema.width as usize;
            columns.push(match &c.offsets {
                None => Column::from_parts(
                    c.schema.clone(),
                    Bytes::owned(c.data[range.start * w..range.end * w].to_vec()),
                    None,
                ),
                Some(_) => {
                    // Every row's offsets checked: in order, in bounds.
                    let mut offsets = Vec::with_capacity((range.len() + 1) * 8);
                    offsets.extend_from_slice(&0u64.to_le_bytes());
                    let (mut first, mut last) = (0u64, 0u64);
                    for row in range.clone() {
                        let (a, z) = c.range(row)?;
                        if row == range.start {
                            first = a as u64;
                        }
                        last = z as u64;
                        offsets.extend_from_slice(&(last - first).to_le_bytes());
                    }
                    let data = c.data[first as usize * w..last as usize * w].to_vec();
                    Column::from_parts(
                        c.schema.clone(),
                        Bytes::owned(data),
                        Some(Bytes::owned(offsets)),
                    )
                }
            });
        }
        Ok(Table::from_columns(range.len(), columns))
    }

    /// Every row as an example, in order (see [`Table::row`]).
    pub fn rows(&self) -> impl Iterator<Item = Result<Example, DataError>> + '_ {
        (0..self.len).map(|i| self.row(i))
    }
}

enum Acc {
    Int(Vec<i64>),
    Tokens { values: Vec<u32>, offsets: Vec<u64> },
    Text { bytes: Vec<u8>, offsets: Vec<u64> },
}

/// Builds a [`Table`] row by row; the first row fixes the schema.
#[derive(Default)]
pub struct TableBuilder {
    names: Vec<String>,
    accs: Vec<Acc>,
    len: usize,
}

impl TableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rows pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no rows were pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one row; it must have exactly the first row's columns and kinds.
    pub fn push(&mut self, e: &Example) -> Result<(), DataError> {
        if self.len == 0 && self.names.is_empty() {
            for (name, v) in e.fields() {
                self.names.push(name.to_string());
                self.accs.push(match v {
                    Value::Int(_) => Acc::Int(Vec::new()),
                    Value::List(_) => Acc::Tokens {
                        values: Vec::new(),
                        offsets: vec![0],
                    },
                    Value::Text(_) => Acc::Text {
                        bytes: Vec::new(),
                        offsets: vec![0],
                    },
                });
            }
        }
        if e.len() != self.names.len() || e.names().any(|n| !self.names.iter().any(|m| m == n)) {
            return Err(DataError::Columns {
                row: self.len,
                found: e.names().collect::<Vec<_>>().join(", "),
                expected: self.names.join(", "),
            });
        }
        for (name, acc) in self.names.iter().zip(self.accs.iter_mut()) {
            let v = e.get(name).expect("checked above");
            match (acc, v) {
                (Acc::Int(vals), Value::Int(x)) => vals.push(*x),
                (Acc::Tokens { values, offsets }, Value::List(xs)) => {
                    for &x in xs {
                        let t = u32::try_from(x).map_err(|_| DataError::TokenRange {
                            column: name.clone(),
                            value: x,
                        })?;
                        values.push(t);
                    }
                    offsets.push(values.len() as u64);
                }
                (Acc::Text { bytes, offsets }, Value::Text(s)) => {
                    bytes.extend_from_slice(s.as_bytes());
                    offsets.push(bytes.len() as u64);
                }
                (acc, v) => {
                    return Err(DataError::Kind {
                        column: name.clone(),
                        expected: match acc {
                            Acc::Int(_) => "int64",
                            Acc::Tokens { .. } => "token list",
                            Acc::Text { .. } => "string",
                        },
                        found: v.kind_name(),
                    })
                }
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Finishes the table, storing token columns as u16 when every id fits.
    pub fn finish(self) -> Table {
        let columns = self
            .names
            .into_iter()
            .zip(self.accs)
            .map(|(name, acc)| match acc {
                Acc::Int(vals) => Column::from_parts(
                    ColumnSchema {
                        name,
                        kind: ColumnKind::Int64,
                        width: 8,
                    },
                    Bytes::owned(vals.iter().flat_map(|v| v.to_le_bytes()).collect()),
                    None,
                ),
                Acc::Tokens { values, offsets } => {
                    let narrow = values.iter().all(|&v| v <= u16::MAX as u32);
                    let data: Vec<u8> = if narrow {
                        values
                            .iter()
                            .flat_map(|&v| (v as u16).to_le_bytes())
                            .collect()
                    } else {
                        values.iter().flat_map(|v| v.to_le_bytes()).collect()
                    };
                    Column::from_parts(
                        ColumnSchema {
                            name,
                            kind: ColumnKind::Tokens,
                            width: if narrow { 2 } else { 4 },
                        },
                        Bytes::owned(data),
                        Some(offsets_bytes(&offsets)),
                    )
                }
                Acc::Text { bytes, offsets } => Column::from_parts(
                    ColumnSchema {
                        name,
                        kind: ColumnKind::Text,
                        width: 1,
                    },
                    Bytes::owned(bytes),
                    Some(offsets_bytes(&offsets)),
                ),
            })
            .collect();
        Table::from_columns(self.len, columns)
    }
}

fn offsets_bytes(offsets: &[u64]) -> Bytes {
    Bytes::owned(offsets.iter().flat_map(|v| v.to_le_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rows_and_narrows_tokens() {
        let rows = vec![
            Example::new()
                .with("id", Value::Int(-3))
                .with("token_ids", Value::List(vec![7, 8, 9]))
                .with("text", Value::Text("héllo".into())),
            Example::new()
                .with("id", Value::Int(4))
                .with("token_ids", Value::List(vec![]))
                .with("text", Value::Text(String::new())),
        ];
        let t = Table::from_examples(rows.clone()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.column("token_ids").unwrap().schema().width, 2);
        assert_eq!(t.rows().collect::<Result<Vec<_>, _>>().unwrap(), rows);
    }

    #[test]
    fn slices_copy_rows_exactly() {
        let rows: Vec<Example> = (0..7)
            .map(|i| {
                Example::new()
                    .with("id", Value::Int(i))
                    .with("t", Value::List((0..i).collect()))
                    .with("s", Value::Text("x".repeat(i as usize)))
            })
            .collect();
        let t = Table::from_examples(rows.clone()).unwrap();
        for (a, b) in [(0, 7), (2, 5), (3, 3), (6, 7)] {
            let s = t.slice(a..b).unwrap();
            assert_eq!(s.rows().collect::<Result<Vec<_>, _>>().unwrap(), rows[a..b]);
        }
    }

    #[test]
    fn wide_ids_use_u32() {
        let t = Table::from_examples(vec![
            Example::new().with("token_ids", Value::List(vec![70_000, 1]))
        ])
        .unwrap();
        let c = t.column("token_ids").unwrap();
        assert_eq!(c.schema().width, 4);
        assert_eq!(c.tokens(0).unwrap().to_vec(), vec![70_000, 1]);
    }

    #[test]
    fn rejects_mismatched_rows_and_negative_ids() {
        let mut b = TableBuilder::new();
        b.push(&Example::new().with("id", Value::Int(1))).unwrap();
        let err = b
            .push(&Example::new().with("idx", Value::Int(1)))
            .unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
        let err = Table::from_examples(vec![Example::new().with("t", Value::List(vec![-1]))])
            .unwrap_err();
        assert!(err.to_string().contains("`t`"), "{err}");
    }

    fn offsets(v: &[u64]) -> Bytes {
        Bytes::owned(v.iter().flat_map(|o| o.to_le_bytes()).collect())
    }

    #[test]
    fn damaged_offsets_and_text_are_row_errors_not_panics() {
        let tokens = Column::from_parts(
            ColumnSchema {
                name: "t".into(),
                kind: ColumnKind::Tokens,
                width: 2,
            },
            Bytes::owned(vec![1, 0, 2, 0, 3, 0]),
            Some(offsets(&[0, 2, 1, 3, 9, u64::MAX])),
        )
        .with_files("/c/col0.data".into(), Some("/c/col0.offsets".into()));
        assert_eq!(tokens.tokens(0).unwrap().to_vec(), [1, 2]);
        assert_eq!(tokens.tokens(2).unwrap().to_vec(), [2, 3]);
        for (row, what) in [(1, "decrease"), (3, "past the end"), (4, "past the end")] {
            let e = tokens.tokens(row).unwrap_err().to_string();
            assert!(
                e.contains("/c/col0.offsets")
                    && e.contains(&format!("row {row}"))
                    && e.contains(what),
                "{e}"
            );
            assert!(tokens.list_len(row).is_err() && tokens.check_row(row).is_err());
            tokens.prefetch_row(row);
        }
        assert!(tokens
            .tokens(5)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(tokens.tokens(usize::MAX).is_err());

        let text = Column::from_parts(
            ColumnSchema {
                name: "s".into(),
                kind: ColumnKind::Text,
                width: 1,
            },
            Bytes::owned("aé".as_bytes().to_vec()),
            Some(offsets(&[0, 2, 3])),
        )
        .with_files("/c/col1.data".into(), Some("/c/col1.offsets".into()));
        let e = text.text(0).unwrap_err().to_string();
        assert!(
            e.contains("/c/col1.data") && e.contains("row 0") && e.contains("UTF-8"),
            "{e}"
        );
        let t = Table::from_columns(2, vec![text]);
        assert!(t.row(1).is_err() && t.slice(0..2).is_ok());
        assert!(t.rows().all(|r| r.is_err()));
    }
}
