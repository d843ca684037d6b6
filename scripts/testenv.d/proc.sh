# Process bookkeeping for scripts/testenv: every process it starts gets a pid file
# under $STATE/pids holding "pid start-time", so `down` stops only ours even if a pid
# was reused (servers such as redis rewrite their command line, so that can't tell).

# proc_start_time PID : the process start time in clock ticks since boot (stat field 22)
proc_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }           # drop "pid (comm) ", comm may hold spaces
  awk '{print $20}' <<<"$stat"
}

# start_proc NAME CMD... : starts CMD detached (own session), output to $STATE/logs/NAME.log
start_proc() {
  local name=$1; shift
  mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/cmds"
  printf '%q ' "$@" >"$STATE/cmds/$name"   # for `testenv start NAME` after a kill
  # The server must not inherit the caller's other descriptors: a test's lock (flock)
  # or ctest's output pipe would stay open as long as the server runs.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid "$@"
  ) </dev/null >>"$STATE/logs/$name.log" 2>&1 &
  echo "$! $(proc_start_time $!)" >"$STATE/pids/$name.pid"
}

# proc_pid NAME : prints the pid if NAME is running and is ours; fails otherwise
proc_pid() {
  local f=$STATE/pids/$1.pid pid started
  [ -f "$f" ] || return 1
  read -r pid started <"$f" || return 1
  [ -n "$started" ] && [ "$(proc_start_time "$pid")" = "$started" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1   # zombie: exited
  echo "$pid"
}

# stop_proc NAME [GRACE_SECONDS] : SIGTERM, then SIGKILL after the grace period
stop_proc() {
  local name=$1 grace=${2:-10} pid i
  pid=$(proc_pid "$name") || { rm -f "$STATE/pids/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$STATE/pids/$name.pid"
}

# port_in_use PORT : true if something listens on 127.0.0.1:PORT
port_in_use() {
  ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

# require_free_port NAME PORT : fails loudly when a foreign process holds the port
require_free_port() {
  if port_in_use "$2"; then
    echo "testenv: port $2 (for $1) is in use by a process testenv did not start:" >&2
    ss -Htlnp "sport = :$2" >&2 || true
    return 1
  fi
}

# wait_until TIMEOUT_S WHAT CMD... : retries CMD every 0.25 s until it succeeds
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "testenv: timed out after ${timeout}s waiting for $what" >&2
      return 1
    fi
    sleep 0.25
  done
}

# fail_with_log NAME : prints the tail of a component's log and fails
fail_with_log() {
  echo "testenv: $1 did not become ready; last lines of $STATE/logs/$1.log:" >&2
  tail -n 30 "$STATE/logs/$1.log" >&2 2>/dev/null || true
  return 1
}

# restart_proc NAME : starts NAME again with the command line it was first started with
restart_proc() {
  local name=$1 cmd
  proc_pid "$name" >/dev/null && return 0
  [ -f "$STATE/cmds/$name" ] || { echo "testenv: $name was never started" >&2; return 1; }
  cmd=$(cat "$STATE/cmds/$name")
  eval "start_proc $(printf '%q' "$name") $cmd"
}
