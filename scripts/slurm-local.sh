#!/usr/bin/env bash
# A single-node Slurm cluster for the sweep tests: scripts/slurm-local.sh start|stop|env DIR
# start: writes DIR/slurm.conf (this machine as the only node), a munge key, and starts munged,
# slurmctld and slurmd in the background with their state, logs and sockets under DIR.
# Clients need SLURM_CONF=DIR/slurm.conf (`env` prints the line). Debian: slurm-wlm, munge.
set -euo pipefail
# Close every descriptor but 0-2 that the caller let us inherit (a pipe it reads, say): the
# daemons started below would otherwise hold it open for ever.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
done
cmd=${1:?usage: slurm-local.sh start|stop|env DIR}
dir=$(mkdir -p "${2:?usage: slurm-local.sh start|stop|env DIR}" && cd "$2" && pwd)

stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  sleep 0.5
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null || true
    rm -f "$dir/$p.pid"
  done
}

case "$cmd" in
env) echo "export SLURM_CONF=$dir/slurm.conf" ;;
stop) stop ;;
start)
  for b in munged slurmctld slurmd sbatch; do
    command -v "$b" >/dev/null || { echo "error: $b not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
  done
  stop
  mkdir -p "$dir/spool/ctld" "$dir/spool/d" "$dir/munge"
  chmod 700 "$dir/munge"
  [ -f "$dir/munge/munge.key" ] || { dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none; chmod 600 "$dir/munge/munge.key"; }
  node=$(slurmd -C | head -1)
  host=$(hostname -s)
  user=$(id -un)
  cat > "$dir/slurm.conf" <<CONF
ClusterName=smelt-test
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmctldPort=${SMELT_SLURMCTLD_PORT:-16817}
SlurmdPort=${SMELT_SLURMD_PORT:-16818}
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  sed -i 's/^NodeName=[^ ]*/NodeName='"$host"'/' "$dir/slurm.conf"
  # The daemons get no terminal and none of the caller's pipes (a caller reading our output would wait forever).
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" </dev/null >/dev/null 2>&1
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$dir/slurm.conf" </dev/null >/dev/null 2>&1
  slurmd -f "$dir/slurm.conf" </dev/null >/dev/null 2>&1
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then exit 0; fi
    sleep 0.5
  done
  echo "error: the local Slurm did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
  tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  exit 1 ;;
*) echo "usage: slurm-local.sh start|stop|env DIR" >&2; exit 2 ;;
esac
