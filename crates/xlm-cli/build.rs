//! Decides, at build time, whether the SLURM test tier runs: it needs
//! `sbatch` on PATH and `XLM_INTEGRATION_SLURM_ENABLE=1`. The outcome is the
//! cfg `xlm_slurm_gate` ("open", "no_sbatch" or "disabled"); the SLURM tests
//! are `#[ignore]`d with the reason when the gate is closed, so a skip shows
//! up as skipped (with a reason) and never as a pass.

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(xlm_slurm_gate, values(\"open\", \"no_sbatch\", \"disabled\"))"
    );
    println!("cargo::rerun-if-env-changed=XLM_INTEGRATION_SLURM_ENABLE");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let enabled = std::env::var("XLM_INTEGRATION_SLURM_ENABLE").is_ok_and(|v| v == "1");
    let sbatch = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("sbatch").is_file()))
        .unwrap_or(false);
    let gate = match (sbatch, enabled) {
        (true, true) => "open",
        (false, _) => "no_sbatch",
        (true, false) => "disabled",
    };
    println!("cargo::rustc-cfg=xlm_slurm_gate=\"{gate}\"");
    println!("cargo::rustc-env=XLM_SLURM_GATE={gate}");
}
