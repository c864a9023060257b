use super::DataError;
use serde::{Deserialize, Serialize};

/// One value of an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A 64-bit integer (e.g. `id`).
    Int(i64),
    /// A list of integers (token ids, masks, type ids, source ids).
    List(Vec<i64>),
    /// A string (e.g. `text`).
    Text(String),
}

impl Value {
    /// The kind's name, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int64",
            Value::List(_) => "token list",
            Value::Text(_) => "string",
        }
    }
}

/// One row: named values in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Example {
    fields: Vec<(String, Value)>,
}

impl Example {
    /// An empty example.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder-style [`Example::set`].
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.set(name, value);
        self
    }

    /// Sets a field, replacing an existing one of the same name in place.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.to_string(), value)),
        }
    }

    /// The field called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Removes and returns a field.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let pos = self.fields.iter().position(|(n, _)| n == name)?;
        Some(self.fields.remove(pos).1)
    }

    /// Sets every field of `other` (as `dict.update`): a field of the same
    /// name is replaced in place, a new one is appended.
    pub fn update(&mut self, other: Example) {
        for (name, value) in other.fields {
            match self.fields.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v = value,
                None => self.fields.push((name, value)),
            }
        }
    }

    /// Keeps only the fields for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.fields.retain(|(n, _)| keep(n));
    }

    /// Field names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// (name, value) pairs in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the example has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn missing(&self, name: &str) -> DataError {
        DataError::MissingColumn {
            column: name.to_string(),
            present: self.names().collect::<Vec<_>>().join(", "),
        }
    }

    /// The integer field `name`, or an error naming what is wrong.
    pub fn int(&self, name: &str) -> Result<i64, DataError> {
        match self.get(name) {
            Some(Value::Int(v)) => Ok(*v),
            Some(other) => Err(kind_error(name, "int64", other)),
            None => Err(self.missing(name)),
        }
    }

    /// The list field `name`, or an error naming what is wrong.
    pub fn list(&self, name: &str) -> Result<&[i64], DataError> {
        match self.get(name) {
            Some(Value::List(v)) => Ok(v),
            Some(other) => Err(kind_error(name, "token list", other)),
            None => Err(self.missing(name)),
        }
    }

    /// The string field `name`, or an error naming what is wrong.
    pub fn text(&self, name: &str) -> Result<&str, DataError> {
        match self.get(name) {
            Some(Value::Text(v)) => Ok(v),
            Some(other) => Err(kind_error(name, "string", other)),
            None => Err(self.missing(name)),
        }
    }
}

fn kind_error(name: &str, expected: &'static str, found: &Value) -> DataError {
    DataError::Kind {
        column: name.to_string(),
        expected,
        found: found.kind_name(),
    }
}
