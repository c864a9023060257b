//! `xlm inspect`: what a cache holds — rows, schema, token statistics and a
//! few examples — without reading more than the statistics need.

use serde::Serialize;
use xlm::data::{ColumnKind, DataError, Table, Value};
use xlm::tokenizer::Tokenizer;

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnSummary {
    /// Name.
    pub name: String,
    /// `int64`, `tokens` or `text`.
    pub kind: ColumnKind,
    /// Bytes per stored element.
    pub width: u8,
    /// Total ids (token columns) or bytes (text columns).
    pub elements: u64,
    /// Shortest row (lists and text).
    pub min_len: Option<u64>,
    /// Mean row length.
    pub mean_len: Option<f64>,
    /// Longest row.
    pub max_len: Option<u64>,
    /// Smallest value (int64 and token columns).
    pub min_value: Option<i64>,
    /// Largest value.
    pub max_value: Option<i64>,
}

/// What `xlm inspect` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheSummary {
    /// Number of rows.
    pub rows: u64,
    /// One entry per column.
    pub columns: Vec<ColumnSummary>,
    /// The first rows, token columns decoded when a tokenizer is given.
    pub examples: Vec<serde_json::Value>,
}

/// Summarises `table`, with `examples` example rows (decoded by `tokenizer` if given).
///
/// Reads every row's offsets (for the length statistics), so a damaged row
/// is an error naming its file and row.
pub fn summarize(
    table: &Table,
    examples: usize,
    tokenizer: Option<&dyn Tokenizer>,
) -> Result<CacheSummary, DataError> {
    let n = table.len();
    let columns = table
        .columns()
        .iter()
        .map(|c| -> Result<ColumnSummary, DataError> {
            let s = c.schema();
            let mut out = ColumnSummary {
                name: s.name.clone(),
                kind: s.kind,
                width: s.width,
                elements: 0,
                min_len: None,
                mean_len: None,
                max_len: None,
                min_value: None,
                max_value: None,
            };
            match s.kind {
                ColumnKind::Int64 => {
                    out.elements = n as u64;
                    for i in 0..n {
                        let v = c.int(i)?;
                        out.min_value = Some(out.min_value.map_or(v, |m: i64| m.min(v)));
                        out.max_value = Some(out.max_value.map_or(v, |m: i64| m.max(v)));
                    }
                }
                ColumnKind::Tokens | ColumnKind::Text => {
                    let (mut lo, mut hi) = (u64::MAX, 0u64);
                    for i in 0..n {
                        let len = c.list_len(i)? as u64;
                        (lo, hi) = (lo.min(len), hi.max(len));
                    }
                    out.elements = table.list_elements(&s.name);
                    out.min_len = (n > 0).then_some(lo);
                    out.max_len = (n > 0).then_some(hi);
                    out.mean_len = (n > 0).then(|| out.elements as f64 / n as f64);
                    if s.kind == ColumnKind::Tokens {
                        let values = c.data().len() / s.width as usize;
                        let all = xlm::data::TokenSlice::from_column_data(c.data(), s.width);
                        let (lo, hi) = (0..values)
                            .map(|i| all.get(i))
                            .fold((u32::MAX, 0u32), |(lo, hi), v| (lo.min(v), hi.max(v)));
                        if values > 0 {
                            out.min_value = Some(lo as i64);
                            out.max_value = Some(hi as i64);
                        }
                    }
                }
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    let examples = (0..n.min(examples))
        .map(|i| {
            let mut obj = serde_json::Map::new();
            for (name, v) in table.row(i)?.fields() {
                let json = match (v, tokenizer) {
                    (Value::List(ids), Some(t))
                        if table
                            .column(name)
                            .is_some_and(|c| c.schema().kind == ColumnKind::Tokens)
                            && name != "attention_mask"
                            && name != "token_type_ids" =>
                    {
                        serde_json::Value::String(
                            t.decode(&ids.iter().map(|&x| x as u32).collect::<Vec<_>>()),
                        )
                    }
                    _ => serde_json::to_value(v).expect("values serialise"),
                };
                obj.insert(name.to_string(), json);
            }
            Ok(serde_json::Value::Object(obj))
        })
        .collect::<Result<_, DataError>>()?;
    Ok(CacheSummary {
        rows: n as u64,
        columns,
        examples,
    })
}

impl std::fmt::Display for CacheSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rows: {}", self.rows)?;
        writeln!(
            f,
            "{:<18} {:<7} {:>5} {:>14} {:>8} {:>10} {:>8} {:>10} {:>10}",
            "column", "kind", "width", "elements", "min len", "mean len", "max len", "min", "max"
        )?;
        let opt = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let opti = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        for c in &self.columns {
            writeln!(
                f,
                "{:<18} {:<7} {:>5} {:>14} {:>8} {:>10} {:>8} {:>10} {:>10}",
                c.name,
                format!("{:?}", c.kind).to_lowercase(),
                c.width,
                c.elements,
                opt(c.min_len),
                c.mean_len
                    .map(|m| format!("{m:.1}"))
                    .unwrap_or_else(|| "-".into()),
                opt(c.max_len),
                opti(c.min_value),
                opti(c.max_value)
            )?;
        }
        for (i, e) in self.examples.iter().enumerate() {
            writeln!(f, "example {i}: {e}")?;
        }
        Ok(())
    }
}
