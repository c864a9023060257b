//! The job nonce: a string every rank of one run derives identically from
//! its launcher's variables, carried (as a 64-bit fingerprint) in every
//! frame, so that a connection from another job, a stale rank of an earlier
//! run or a stranger is refused at the rendezvous.
//!
//! It guards against accidents, not attackers: the sources are not secret.

/// Variable `xlm launch` sets to a fresh random value per launch; set it by
/// hand to tell concurrent runs of a custom launcher apart.
pub const NONCE_VAR: &str = "XLM_JOB_NONCE";

/// The job nonce from the launcher's variables, first found wins:
///
/// 1. `XLM_JOB_NONCE` (`xlm launch`, or set by hand) -> `xlm:<value>`;
/// 2. `TORCHELASTIC_RUN_ID` (torchrun's `--rdzv-id`), unless empty or
///    torchrun's default `none` -> `torchrun:<value>`;
/// 3. `SLURM_JOB_ID` and `SLURM_STEP_ID` (the same for every task of an
///    `srun` step) -> `slurm:<job>.<step>`;
/// 4. otherwise the rendezvous address -> `master:<addr>:<port>` (it tells
///    only jobs at different addresses apart).
pub fn job_nonce(get: impl Fn(&str) -> Option<String>, master_addr: &str, port: u16) -> String {
    let set = |k: &str| {
        get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = set(NONCE_VAR) {
        return format!("xlm:{v}");
    }
    if let Some(v) = set("TORCHELASTIC_RUN_ID").filter(|v| v != "none") {
        return format!("torchrun:{v}");
    }
    if let Some(job) = set("SLURM_JOB_ID") {
        let step = set("SLURM_STEP_ID").unwrap_or_else(|| "batch".into());
        return format!("slurm:{job}.{step}");
    }
    format!("master:{master_addr}:{port}")
}

/// The 64-bit fingerprint of a nonce that frames carry (FNV-1a).
pub(crate) fn fingerprint(nonce: &str) -> u64 {
    nonce.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A fresh random nonce for one launch (hex), from `/dev/urandom`, else
/// from the clock, the process id and a counter.
pub fn fresh_nonce() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!("{nanos}-{}-{n}", std::process::id());
        b[..8].copy_from_slice(&fingerprint(&seed).to_le_bytes());
        b[8..].copy_from_slice(&fingerprint(&format!("{seed}-2")).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn nonce(pairs: &[(&str, &str)]) -> String {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        job_nonce(|k| m.get(k).map(|v| v.to_string()), "h", 5)
    }

    #[test]
    fn sources_in_order() {
        assert_eq!(
            nonce(&[("XLM_JOB_NONCE", "ab"), ("TORCHELASTIC_RUN_ID", "r")]),
            "xlm:ab"
        );
        assert_eq!(
            nonce(&[("TORCHELASTIC_RUN_ID", "r"), ("SLURM_JOB_ID", "9")]),
            "torchrun:r"
        );
        assert_eq!(
            nonce(&[
                ("TORCHELASTIC_RUN_ID", "none"),
                ("SLURM_JOB_ID", "9"),
                ("SLURM_STEP_ID", "2")
            ]),
            "slurm:9.2"
        );
        assert_eq!(nonce(&[("SLURM_JOB_ID", "9")]), "slurm:9.batch");
        assert_eq!(nonce(&[("XLM_JOB_NONCE", " ")]), "master:h:5");
        assert_ne!(fingerprint("xlm:a"), fingerprint("xlm:b"));
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
