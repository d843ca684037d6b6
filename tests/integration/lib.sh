# Helpers for the shell tests: check WHAT CMD... runs CMD and prints ok/FAIL with its
# output; equals and contains compare. Each test prints "N passed, N failed" at the end.
pass=0 fail=0
check() {
  local what=$1; shift
  if out=$("$@" 2>&1); then
    pass=$((pass + 1)); echo "ok   - $what"
  else
    fail=$((fail + 1)); echo "FAIL - $what"; echo "$out" | sed 's/^/       /' | head -30
  fi
}
equals() { [ "$1" = "$2" ] || { echo "expected '$2', got '$1'"; return 1; }; }
contains() { case "$1" in *"$2"*) return 0 ;; esac; echo "'$2' not in: $1"; return 1; }
