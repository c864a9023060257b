//! Parquet split files, row by row (the `parquet` feature; without it a
//! parquet file is an error that names the feature).

use super::local::OnRow;
use super::SourceError;
use std::path::Path;

#[cfg(feature = "parquet")]
mod imp {
    use super::*;
    use crate::data::{Example, Value};

    fn parquet_value(field: &parquet::record::Field) -> Option<Value> {
        use parquet::record::Field as F;
        Some(match field {
            F::Bool(b) => Value::Int(*b as i64),
            F::Byte(x) => Value::Int(*x as i64),
            F::Short(x) => Value::Int(*x as i64),
            F::Int(x) => Value::Int(*x as i64),
            F::Long(x) => Value::Int(*x),
            F::UByte(x) => Value::Int(*x as i64),
            F::UShort(x) => Value::Int(*x as i64),
            F::UInt(x) => Value::Int(*x as i64),
            F::ULong(x) => Value::Int(i64::try_from(*x).ok()?),
            F::Str(s) => Value::Text(s.clone()),
            F::ListInternal(list) => Value::List(
                list.elements()
                    .iter()
                    .map(|e| match parquet_value(e) {
                        Some(Value::Int(i)) => Some(i),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }

    /// The rows of a parquet file, from its metadata (nothing is decoded).
    pub(crate) fn count_parquet(path: &Path) -> Result<usize, SourceError> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = SerializedFileReader::new(file).map_err(|e| SourceError::Parse {
            path: path.to_path_buf(),
            line: 0,
            reason: format!("not a parquet file: {e}"),
        })?;
        let rows = reader.metadata().file_metadata().num_rows();
        Ok(usize::try_from(rows).unwrap_or(0))
    }

    pub(crate) fn read_parquet<E: From<SourceError>>(
        path: &Path,
        on_row: &mut OnRow<'_, E>,
    ) -> Result<(), E> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let fail = |line: usize, reason: String| SourceError::Parse {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| fail(0, format!("not a parquet file: {e}")))?;
        let rows = reader
            .get_row_iter(None)
            .map_err(|e| fail(0, e.to_string()))?;
        for (i, row) in rows.enumerate() {
            let row = row.map_err(|e| fail(i + 1, e.to_string()))?;
            let mut e = Example::new();
            for (name, field) in row.get_column_iter() {
                let v = parquet_value(field).ok_or_else(|| fail(i + 1, format!("column `{name}`: {field} is not an integer, a string or a list of integers")))?;
                e.set(name, v);
            }
            on_row(e, path, i + 1)?;
        }
        Ok(())
    }
}

#[cfg(feature = "parquet")]
pub(crate) use imp::{count_parquet, read_parquet};

/// Without the `parquet` feature: the same error as [`read_parquet`].
#[cfg(not(feature = "parquet"))]
pub(crate) fn count_parquet(path: &Path) -> Result<usize, SourceError> {
    read_parquet::<SourceError>(path, &mut |_, _, _| Ok(())).map(|_| 0)
}

/// Without the `parquet` feature: an error naming the file and the feature.
#[cfg(not(feature = "parquet"))]
pub(crate) fn read_parquet<E: From<SourceError>>(
    path: &Path,
    _on_row: &mut OnRow<'_, E>,
) -> Result<(), E> {
    Err(SourceError::Parse {
        path: path.to_path_buf(),
        line: 0,
        reason: "this xlm was built without the `parquet` feature; enable it to read parquet files"
            .into(),
    }
    .into())
}
