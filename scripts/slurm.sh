#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on loopback (no systemd, no cgroups), to try
# `workbench sweep --executor slurm` on a laptop and for the tests.
#
#   scripts/slurm.sh start DIR   munged + slurmctld + slurmd; prints `export SLURM_CONF=…`
#   scripts/slurm.sh stop DIR    stops them (by pid)
#
# Two partitions: `low` (default; preemptible, requeued with 10 s grace) and `high`
# (preempts `low`). Needs: slurmctld slurmd slurm-client munge (Debian packages), root.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop_pid() {
    local f=$1
    if [ -f "$f" ]; then
        local pid
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$f"
    fi
}

case "$cmd" in
start)
    for bin in munged mungekey slurmctld slurmd sinfo; do
        command -v "$bin" >/dev/null || {
            echo "$0: $bin not found (apt-get install slurmctld slurmd slurm-client munge)" >&2
            exit 1
        }
    done
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    if [ ! -f "$dir/munge.key" ]; then
        mungekey --create --keyfile="$dir/munge.key"
        chmod 600 "$dir/munge.key"
    fi
    munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed"
    cpus=$(nproc)
    port=${SLURM_TEST_PORT:-46817}
    cat >"$dir/slurm.conf" <<EOF
ClusterName=workbench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=low Nodes=localhost Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=10
PartitionName=high Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N localhost
    for _ in $(seq 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -q idle; then
            echo "export SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        sleep 0.1
    done
    echo "$0: the node did not become idle; see $dir/log" >&2
    exit 1
    ;;
stop)
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munged.pid"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
