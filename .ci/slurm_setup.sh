#!/usr/bin/env bash
# Bring up a one-node SLURM cluster on this machine for tests/test_slurm.py: Debian's munge and slurm-wlm
# (slurmctld, slurmd, the client commands), installed with apt, one node named `hostname -s` with the CPUs and
# memory `slurmd -C` measures, one partition (default: zfrepro), started as plain daemons (no systemd needed).
# No accounting database: the executor plugin tracks jobs with squeue (see tests/slurm/slurm.conf.in).
#
# Root only; idempotent: exits 0 at once when the node already answers, and never overwrites a slurm.conf
# that it did not write. Environment: SLURM_TEST_PARTITION (zfrepro), SLURM_TEST_MIN_MEMORY_MB (16000: the
# node's memory as configured is at least this, so that a job's --mem fits on a small CI machine).
# Exit status: 0 ready; 1 setup failed (message on stderr); 2 cannot run here (not root, no apt-get).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="$REPO/tests/slurm/slurm.conf.in"
CONF=/etc/slurm/slurm.conf
MARKER="written by .ci/slurm_setup.sh"
PARTITION="${SLURM_TEST_PARTITION:-zfrepro}"
MIN_MEMORY_MB="${SLURM_TEST_MIN_MEMORY_MB:-16000}"
HOST="$(hostname -s)"

say() { echo "slurm_setup: $*"; }
die() { echo "slurm_setup: $1" >&2; exit "${2:-1}"; }

node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1 || true; }

node_ready() {
    command -v sinfo >/dev/null 2>&1 || return 1
    case "$(node_state)" in
        idle*|mixed*|allocated*|completing*) return 0 ;;
        *) return 1 ;;
    esac
}

[ "$(id -u)" -eq 0 ] || die "needs root (installs packages and starts daemons); running as $(id -un)" 2

# slurm.conf for this machine, from the template (needs slurmd for `slurmd -C`).
render_conf() {
    local hw memory
    hw="$(slurmd -C | head -n1)"
    field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
    memory="$(field RealMemory)"
    [ "$memory" -ge "$MIN_MEMORY_MB" ] || memory="$MIN_MEMORY_MB"
    echo "# $MARKER from tests/slurm/slurm.conf.in"
    sed -e "s/@HOST@/$HOST/g" -e "s/@CPUS@/$(field CPUs)/" -e "s/@BOARDS@/$(field Boards)/" \
        -e "s/@SOCKETS@/$(field SocketsPerBoard)/" -e "s/@CORES@/$(field CoresPerSocket)/" \
        -e "s/@THREADS@/$(field ThreadsPerCore)/" -e "s/@MEMORY@/$memory/" -e "s/@PARTITION@/$PARTITION/" \
        "$TEMPLATE"
}

if node_ready && command -v slurmd >/dev/null && cmp -s <(render_conf) "$CONF"; then
    say "already running: node $HOST is $(node_state) in partition $(sinfo -h -o %P | head -n1 | tr -d '*')"
    exit 0
fi

# --- packages -------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || die "apt-get not found: cannot install slurm-wlm and munge" 2
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y -q --no-install-recommends slurm-wlm munge >/tmp/slurm_setup_apt.log 2>&1; }
    if ! apt_install; then
        apt-get update -q >>/tmp/slurm_setup_apt.log 2>&1 || true
        apt_install || { tail -n 20 /tmp/slurm_setup_apt.log >&2; die "apt-get install slurm-wlm munge failed"; }
    fi
fi

# --- munge ----------------------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
    munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
fi

# --- slurm.conf -----------------------------------------------------------------------------------------
if [ -e "$CONF" ] && ! grep -q "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script: not touching a real cluster's configuration"
fi
mkdir -p /etc/slurm
tmp="$(mktemp)"
render_conf >"$tmp"
restart=0
if ! cmp -s "$tmp" "$CONF"; then
    say "writing $CONF: $(grep '^NodeName=' "$tmp" | cut -d' ' -f1,3,8); partition $PARTITION"
    install -m 0644 "$tmp" "$CONF"
    restart=1
fi
rm -f "$tmp"

# --- daemons --------------------------------------------------------------------------------------------
install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
    if running "$1"; then
        local pid; pid="$(cat "$1")"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
}
if [ "$restart" = 1 ]; then
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi
if ! running /run/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld || die "slurmctld did not start; /var/log/slurm/slurmctld.log:
$(tail -n 20 /var/log/slurm/slurmctld.log 2>/dev/null)"
fi
for _ in $(seq 30); do scontrol ping >/dev/null 2>&1 && break; sleep 1; done
scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer; /var/log/slurm/slurmctld.log:
$(tail -n 20 /var/log/slurm/slurmctld.log 2>/dev/null)"
if ! running /run/slurmd.pid; then
    say "starting slurmd"
    slurmd || die "slurmd did not start; /var/log/slurm/slurmd.log:
$(tail -n 20 /var/log/slurm/slurmd.log 2>/dev/null)"
fi

say "waiting for node $HOST to be idle"
for i in $(seq 60); do
    node_ready && break
    case "$(node_state)" in
        down*|drain*|fail*) [ $((i % 5)) = 1 ] && scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
node_ready || die "node $HOST is '$(node_state)', not idle; $(scontrol show node "$HOST" 2>&1 | grep -i reason || true)
/var/log/slurm/slurmd.log:
$(tail -n 20 /var/log/slurm/slurmd.log 2>/dev/null)"
say "ready: node $HOST is $(node_state) in partition $PARTITION"
