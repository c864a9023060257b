use crate::nonce::job_nonce;
use crate::DistError;

/// Where the rank information came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum EnvSource {
    /// torchrun / `xlm launch` variables (RANK, WORLD_SIZE, ...).
    Torchrun,
    /// SLURM task variables (SLURM_PROCID, SLURM_NTASKS, ...).
    Slurm,
    /// Neither: a single process.
    Single,
}

/// This process's place in a distributed run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RankEnv {
    /// Global rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// Rank on this node.
    pub local_rank: usize,
    /// Ranks on this node.
    pub local_world_size: usize,
    /// Rendezvous host.
    pub master_addr: String,
    /// Rendezvous port.
    pub master_port: u16,
    /// Which variables were read.
    pub source: EnvSource,
    /// The job nonce (see [`job_nonce`](crate::job_nonce)): every rank of
    /// one run has the same, and the process group refuses connections
    /// that carry another.
    pub job_nonce: String,
}

fn parse(var: &'static str, value: Option<String>) -> Result<Option<usize>, DistError> {
    match value {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| DistError::NotANumber { var, value: v }),
    }
}

/// The first host of a SLURM node list (`node[01-04,07],other` -> `node01`).
pub fn first_slurm_host(list: &str) -> String {
    let first = match (list.find('['), list.find(',')) {
        (Some(b), Some(c)) if c < b => &list[..c],
        (None, Some(c)) => &list[..c],
        _ => list,
    };
    match first.find('[') {
        Some(b) => {
            let inner = &first[b + 1..];
            let end = inner.find([',', '-', ']']).unwrap_or(inner.len());
            format!("{}{}", &first[..b], &inner[..end])
        }
        None => first.to_string(),
    }
}

impl RankEnv {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, DistError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    ///
    /// torchrun variables win over SLURM ones (a launcher inside a SLURM job
    /// sets both); with neither, a single process on 127.0.0.1:29500.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, DistError> {
        let addr = get("MASTER_ADDR");
        let port = match get("MASTER_PORT") {
            None => 29500,
            Some(p) => p.trim().parse::<u16>().map_err(|_| DistError::NotANumber {
                var: "MASTER_PORT",
                value: p,
            })?,
        };
        let rank = parse("RANK", get("RANK"))?;
        let world = parse("WORLD_SIZE", get("WORLD_SIZE"))?;
        let env = match (rank, world) {
            (Some(rank), Some(world)) => {
                let local_rank = parse("LOCAL_RANK", get("LOCAL_RANK"))?.unwrap_or(rank);
                let local_world =
                    parse("LOCAL_WORLD_SIZE", get("LOCAL_WORLD_SIZE"))?.unwrap_or(world);
                Self::checked(
                    rank,
                    world,
                    local_rank,
                    local_world,
                    ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"),
                    addr.unwrap_or_else(|| "127.0.0.1".into()),
                    port,
                    EnvSource::Torchrun,
                )?
            }
            (Some(_), None) => {
                return Err(DistError::Incomplete {
                    var: "RANK",
                    missing: "WORLD_SIZE",
                })
            }
            (None, Some(_)) => {
                return Err(DistError::Incomplete {
                    var: "WORLD_SIZE",
                    missing: "RANK",
                })
            }
            (None, None) => match (
                parse("SLURM_PROCID", get("SLURM_PROCID"))?,
                parse("SLURM_NTASKS", get("SLURM_NTASKS"))?,
            ) {
                (Some(rank), Some(world)) => {
                    let local_rank = parse("SLURM_LOCALID", get("SLURM_LOCALID"))?.unwrap_or(0);
                    let local_world = parse(
                        "SLURM_NTASKS_PER_NODE",
                        get("SLURM_NTASKS_PER_NODE").map(|v| {
                            // "2(x3)" style values: the count before the parenthesis.
                            v.split('(').next().unwrap_or("").to_string()
                        }),
                    )
                    .ok()
                    .flatten()
                    .unwrap_or(world);
                    let host = addr.unwrap_or_else(|| {
                        get("SLURM_JOB_NODELIST")
                            .or_else(|| get("SLURM_NODELIST"))
                            .map(|l| first_slurm_host(&l))
                            .unwrap_or_else(|| "127.0.0.1".into())
                    });
                    Self::checked(
                        rank,
                        world,
                        local_rank,
                        local_world,
                        (
                            "SLURM_PROCID",
                            "SLURM_NTASKS",
                            "SLURM_LOCALID",
                            "SLURM_NTASKS_PER_NODE",
                        ),
                        host,
                        port,
                        EnvSource::Slurm,
                    )?
                }
                (Some(_), None) => {
                    return Err(DistError::Incomplete {
                        var: "SLURM_PROCID",
                        missing: "SLURM_NTASKS",
                    })
                }
                _ => return Ok(Self::single()),
            },
        };
        Ok(Self {
            job_nonce: job_nonce(&get, &env.master_addr, env.master_port),
            ..env
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn checked(
        rank: usize,
        world: usize,
        local_rank: usize,
        local_world: usize,
        names: (&'static str, &'static str, &'static str, &'static str),
        master_addr: String,
        master_port: u16,
        source: EnvSource,
    ) -> Result<Self, DistError> {
        if world == 0 {
            return Err(DistError::ZeroWorld(names.1));
        }
        if rank >= world {
            return Err(DistError::RankOutOfRange {
                rank_var: names.0,
                rank,
                world_var: names.1,
                world,
            });
        }
        if local_world == 0 {
            return Err(DistError::ZeroWorld(names.3));
        }
        if local_rank >= local_world {
            return Err(DistError::RankOutOfRange {
                rank_var: names.2,
                rank: local_rank,
                world_var: names.3,
                world: local_world,
            });
        }
        Ok(Self {
            rank,
            world_size: world,
            local_rank,
            local_world_size: local_world,
            master_addr,
            master_port,
            source,
            job_nonce: String::new(),
        })
    }

    /// One process, rank 0 of 1.
    pub fn single() -> Self {
        Self {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            local_world_size: 1,
            master_addr: "127.0.0.1".into(),
            master_port: 29500,
            source: EnvSource::Single,
            job_nonce: "single".into(),
        }
    }

    /// More than one rank.
    pub fn is_distributed(&self) -> bool {
        self.world_size > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<RankEnv, DistError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RankEnv::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn reads_torchrun_slurm_and_single() {
        let e = env(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1234"),
        ])
        .unwrap();
        assert_eq!(
            (e.rank, e.world_size, e.local_rank, e.master_port, e.source),
            (1, 2, 1, 1234, EnvSource::Torchrun)
        );
        let e = env(&[
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS_PER_NODE", "2(x2)"),
            ("SLURM_JOB_NODELIST", "gpu[07-08]"),
        ])
        .unwrap();
        assert_eq!(
            (e.rank, e.world_size, e.local_rank, e.local_world_size),
            (3, 4, 1, 2)
        );
        assert_eq!(e.master_addr, "gpu07");
        assert_eq!(e.job_nonce, "master:gpu07:29500");
        assert_eq!(env(&[]).unwrap(), RankEnv::single());
        // torchrun wins inside a SLURM job.
        let e = env(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
        ])
        .unwrap();
        assert_eq!(e.source, EnvSource::Torchrun);
    }

    #[test]
    fn inconsistent_values_are_named() {
        let e = env(&[("RANK", "2"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK=2") && e.contains("WORLD_SIZE=2"), "{e}");
        let e = env(&[("RANK", "x"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK=\"x\""), "{e}");
        let e = env(&[("RANK", "0")]).unwrap_err().to_string();
        assert!(e.contains("WORLD_SIZE"), "{e}");
        let e = env(&[("SLURM_PROCID", "4"), ("SLURM_NTASKS", "4")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_PROCID=4"), "{e}");
        let e = env(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "99999")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("MASTER_PORT"), "{e}");
    }

    #[test]
    fn slurm_host_lists() {
        assert_eq!(first_slurm_host("node01"), "node01");
        assert_eq!(first_slurm_host("a,b"), "a");
        assert_eq!(first_slurm_host("n[3,5]"), "n3");
        assert_eq!(first_slurm_host("x,n[1-2]"), "x");
    }
}
