#!/usr/bin/env bash
# Stop the daemons started by scripts/slurm-localhost.sh: ask slurmctld to
# shut the cluster down, then make sure slurmctld, slurmd and munged are gone
# (SIGTERM, then SIGKILL). Safe to run when nothing is running.
#   XLM_SLURM_DIR   as given to slurm-localhost.sh (default /var/spool/xlm-slurm)
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
dir=${XLM_SLURM_DIR:-/var/spool/xlm-slurm}
say() { printf '[xlm-slurm] %s\n' "$*" >&2; }

gone() { ! kill -0 "$1" 2>/dev/null; }
stop_pid() { # pidfile
    [ -s "$1" ] || return 0
    local pid; pid=$(cat "$1")
    for _ in $(seq 100); do gone "$pid" && break; sleep 0.05; done
    if ! gone "$pid"; then kill "$pid" 2>/dev/null; for _ in $(seq 60); do gone "$pid" && break; sleep 0.05; done; fi
    gone "$pid" || { say "killing $pid"; kill -9 "$pid" 2>/dev/null; }
    rm -f "$1"
}

command -v scontrol >/dev/null 2>&1 && scontrol shutdown >/dev/null 2>&1
stop_pid "$dir/run/slurmctld.pid"
stop_pid "$dir/run/slurmd.pid"
[ -s /run/munge/munged.pid ] && { kill "$(cat /run/munge/munged.pid)" 2>/dev/null; sleep 0.2; stop_pid /run/munge/munged.pid; }
say "stopped"
