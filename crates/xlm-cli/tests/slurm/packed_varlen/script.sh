#!/usr/bin/env bash
# SLURM scenario: packed variable-length data: equal batch counts per rank (2 tasks).
# Usage: sbatch script.sh <result_dir> <config_json>   (the test harness submits it)
#SBATCH --job-name=xlm-packed_varlen
#SBATCH --nodes=1
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=00:05:00
# No GPU is requested on the default path. On a GPU cluster add, e.g.,
#   XLM_INTEGRATION_SBATCH_ARGS="--partition=gpu,--gres=gpu:2,--qos=debug"
source "${XLM_SLURM_COMMON:?set by the test harness: path of tests/slurm/common.sh}" "$@"
