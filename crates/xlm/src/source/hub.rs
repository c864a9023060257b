//! The Hugging Face Hub source: dataset files from the Hub, through the
//! local hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
//! `~/.cache/huggingface/hub`, the layout `huggingface_hub` uses).
//!
//! Online, the repository's file list comes from the Hub API and missing
//! files are downloaded into the cache (the `hf-hub` crate). Offline
//! (`HF_HUB_OFFLINE=1`, or [`HubSource::new`] with `offline`), only the
//! cache is read and nothing touches the network.
//!
//! A split's files are those whose name starts with the split
//! (`train.jsonl`, `data/train-00000-of-00002.parquet`) or that sit in a
//! directory named after it (`default/train/0000.parquet`), under the
//! config's directory when `full_name` has one; jsonl/json, csv and parquet.

use super::local::{count_csv, count_jsonl, read_chunked, read_csv, read_jsonl, read_table, OnRow};
use super::{ChunkSink, FullName, Source, SourceError};
use crate::data::Table;
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// Dataset splits from the Hugging Face Hub (or its local cache).
#[derive(Debug, Clone)]
pub struct HubSource {
    cache_dir: PathBuf,
    offline: bool,
    revision: String,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl HubSource {
    /// A source over the hub cache at `cache_dir` (the `hub` directory).
    pub fn new(cache_dir: PathBuf, offline: bool) -> Self {
        Self {
            cache_dir,
            offline,
            revision: "main".into(),
        }
    }

    /// From the environment: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`; offline when `HF_HUB_OFFLINE` (or
    /// `HF_DATASETS_OFFLINE`) is 1/true/yes.
    pub fn from_env() -> Self {
        let cache_dir = crate::hf_env::hub_cache_dir();
        let offline = ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|x| truthy(&x)));
        Self::new(cache_dir, offline)
    }

    /// Uses another revision (branch, tag or commit) than `main`.
    pub fn with_revision(mut self, revision: &str) -> Self {
        self.revision = revision.to_string();
        self
    }

    fn repo(&self, name: &FullName) -> Repo {
        Repo::with_revision(
            format!("{}/{}", name.repo, name.dataset),
            RepoType::Dataset,
            self.revision.clone(),
        )
    }

    fn hub_error(&self, name: &FullName, reason: String) -> SourceError {
        SourceError::NoSource {
            name: name.to_string(),
            hint: reason,
        }
    }

    /// The snapshot directory of the cached revision, if any.
    fn snapshot(&self, name: &FullName) -> Option<PathBuf> {
        let repo_dir = self.cache_dir.join(self.repo(name).folder_name());
        let commit = std::fs::read_to_string(repo_dir.join("refs").join(&self.revision)).ok()?;
        let dir = repo_dir.join("snapshots").join(commit.trim());
        dir.is_dir().then_some(dir)
    }

    /// The local paths of the split's files, downloading them when online.
    pub fn split_files(&self, name: &FullName) -> Result<Vec<PathBuf>, SourceError> {
        let cached = self.snapshot(name).map(|dir| {
            let mut files = Vec::new();
            list_files(&dir, &dir, &mut files);
            (dir, files)
        });
        if let Some((dir, files)) = &cached {
            let chosen = select_split_files(files, name.config.as_deref(), &name.split);
            if !chosen.is_empty() || self.offline {
                return self.nonempty(name, chosen.into_iter().map(|f| dir.join(f)).collect());
            }
        }
        if self.offline {
            return Err(self.hub_error(
                name,
                format!(
                    "dataset {}/{} (revision {}) is not in the hub cache at {} and offline mode is on (HF_HUB_OFFLINE); download it once online, or point HF_HOME / HF_HUB_CACHE at a cache that has it",
                    name.repo,
                    name.dataset,
                    self.revision,
                    self.cache_dir.display()
                ),
            ));
        }
        let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(self.cache_dir.clone()))
            .with_progress(false)
            .build()
            .map_err(|e| self.hub_error(name, format!("cannot start the Hub client: {e}")))?;
        let repo = api.repo(self.repo(name));
        let info = repo.info().map_err(|e| {
            self.hub_error(
                name,
                format!(
                    "cannot list the files of {}/{} on the Hub: {e}",
                    name.repo, name.dataset
                ),
            )
        })?;
        let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
        let chosen = select_split_files(&files, name.config.as_deref(), &name.split);
        let paths = chosen
            .iter()
            .map(|f| {
                repo.get(f)
                    .map_err(|e| self.hub_error(name, format!("cannot download {f}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.nonempty(name, paths)
    }

    fn nonempty(&self, name: &FullName, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, SourceError> {
        if paths.is_empty() {
            return Err(self.hub_error(
                name,
                format!(
                    "no jsonl/json/csv/parquet file of split `{}`{} in {}/{}",
                    name.split,
                    name.config
                        .as_deref()
                        .map(|c| format!(" (config `{c}`)"))
                        .unwrap_or_default(),
                    name.repo,
                    name.dataset
                ),
            ));
        }
        Ok(paths)
    }

    fn read<E: From<SourceError>>(
        &self,
        name: &FullName,
        on_row: &mut OnRow<'_, E>,
    ) -> Result<(), E> {
        for path in self.split_files(name)? {
            match extension(&path).as_str() {
                "jsonl" | "json" => read_jsonl(&path, on_row)?,
                "csv" => read_csv(&path, on_row)?,
                "parquet" => super::parquet::read_parquet(&path, on_row)?,
                other => unreachable!("select_split_files only picks known formats, not {other}"),
            }
        }
        Ok(())
    }
}

fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            list_files(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The files (repository-relative paths) that hold `split`, sorted.
pub fn select_split_files(files: &[String], config: Option<&str>, split: &str) -> Vec<String> {
    let mut out: Vec<String> = files
        .iter()
        .filter(|f| {
            matches!(
                extension(Path::new(f)).as_str(),
                "jsonl" | "json" | "csv" | "parquet"
            )
        })
        .filter(|f| config.is_none_or(|c| f.split('/').any(|part| part == c)))
        .filter(|f| {
            let parts: Vec<&str> = f.split('/').collect();
            let file = parts.last().copied().unwrap_or("");
            let stem = file.split('.').next().unwrap_or("");
            let in_dir = parts[..parts.len() - 1].contains(&split);
            in_dir
                || stem == split
                || [format!("{split}-"), format!("{split}_")]
                    .iter()
                    .any(|p| stem.starts_with(p.as_str()))
        })
        .cloned()
        .collect();
    out.sort();
    out
}

impl Source for HubSource {
    fn load(&self, name: &FullName) -> Result<Table, SourceError> {
        read_table(|on_row| self.read(name, on_row))
    }

    fn load_chunks(
        &self,
        name: &FullName,
        chunk_rows: usize,
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), SourceError> {
        read_chunked(chunk_rows, sink, |on_row| self.read(name, on_row))
    }

    fn num_rows(&self, name: &FullName) -> Result<usize, SourceError> {
        let mut n = 0;
        for path in self.split_files(name)? {
            n += match extension(&path).as_str() {
                "jsonl" | "json" => count_jsonl(&path)?,
                "csv" => count_csv(&path)?,
                "parquet" => super::parquet::count_parquet(&path)?,
                other => unreachable!("select_split_files only picks known formats, not {other}"),
            };
        }
        Ok(n)
    }

    fn describe(&self) -> String {
        format!(
            "Hugging Face Hub ({}{})",
            self.cache_dir.display(),
            if self.offline { ", offline" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_files_follow_hub_conventions() {
        let files: Vec<String> = [
            "README.md",
            "data/train-00001-of-00002.parquet",
            "data/train-00000-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
            "train.jsonl",
            "plain_text/train/0000.parquet",
            "plain_text/validation/0000.parquet",
            "trainer.jsonl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            select_split_files(&files, None, "train"),
            [
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet",
                "plain_text/train/0000.parquet",
                "train.jsonl"
            ]
        );
        assert_eq!(
            select_split_files(&files, Some("plain_text"), "train"),
            ["plain_text/train/0000.parquet"]
        );
        assert!(select_split_files(&files, None, "dev").is_empty());
    }

    #[test]
    fn offline_cache_counts_rows_and_slices_across_split_files() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("datasets--org--toy");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123").unwrap();
        let snap = repo.join("snapshots/abc123/data");
        std::fs::create_dir_all(&snap).unwrap();
        let jsonl: String = (0..4).map(|i| format!("{{\"id\": {i}}}\n")).collect();
        std::fs::write(snap.join("train-00000-of-00002.jsonl"), jsonl).unwrap();
        std::fs::write(snap.join("train-00001-of-00002.csv"), "id\n4\n5\n6\n").unwrap();
        let hub = HubSource::new(d.path().to_path_buf(), true);
        let name = |s: &str| FullName::parse(s).unwrap();
        assert_eq!(hub.num_rows(&name("org/toy/train")).unwrap(), 7);
        let ids = |s: &str| -> Vec<i64> {
            crate::source::load_selected(&hub, &name(s))
                .unwrap()
                .rows()
                .map(|e| e.unwrap().int("id").unwrap())
                .collect()
        };
        assert_eq!(ids("org/toy/train[3:-2]"), [3, 4]);
        assert_eq!(ids("org/toy/train[-2:]"), [5, 6]);
        assert_eq!(ids("org/toy/train[:50%]"), [0, 1, 2, 3]); // 3.5 -> 4
    }
}
