# shellcheck shell=bash disable=SC2034  # variables here are for the scripts that source it
# Shared helpers for scripts/install-tools, scripts/services and scripts/test. Source it; don't run it.
#
# Services are started in their own session (setsid), so each one's pid is also its process-group id:
# stopping kills the whole group, and a Ctrl-C in the terminal reaches only the caller's trap.

IDV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IDV_CACHE="${IDV_CACHE:-$HOME/.cache/idv-gateway}"   # outside the clone: survives fresh checkouts
IDV_VENV="$IDV_CACHE/venv"
IDV_BIN="$IDV_CACHE/bin"                             # only the tools, so the venv's python3 shadows nothing
IDV_DDB_DIR="$IDV_CACHE/dynamodb-local"
IDV_NODE_TOOLS="$IDV_CACHE/node-tools"               # playwright-core and axe-core (scripts/browser-test)
export IDV_CACHE

log() { printf '==> %s\n' "$*" >&2; }

# elapsed START: seconds since START (an $EPOCHREALTIME reading), one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# free_ports N: print N distinct free TCP ports on 127.0.0.1. All sockets are held open together so
# the kernel cannot hand out the same port twice.
free_ports() {
  python3 - "${1:-1}" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# wait_for_port PORT NAME [TIMEOUT_S]: wait until 127.0.0.1:PORT accepts a connection; fail early,
# showing the log, if service NAME has died.
wait_for_port() {
  local port=$1 name=$2 timeout=${3:-60} pid deadline
  pid=$(cat "$IDV_RUN_DIR/$name.pid" 2>/dev/null || true)
  deadline=$((SECONDS + timeout))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited before listening on port $port; its log:"; tail -n 30 "$IDV_RUN_DIR/$name.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name not listening on port $port after ${timeout}s; its log:"; tail -n 30 "$IDV_RUN_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# start_service NAME CMD...: run CMD in the background in its own session, cwd and log in $IDV_RUN_DIR.
# The inner shell writes its own pid (kept by exec) so the pid file is right however setsid forks.
start_service() {
  local name=$1; shift
  local pidfile="$IDV_RUN_DIR/$name.pid" i
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  (cd "$IDV_RUN_DIR" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >"$IDV_RUN_DIR/$name.log" 2>&1) &
  for i in {1..100}; do [[ -s $pidfile ]] && return 0; sleep 0.05; done
  log "$name did not start"; return 1
}

# start_dynamodb PORT. -sharedDb: one database whatever the credentials/region a client signs with;
# -disableTelemetry: this machine has no network to send it to. It binds all interfaces (there is no
# bind option); we only ever address it on 127.0.0.1.
start_dynamodb() {
  start_service dynamodb java -Djava.library.path="$IDV_DDB_DIR/DynamoDBLocal_lib" -jar "$IDV_DDB_DIR/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$1" &&
    wait_for_port "$1" dynamodb
}

# start_moto PORT: moto's server mode, for Secrets Manager.
start_moto() {
  start_service moto "$IDV_VENV/bin/moto_server" -H 127.0.0.1 -p "$1" &&
    wait_for_port "$1" moto
}

# group_alive PGID: any live (not zombie) process left in the group? An orphaned service is reaped by
# pid 1, which can take seconds here, so `kill -0` would see the zombie as alive.
# shellcheck disable=SC2009  # pgrep would count the zombies too
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }

# stop_services: stop every service with a pid file in $IDV_RUN_DIR (TERM, then KILL after 5s).
# Safe to call twice, and skips a stale pid file whose pid now belongs to something else.
stop_services() {
  local pidfile pid
  [[ -n ${IDV_RUN_DIR:-} && -d $IDV_RUN_DIR ]] || return 0
  for pidfile in "$IDV_RUN_DIR"/*.pid; do
    [[ -e $pidfile ]] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && grep -qaE 'DynamoDBLocal|moto_server' "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in {1..50}; do group_alive "$pid" || break; sleep 0.1; done
      if group_alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
  done
}
