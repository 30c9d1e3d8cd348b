# What the shell suites share (Tests/EndToEnd/e2e.sh, Tests/Apache/apache.sh): the result lines that
# scripts/test counts, the summary line "$suite: N passed, M failed", and running a command as
# another account with a clean environment. Source it after setting suite=NAME; do not run it.

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
  local description=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$description"; else not_ok "$description"; fi
}
check_fails() { # check_fails DESCRIPTION COMMAND...: passes when the command fails
  local description=$1; shift
  if "$@" >/dev/null 2>&1; then not_ok "$description (it succeeded)"; else ok "$description"; fi
}
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
finish() { # prints the summary and exits: 0 when nothing failed
  echo
  echo "${suite:?set suite before sourcing Tests/Support/suite.sh}: ${passed} passed, ${failed} failed"
  ((failed == 0))
  exit
}
fatal() { not_ok "$*"; finish; }

# as USER COMMAND...: runs a command as another account, with a clean environment.
as() {
  local user=$1; shift
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  setpriv --reuid="$user" --regid="$user" --init-groups \
    env -i HOME="${home:-/}" USER="$user" LOGNAME="$user" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"
}

# says TEXT PATTERN…: each pattern is in the text; says_not TEXT PATTERN: it is not.
says() { local text=$1 pattern; shift; for pattern in "$@"; do grep -q -- "$pattern" <<<"$text" || return 1; done; }
says_not() { ! grep -q -- "$2" <<<"$1"; }
export -f says says_not
# capture COMMAND…: runs it; its output (with errors) in $out, shown, its exit status in $status.
capture() {
  out=$("$@" 2>&1)
  status=$?
  echo "$out"
}
