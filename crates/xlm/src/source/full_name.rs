use super::SourceError;
use std::fmt;

/// A parsed `full_name`: `repo/dataset/split` or `repo/dataset/config/split`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName {
    /// Repository (or owner) segment.
    pub repo: String,
    /// Dataset segment.
    pub dataset: String,
    /// Optional configuration segment.
    pub config: Option<String>,
    /// Split segment.
    pub split: String,
}

impl FullName {
    /// Parses a full name; any other number of non-empty segments is an error
    /// naming how many were found.
    pub fn parse(name: &str) -> Result<Self, SourceError> {
        let parts: Vec<&str> = name.trim_matches('/').split('/').collect();
        let bad = || SourceError::FullName {
            name: name.to_string(),
            segments: if name.trim_matches('/').is_empty() {
                0
            } else {
                parts.len()
            },
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [r, d, s] => Ok(Self {
                repo: r.to_string(),
                dataset: d.to_string(),
                config: None,
                split: s.to_string(),
            }),
            [r, d, c, s] => Ok(Self {
                repo: r.to_string(),
                dataset: d.to_string(),
                config: Some(c.to_string()),
                split: s.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    /// The same dataset with another split.
    pub fn with_split(&self, split: &str) -> Self {
        Self {
            split: split.to_string(),
            ..self.clone()
        }
    }

    /// `repo/dataset[/config]` without the split.
    pub fn dataset_path(&self) -> String {
        match &self.config {
            Some(c) => format!("{}/{}/{}", self.repo, self.dataset, c),
            None => format!("{}/{}", self.repo, self.dataset),
        }
    }
}

impl fmt::Display for FullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dataset_path(), self.split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_segments() {
        let n = FullName::parse("mem/raw/train").unwrap();
        assert_eq!(
            (n.repo.as_str(), n.dataset.as_str(), n.split.as_str()),
            ("mem", "raw", "train")
        );
        let n = FullName::parse("a/b/c/d").unwrap();
        assert_eq!(n.config.as_deref(), Some("c"));
        assert_eq!(n.to_string(), "a/b/c/d");
    }

    #[test]
    fn other_shapes_name_the_segment_count() {
        for (name, n) in [("a/b", 2), ("a/b/c/d/e", 5), ("", 0), ("x", 1)] {
            let e = FullName::parse(name).unwrap_err().to_string();
            assert!(e.contains(&format!("has {n} path segment")), "{e}");
        }
    }
}
