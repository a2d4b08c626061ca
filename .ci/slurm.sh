#!/usr/bin/env bash
# A real single-node Slurm on this machine for the grid tests (tests/test_grid.py), from Debian's packages.
#   eval "$(.ci/slurm.sh start)"   # installs if missing, starts munge, slurmctld, slurmd; prints exports
#   .ci/slurm.sh stop              # stops what start started
# No accounting (no slurmdbd): `bench status` reads the results directory, not sacct.
# As root: SlurmUser=root, ProctrackType=proctrack/linuxproc and TaskPlugin=task/none need no cgroups.
set -euo pipefail
STATE=${SLURM_CI_STATE:-/var/tmp/bench-slurm}
CONF=/etc/slurm/slurm.conf

log() { echo "$*" >&2; }

start() {
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
        log "installing slurmctld slurmd slurm-client munge"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >&2
    fi
    mkdir -p "$STATE"/{ctld,d,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge
    if ! [ -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
    if ! pgrep -x munged >/dev/null; then
        if id munge >/dev/null 2>&1; then runuser -u munge -- munged; else munged --force; fi
    fi
    local host node
    host=$(hostname -s)
    # The node's real CPUs and memory, as slurmd sees them (its first line: NodeName=... CPUs=... RealMemory=...).
    node=$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$host/")
    cat > "$CONF" <<CONF
# Written by .ci/slurm.sh: one node, this machine, for the grid tests.
ClusterName=benchci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ReturnToService=2
MaxArraySize=10000
KillWait=10
MinJobAge=300
JobRequeue=1
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    local waited=0
    until sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; do
        sleep 1
        waited=$((waited + 1))
        if [ "$waited" -ge 60 ]; then
            log "slurm did not come up within 60 s; see $STATE/log"
            scontrol update NodeName="$host" State=RESUME >&2 2>/dev/null || true
            exit 1
        fi
    done
    log "slurm is up: $(sinfo -h -N -o '%N %T %c CPUs %m MB')"
    echo "export BENCH_REQUIRE_SLURM=1"
}

stop() {
    # scancel every job first: a job left running holds its results directory's locks.
    command -v scancel >/dev/null && scancel --full --user=root 2>/dev/null || true
    for daemon in slurmd slurmctld; do
        local pidfile="$STATE/$daemon.pid"
        if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    log "slurm stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) log "usage: $0 start|stop"; exit 2 ;;
esac
