//! Measures what opening a large cache costs: wall time to open and set up,
//! time to the first batch, and the process's peak resident memory.
//!
//! ```sh
//! cargo run --release --example open_large -- build /tmp/xlm-big 2000000
//! cargo run --release --example open_large -- open /tmp/xlm-big map
//! cargo run --release --example open_large -- open /tmp/xlm-big iterable
//! ```
//! `build` writes `mem/big/train` (N rows x 128 token ids) under the
//! directory; `open` runs in a fresh process so its peak RSS is the loader's.

use std::time::Instant;
use xlm::data::{Example, TableBuilder, Value};
use xlm::manager::{DatasetManager, DatasetManagerConfig, SetupArgs, Stage};

fn peak_rss_mb() -> f64 {
    xlm_cli::bench::status_mb("VmHWM:")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(2)
            .expect("usage: open_large build|open DIR [N|map|iterable]"),
    );
    match args[1].as_str() {
        "build" => {
            let n: usize = args
                .get(3)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(2_000_000);
            let t = Instant::now();
            let mut b = TableBuilder::new();
            for i in 0..n {
                let ids: Vec<i64> = (0..128)
                    .map(|j| 7 + ((i * 31 + j * 7) % 50) as i64)
                    .collect();
                b.push(
                    &Example::new()
                        .with("id", Value::Int(i as i64))
                        .with("token_ids", Value::List(ids)),
                )?;
            }
            xlm::cache::write(&b.finish(), &dir.join("mem/big/train"))?;
            println!(
                "built {n} rows x 128 tokens in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        }
        "open" => {
            let mode = args.get(3).map(String::as_str).unwrap_or("map");
            let mut cfg = serde_json::json!({"full_name": "mem/big/train", "dataloader_kwargs": {"batch_size": 32}});
            if mode == "iterable" {
                cfg["iterable_dataset_shards"] = 8.into();
            }
            let rss0 = peak_rss_mb();
            let t = Instant::now();
            let mut dm = DatasetManager::new(serde_json::from_value::<DatasetManagerConfig>(cfg)?)?;
            dm.setup(Stage::Fit, &SetupArgs::single(&dir))?;
            let open = t.elapsed();
            let loader = dm.get_dataloader("train", false, 0, 1)?;
            let first = loader.iter().next().expect("a batch")?;
            let first_batch = t.elapsed();
            println!(
                "{mode}: {} samples; open+setup {:.3} ms; first batch {:?} after {:.3} ms; peak RSS {:.1} MB (at start {:.1} MB)",
                dm.pipeline().unwrap().num_samples(),
                open.as_secs_f64() * 1e3,
                first.get("token_ids").unwrap().shape,
                first_batch.as_secs_f64() * 1e3,
                peak_rss_mb(),
                rss0
            );
        }
        other => anyhow::bail!("unknown mode {other}"),
    }
    Ok(())
}
