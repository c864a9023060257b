#!/usr/bin/env bash
# Start a one-node SLURM (munged + slurmctld + slurmd) on loopback, for the
# SLURM test tier. No systemd: the daemons run in the background.
#
# Idempotent: installs the Debian packages when missing, writes
# /etc/slurm/slurm.conf, starts only what is not running, and waits (with a
# timeout) until the node is idle. Needs root.
#
#   XLM_SLURM_DIR       state, logs, pid files  (default /var/spool/xlm-slurm)
#   XLM_SLURM_CPUS      CPUs the node advertises (default 8, or nproc if larger)
#   XLM_SLURM_TIMEOUT   seconds to wait for the node (default 60)
#
# Stop it with scripts/slurm-stop.sh.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

dir=${XLM_SLURM_DIR:-/var/spool/xlm-slurm}
cores=$(nproc)
cpus=${XLM_SLURM_CPUS:-$(( cores > 8 ? cores : 8 ))}
wait_s=${XLM_SLURM_TIMEOUT:-60}
node=$(hostname -s)
started=$(date +%s.%N)

say() { printf '[xlm-slurm] %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (it installs packages and starts daemons)"

# --- packages ---------------------------------------------------------------
missing=()
for pair in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    # Stop the packages' install scripts from starting services themselves.
    blocker=/usr/sbin/policy-rc.d
    own_blocker=0
    if [ ! -e "$blocker" ]; then printf '#!/bin/sh\nexit 101\n' > "$blocker"; chmod 755 "$blocker"; own_blocker=1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-cache show slurmd >/dev/null 2>&1 || apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    [ "$own_blocker" -eq 1 ] && rm -f "$blocker"
fi

# --- the node name must resolve (slurmd finds its node by `hostname -s`) ----
getent hosts "$node" >/dev/null 2>&1 || { say "mapping $node to 127.0.0.1 in /etc/hosts"; echo "127.0.0.1 $node" >> /etc/hosts; }

# --- munge (authentication); munged must run as the munge user -------------
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating a munge key"
    head -c 1024 /dev/urandom > /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    say "starting munged"
    runuser -u munge -- munged
    for _ in $(seq 100); do munge_ok && break; sleep 0.05; done
    munge_ok || fail "munged does not answer"
fi

# --- configuration ----------------------------------------------------------
install -d "$dir/state" "$dir/spool" "$dir/log" "$dir/run" /etc/slurm
conf=$(mktemp)
cat > "$conf" <<CONF
# Written by xlm scripts/slurm-localhost.sh: one node on loopback, for tests.
ClusterName=xlm-local
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups in containers: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# No accounting daemon.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Start batch jobs at once, and keep sbatch --wait polling every 2 s.
SchedulerParameters=batch_sched_delay=0
MinJobAge=5
# Refuse jobs that can never run instead of leaving them pending.
EnforcePartLimits=ALL
# Let the node claim more CPUs than the machine has, so 4-task jobs fit on 2 cores.
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=4096 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
changed=0
cmp -s "$conf" /etc/slurm/slurm.conf || { install -m 0644 "$conf" /etc/slurm/slurm.conf; changed=1; }
rm -f "$conf"

# --- daemons ----------------------------------------------------------------
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if running "$dir/run/slurmctld.pid" && scontrol ping >/dev/null 2>&1; then
    [ "$changed" -eq 1 ] && { say "configuration changed: reconfiguring"; scontrol reconfigure; }
else
    say "starting slurmctld"
    rm -f "$dir/run/slurmctld.pid"
    slurmctld -c
fi
if ! running "$dir/run/slurmd.pid"; then
    say "starting slurmd"
    rm -f "$dir/run/slurmd.pid"
    slurmd
fi

# --- wait until the node takes jobs -------------------------------------------
deadline=$(( $(date +%s) + wait_s ))
while :; do
    st=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1 || true)
    case "$st" in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "node is '${st:-unknown}' after ${wait_s}s; recent logs:"
        tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
        exit 1
    fi
    sleep 0.2
done
say "node $node is $st with $cpus CPUs, $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $started}") s; logs in $dir/log"
