//! prepare_data: download -> split -> filter -> preprocess -> cache.

use super::config::SplitSide;
use super::{DatasetManager, PrepareArgs};
use crate::cache;
use crate::data::{Table, TableBuilder};
use crate::plan::Rng;
use crate::registry::{Ctx, Kwargs, ProcessError};
use crate::Result;

impl DatasetManager {
    /// Downloads, preprocesses and caches the dataset (run on rank 0).
    ///
    /// - `use_manual_cache = false`: download + preprocess, return it, write nothing;
    /// - cache missing: download, filter, preprocess, write the cache, return it;
    /// - cache present and `rewrite_manual_cache`: download again, replace the cache, return it;
    /// - cache present: return it if `load`, else `None`.
    pub fn prepare_data(&self, args: &PrepareArgs) -> Result<Option<Table>> {
        if !self.config.use_manual_cache {
            return Ok(Some(self.download_and_preprocess(args)?));
        }
        let dir = self.cache_dir(&args.manual_cache_dir);
        if cache::is_cache(&dir) && !self.config.rewrite_manual_cache {
            return Ok(if args.load {
                Some(cache::open(&dir)?)
            } else {
                None
            });
        }
        let table = self.download_and_preprocess(args)?;
        cache::write(&table, &dir)?;
        Ok(Some(cache::open(&dir)?))
    }

    fn download_and_preprocess(&self, args: &PrepareArgs) -> Result<Table> {
        let raw = self.download()?;
        self.preprocess(raw, args)
    }

    /// Rows from the source; with `train_test_split`, the chosen side of the
    /// `train` split.
    pub(crate) fn download(&self) -> Result<Table> {
        let Some(tts) = &self.config.train_test_split else {
            return Ok(self.source.load(&self.full_name)?);
        };
        let table = self.source.load(&self.full_name.with_split("train"))?;
        let n = table.len();
        let n_test = if tts.size < 1.0 {
            (tts.size * n as f64).ceil() as usize
        } else {
            tts.size as usize
        };
        if n_test >= n {
            return Err(super::ConfigError::Invalid {
                key: "train_test_split.size",
                reason: format!("a test side of {n_test} rows leaves no train rows out of {n}"),
            }
            .into());
        }
        let mut perm: Vec<usize> = (0..n).collect();
        Rng::new(&[tts.seed, 0x7474_7370]).shuffle(&mut perm);
        let side = match tts.split {
            SplitSide::Test => &perm[..n_test],
            SplitSide::Train => &perm[n_test..],
        };
        let mut b = TableBuilder::new();
        for &i in side {
            b.push(&table.row(i))?;
        }
        Ok(b.finish())
    }

    /// filter_fn, then preprocess_function, then columns_to_keep / columns_to_remove.
    pub(crate) fn preprocess(&self, table: Table, args: &PrepareArgs) -> Result<Table> {
        let c = &self.config;
        let no_kwargs = Kwargs::new();
        let filter = match &c.filter_fn {
            Some(f) => Some(self.registry.filter("filter_fn", f, &no_kwargs)?.clone()),
            None => None,
        };
        let map = match &c.preprocess_function {
            Some(f) => Some((
                f.as_str(),
                self.registry
                    .preprocess("preprocess_function", f, &c.preprocess_function_kwargs)?
                    .clone(),
            )),
            None => None,
        };
        if filter.is_none()
            && map.is_none()
            && c.columns_to_keep.is_none()
            && c.columns_to_remove.is_none()
        {
            return Ok(table);
        }
        for (key, cols) in [
            ("columns_to_keep", &c.columns_to_keep),
            ("columns_to_remove", &c.columns_to_remove),
        ] {
            for col in cols.iter().flatten() {
                if map.is_none() && table.column(col).is_none() {
                    return Err(super::ConfigError::Invalid {
                        key,
                        reason: format!(
                            "column `{col}` is not in the data (columns: {})",
                            table
                                .schema()
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                    .into());
                }
            }
        }
        let ctx = Ctx {
            tokenizer: args.tokenizer.clone(),
            block_size: None,
        };
        let mut out = TableBuilder::new();
        for (i, mut e) in table.rows().enumerate() {
            if let Some(f) = &filter {
                if !f(&e, &no_kwargs)? {
                    continue;
                }
            }
            if let Some((name, f)) = &map {
                e = f(e, &ctx, &c.preprocess_function_kwargs)
                    .map_err(|err| ProcessError::failed(name, format!("row {i}: {err}")))?;
            }
            if let Some(keep) = &c.columns_to_keep {
                e.retain(|n| keep.iter().any(|k| k == n));
            }
            if let Some(remove) = &c.columns_to_remove {
                e.retain(|n| !remove.iter().any(|k| k == n));
            }
            out.push(&e)?;
        }
        Ok(out.finish())
    }
}
