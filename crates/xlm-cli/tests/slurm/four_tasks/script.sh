#!/usr/bin/env bash
# SLURM scenario: four ranks on one node (4 tasks).
# Usage: sbatch script.sh <result_dir> <config_json>   (the test harness submits it)
#SBATCH --job-name=xlm-four_tasks
#SBATCH --nodes=1
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=1
#SBATCH --time=00:05:00
# No GPU is requested on the default path. On a GPU cluster add, e.g.,
#   XLM_INTEGRATION_SBATCH_ARGS="--partition=gpu,--gres=gpu:4,--qos=debug"
source "${XLM_SLURM_COMMON:?set by the test harness: path of tests/slurm/common.sh}" "$@"
