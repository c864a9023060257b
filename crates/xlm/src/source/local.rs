use super::{FullName, Source, SourceError};
use crate::data::{Example, Table, TableBuilder, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// File formats of [`LocalFiles`] (the `ds_type` config key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalFormat {
    /// One JSON object per line (`json` is accepted as the same format, as in
    /// Hugging Face `load_dataset("json", ...)`).
    #[serde(alias = "json")]
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// The `data_files` config key: one file, a list, or a map from split to
/// file(s), as in Hugging Face `load_dataset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataFiles {
    /// One file for every split.
    One(PathBuf),
    /// Several files, concatenated in order, for every split.
    Many(Vec<PathBuf>),
    /// Files per split name.
    PerSplit(BTreeMap<String, OneOrMany>),
}

/// A file or a list of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One file.
    One(PathBuf),
    /// Several files.
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    fn paths(&self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(p) => vec![p.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Rows from local jsonl or csv files (the `LocalDatasetManager` case).
///
/// Value kinds: JSON integers become int64 columns, arrays of integers token
/// lists, strings strings. In csv, a cell that parses as an integer is int64,
/// one that parses as a JSON array of integers (`"[7, 8]"`) is a token list,
/// anything else a string. Every row must have the same columns and kinds.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    format: LocalFormat,
    files: DataFiles,
}

impl LocalFiles {
    /// A source reading `files` in `format`.
    pub fn new(format: LocalFormat, files: DataFiles) -> Self {
        Self { format, files }
    }

    fn files_for(&self, split: &str) -> Result<Vec<PathBuf>, SourceError> {
        match &self.files {
            DataFiles::One(p) => Ok(vec![p.clone()]),
            DataFiles::Many(v) => Ok(v.clone()),
            DataFiles::PerSplit(m) => {
                m.get(split)
                    .map(|f| f.paths())
                    .ok_or_else(|| SourceError::NoSplit {
                        split: split.to_string(),
                        available: m.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            }
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn json_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().map(Value::Int),
        serde_json::Value::String(s) => Some(Value::Text(s.clone())),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|x| x.as_i64())
            .collect::<Option<Vec<_>>>()
            .map(Value::List),
        _ => None,
    }
}

pub(crate) fn push(
    builder: &mut TableBuilder,
    e: Example,
    path: &Path,
    line: usize,
) -> Result<(), SourceError> {
    builder.push(&e).map_err(|err| SourceError::Parse {
        path: path.to_path_buf(),
        line,
        reason: err.to_string(),
    })
}

/// Collects the rows `read` produces into one table.
pub(crate) fn read_table(
    read: impl FnOnce(&mut OnRow<'_, SourceError>) -> Result<(), SourceError>,
) -> Result<Table, SourceError> {
    let mut builder = TableBuilder::new();
    read(&mut |e, path, line| push(&mut builder, e, path, line))?;
    Ok(builder.finish())
}

/// Streams the rows `read` produces to `sink` as tables of `chunk_rows` rows.
pub(crate) fn read_chunked(
    chunk_rows: usize,
    sink: &mut super::ChunkSink<'_>,
    read: impl FnOnce(&mut OnRow<'_, SourceError>) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let mut builder = TableBuilder::new();
    read(&mut |e, path, line| {
        push(&mut builder, e, path, line)?;
        if builder.len() >= chunk_rows {
            sink(std::mem::take(&mut builder).finish())?;
        }
        Ok(())
    })?;
    if !builder.is_empty() {
        sink(builder.finish())?;
    }
    Ok(())
}

/// Rows of one file, each with its path and line number.
pub(crate) type OnRow<'a, E> = dyn FnMut(Example, &Path, usize) -> Result<(), E> + 'a;

/// One jsonl line as an example (`None` for a blank line).
fn parse_jsonl_line(
    path: &Path,
    lineno: usize,
    line: &str,
) -> Result<Option<Example>, SourceError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let parse_err = |reason: String| SourceError::Parse {
        path: path.to_path_buf(),
        line: lineno,
        reason,
    };
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| parse_err(format!("not a JSON object: {e}")))?;
    let mut e = Example::new();
    for (k, v) in &obj {
        let value = json_value(v).ok_or_else(|| {
            parse_err(format!(
                "key `{k}`: {v} is not an integer, a string or a list of integers"
            ))
        })?;
        e.set(k, value);
    }
    Ok(Some(e))
}

/// Lines parsed together (in parallel) before they are handed on in order.
const PARSE_BLOCK: usize = 8192;

/// Reads a jsonl file; blocks of lines are parsed in parallel (rayon) and
/// handed to `on_row` in file order.
pub(crate) fn read_jsonl<E: From<SourceError>>(
    path: &Path,
    on_row: &mut OnRow<'_, E>,
) -> Result<(), E> {
    use rayon::prelude::*;
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, f).lines();
    let mut lineno = 0;
    loop {
        let mut block = Vec::with_capacity(PARSE_BLOCK);
        for line in lines.by_ref().take(PARSE_BLOCK) {
            block.push(line.map_err(io(path))?);
        }
        if block.is_empty() {
            return Ok(());
        }
        let first = lineno + 1;
        lineno += block.len();
        let parsed: Vec<Result<Option<Example>, SourceError>> = block
            .par_iter()
            .enumerate()
            .map(|(i, l)| parse_jsonl_line(path, first + i, l))
            .collect();
        for (i, p) in parsed.into_iter().enumerate() {
            if let Some(e) = p? {
                on_row(e, path, first + i)?;
            }
        }
    }
}

/// The rows [`read_jsonl`] yields from `path` (its non-blank lines),
/// counted without parsing them: resolves split-instruction bounds of a
/// large file with one cheap pass and constant memory.
pub(crate) fn count_jsonl(path: &Path) -> Result<usize, SourceError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let (mut line, mut n) = (String::new(), 0);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io(path))? == 0 {
            return Ok(n);
        }
        if !line.trim().is_empty() {
            n += 1;
        }
    }
}

/// The records [`read_csv`] yields from `path`, counted without converting
/// their cells.
pub(crate) fn count_csv(path: &Path) -> Result<usize, SourceError> {
    let fail = |line: usize, e: csv::Error| SourceError::Parse {
        path: path.to_path_buf(),
        line,
        reason: e.to_string(),
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| fail(0, e))?;
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| fail(n + 2, e))?
    {
        n += 1;
    }
    Ok(n)
}

fn csv_value(cell: &str) -> Value {
    if let Ok(i) = cell.trim().parse::<i64>() {
        return Value::Int(i);
    }
    if cell.trim_start().starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<i64>>(cell) {
            return Value::List(v);
        }
    }
    Value::Text(cell.to_string())
}

pub(crate) fn read_csv<E: From<SourceError>>(
    path: &Path,
    on_row: &mut OnRow<'_, E>,
) -> Result<(), E> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| SourceError::Parse {
        path: path.to_path_buf(),
        line: 0,
        reason: e.to_string(),
    })?;
    let headers = reader
        .headers()
        .map_err(|e| SourceError::Parse {
            path: path.to_path_buf(),
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    for (i, rec) in reader.records().enumerate() {
        let lineno = i + 2;
        let rec = rec.map_err(|e| SourceError::Parse {
            path: path.to_path_buf(),
            line: lineno,
            reason: e.to_string(),
        })?;
        let mut e = Example::new();
        for (h, cell) in headers.iter().zip(rec.iter()) {
            e.set(h, csv_value(cell));
        }
        on_row(e, path, lineno)?;
    }
    Ok(())
}

impl LocalFiles {
    fn read<E: From<SourceError>>(
        &self,
        name: &FullName,
        on_row: &mut OnRow<'_, E>,
    ) -> Result<(), E> {
        for path in self.files_for(&name.split)? {
            match self.format {
                LocalFormat::Jsonl => read_jsonl(&path, on_row)?,
                LocalFormat::Csv => read_csv(&path, on_row)?,
            }
        }
        Ok(())
    }
}

impl Source for LocalFiles {
    fn load(&self, name: &FullName) -> Result<Table, SourceError> {
        read_table(|on_row| self.read(name, on_row))
    }

    fn load_chunks(
        &self,
        name: &FullName,
        chunk_rows: usize,
        sink: &mut super::ChunkSink<'_>,
    ) -> Result<(), SourceError> {
        read_chunked(chunk_rows, sink, |on_row| self.read(name, on_row))
    }

    fn num_rows(&self, name: &FullName) -> Result<usize, SourceError> {
        let mut n = 0;
        for path in self.files_for(&name.split)? {
            n += match self.format {
                LocalFormat::Jsonl => count_jsonl(&path)?,
                LocalFormat::Csv => count_csv(&path)?,
            };
        }
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("local {:?} files", self.format).to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_and_csv_with_kinds() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("a.jsonl");
        std::fs::write(&j, "{\"id\": 1, \"token_ids\": [7, 8], \"text\": \"x\"}\n\n{\"id\": 2, \"token_ids\": [], \"text\": \"y\"}\n").unwrap();
        let c = d.path().join("a.csv");
        std::fs::write(&c, "id,token_ids,text\n1,\"[7, 8]\",x\n2,[],y\n").unwrap();
        let name = FullName::parse("local/a/train").unwrap();
        let tj = LocalFiles::new(LocalFormat::Jsonl, DataFiles::One(j))
            .load(&name)
            .unwrap();
        let tc = LocalFiles::new(LocalFormat::Csv, DataFiles::One(c))
            .load(&name)
            .unwrap();
        assert_eq!(tj.len(), 2);
        let rows = |t: &Table| t.rows().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(rows(&tj), rows(&tc));
    }

    #[test]
    fn row_counts_match_what_is_read() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("c.jsonl");
        std::fs::write(&j, "{\"id\": 1}\n  \n{\"id\": 2}\r\n\n{\"id\": 3}").unwrap();
        let c = d.path().join("c.csv");
        std::fs::write(&c, "id,text\n1,\"a\nb\"\n2,c\n").unwrap();
        let name = FullName::parse("local/c/train").unwrap();
        for (format, path, rows) in [(LocalFormat::Jsonl, j, 3), (LocalFormat::Csv, c, 2)] {
            let src = LocalFiles::new(format, DataFiles::Many(vec![path.clone(), path]));
            assert_eq!(src.load(&name).unwrap().len(), 2 * rows);
            assert_eq!(src.num_rows(&name).unwrap(), 2 * rows);
        }
    }

    #[test]
    fn errors_name_file_line_and_split() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("b.jsonl");
        std::fs::write(&j, "{\"id\": 1}\n{\"id\": 1.5}\n").unwrap();
        let name = FullName::parse("local/b/train").unwrap();
        let e = LocalFiles::new(LocalFormat::Jsonl, DataFiles::One(j.clone()))
            .load(&name)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.jsonl:2") && e.contains("`id`"), "{e}");
        let files = DataFiles::PerSplit([("test".to_string(), OneOrMany::One(j))].into());
        let e = LocalFiles::new(LocalFormat::Jsonl, files)
            .load(&name)
            .unwrap_err()
            .to_string();
        assert!(e.contains("split `train`") && e.contains("test"), "{e}");
        let e = LocalFiles::new(
            LocalFormat::Csv,
            DataFiles::One(d.path().join("missing.csv")),
        )
        .load(&name)
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing.csv"), "{e}");
    }
}
