# Sourced by every SLURM scenario script. Arguments: <result_dir> <config_json>.
# Sets the rendezvous from the allocation, then runs one `xlm probe` per task;
# each task takes its rank from the SLURM variables (SLURM_PROCID, ...).
set -euo pipefail
result_dir=${1:?usage: sbatch script.sh <result_dir> <config_json>}
config=${2:?usage: sbatch script.sh <result_dir> <config_json>}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=$(( 20000 + SLURM_JOB_ID % 20000 ))
export MASTER_ADDR MASTER_PORT
echo "xlm slurm job $SLURM_JOB_ID: $SLURM_NTASKS task(s) on $SLURM_JOB_NODELIST, rendezvous $MASTER_ADDR:$MASTER_PORT"
# --kill-on-bad-exit: one failed task ends the step instead of leaving the others waiting.
srun --kill-on-bad-exit=1 "${XLM_BIN:-xlm}" probe --result-dir "$result_dir" --config-json "$config"
