#!/usr/bin/env bash
# The database safety suite, on REAL PostgreSQL and MariaDB servers started here
# (Tests/Database/servers) and the fixture site in its database mode (Tests/Fixture/make-site
# --database): Moodle's "upgrade" changes the real schema and version; deliveryctl takes the
# snapshot before it, checks the site's health after it, and rolls code and database back.
#
#   Tests/Database/database.sh [pgsql|mariadb]…     (both by default; KEEP=1 keeps the temp dir)
#   DELIVERYCTL_BINARY=…/deliveryctl overrides the binary (default: swift build's debug one)
#
# Scenarios: a full delivery then a confirmed rollback after users wrote; an upgrade failing
# midway (automatic rollback); a health check failing (automatic, and ask); a pre-existing
# critical check that must not fail the health check; a snapshot that cannot be taken (a full
# file system, a table the dump may not read); kill -9 of the helper during the upgrade; pruning;
# the web user's key against a database restore and a switch loop (Tests/Attacks/destructive.sh);
# the rehearsal of an upgrade on a copy of the database (Tests/Database/rehearsal.sh); the
# snapshot as the server's own copy and the rollback by renames (Tests/Database/server-copy.sh).
# Ends with "database: N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
servers=$here/servers
make_site=$project/Tests/Fixture/make-site
deliveryctl=${DELIVERYCTL_BINARY:-$project/.build/debug/deliveryctl}
types=("$@")
((${#types[@]})) || types=(pgsql mariadb)
web_user=www-data

[[ -x $deliveryctl ]] || { echo "no deliveryctl at $deliveryctl (swift build first)"; echo "database: 0 passed, 1 failed"; exit 1; }
((EUID == 0)) || { echo "run as root (servers, users)"; echo "database: 0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/delivery-db-XXXXXX)
chmod 755 "$tmp"
web_pids=()
mounts=()
passed=0
failed=0

cleanup() {
  local pid mount
  for pid in "${web_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for mount in "${mounts[@]}"; do umount "$mount" 2>/dev/null || true; done
  bash "$servers" stop "$tmp/servers" >/dev/null 2>&1 || true
  if [[ ${KEEP:-} == 1 ]]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
# check NAME COMMAND…: one test line from the command's exit status. The command runs in this
# shell (not a subshell), so that what it sets (last) stays for the next checks.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/check.out" 2>&1; then ok "$name"; else
    not_ok "$name"
    sed 's/^/#   /' "$tmp/check.out" | tail -n 12
  fi
}
# equals WANT COMMAND…: the command prints exactly WANT.
equals() {
  local want=$1 got
  shift
  got=$("$@" 2>&1) || { echo "failed: $got"; return 1; }
  [[ $got == "$want" ]] || { echo "got '$got', wanted '$want'"; return 1; }
}

# free_port, the router and site (NAME TYPE [init options…]).
# shellcheck source=site-lib.sh
source "$here/site-lib.sh"
# rehearsal_scenarios and rehearsal_killed.
# shellcheck source=rehearsal.sh
source "$here/rehearsal.sh"
# server_copy_scenarios.
# shellcheck source=server-copy.sh
source "$here/server-copy.sh"

sql() { "$ADMIN_CMD" "$@"; }
db_version() { sql "SELECT value FROM mdl_config WHERE name = 'version'"; }
has_table() { [[ -n $(sql "SELECT table_name FROM information_schema.tables WHERE table_name = '$1' AND table_schema NOT IN ('information_schema', 'pg_catalog')") ]]; }
login_status() {
  local code
  code=$(curl -s -o "$tmp/login.body" -w '%{http_code}' "$url/login/index.php")
  echo "$code"
  [[ $code == 200 ]] || head -c 300 "$tmp/login.body" >&2
}
served() { "$deliveryctl" status --json | php -r '$s = json_decode(stream_get_contents(STDIN), true); echo $s["served"] ?? "?";'; }
status_field() { "$deliveryctl" status --json | php -r '$s = json_decode(stream_get_contents(STDIN), true); $v = $s; foreach (explode(".", $argv[1]) as $k) { $v = $v[$k] ?? null; } echo is_bool($v) ? ($v ? "true" : "false") : (is_scalar($v) ? $v : json_encode($v));' "$1"; }
maintenance_off() { [[ ! -e $dir/moodledata/climaintenance.html ]]; }
no_table() { ! has_table "$1"; }
said() { grep -q -- "$1" <<<"$last"; }
said_both() { grep -q -- "$1" <<<"$last" && grep -qi -- "$2" <<<"$last"; }
serving_with_version() { [[ $(served) == "$1" && $(db_version) == "$2" ]] || { echo "serving $(served), database $(db_version)"; return 1; }; }
in_maintenance_on() { [[ $(served) == "$1" && -e $dir/moodledata/climaintenance.html ]]; }
login_ok_on() { [[ $(served) == "$1" && $(login_status) == 200 ]]; }
# How many times the last operation asked Moodle upgrade.php --is-pending (its audit record).
rollback_plan_said() { echo "$(status_field rollback.notices.0.code) $(status_field rollback.target)"; }
pending_asks() { "$deliveryctl" log --limit 1 --json | php -r '$r = json_decode(stream_get_contents(STDIN), true)[0]; echo count(array_filter($r["commands"], fn($c) => str_contains($c["command"], "--is-pending")));'; }
# runs EXPECTED COMMAND…: the command's exit status is EXPECTED; its output is kept in $last. Around
# every deliveryctl call, Tests/Support/invariants.php checks what every operation must leave true
# (issue 13): a broken invariant fails the check that ran it.
last=
runs() {
  local want=$1 status=0 broken
  shift
  if [[ $1 == "$deliveryctl" ]]; then
    invariants before "$tmp/invariants.before" || { echo "the invariants could not be read before the call"; return 1; }
  fi
  last=$("$@" 2>&1) || status=$?
  if [[ $1 == "$deliveryctl" ]]; then
    printf '%s' "$last" >"$tmp/invariants.output"
    broken=$(invariants after "$tmp/invariants.before" "$status" "$tmp/invariants.output" "${@:2}") ||
      { echo "$broken"; return 1; }
  fi
  ((status == want)) || { echo "exit status $status, wanted $want: $last"; return 1; }
}
invariants() {
  DELIVERYCTL=$deliveryctl WEB_USER=$web_user SITE_DIR=$dir ADMIN_CMD=$ADMIN_CMD DBTYPE=$type \
    README=$project/README.md php "$project/Tests/Support/invariants.php" "$@"
}

echo "# starting the database servers"
for type in "${types[@]}"; do
  if ! bash "$servers" start "$type" "$tmp/servers" >"$tmp/servers-$type.log" 2>&1; then
    cat "$tmp/servers-$type.log"
    not_ok "$type server starts"
    continue
  fi
  ok "$type server starts"

  # ------------------------------------------------------------------------------------------
  echo "# $type: a delivery, then a confirmed rollback after users wrote"
  site "$type-full" "$type" || { not_ok "$type: fixture site"; continue; }
  source "$tmp/servers/$type/env"
  check "$type: revision 1 database at 2024100700.00" equals 2024100700.00 db_version
  bash "$dir/revision2" >/dev/null 2>&1
  check "$type: run-all with an upgrade succeeds" runs 0 "$deliveryctl" run-all --comment "schema change"
  check "$type: the snapshot was taken and reported (size, duration)" said "Database snapshot: .* in .* s"
  check "$type: the health check passed" said "The health check passed"
  check "$type: the upgrade changed the schema" has_table mdl_local_foo_items
  check "$type: and the version" equals 2024100800.00 db_version
  check "$type: login page 200 after the delivery" equals 200 login_status
  snapshot=$(status_field snapshot.file)
  check "$type: the snapshot file is in the state directory, mode 0600" equals 600 stat -c %a "$snapshot"
  check "$type: the snapshot folder is mode 0700" equals 700 stat -c %a "$dir/state/snapshots"
  check "$type: status: rollback needs confirmation once the site was open" equals true status_field rollback.needsConfirmation
  check "$type: status: the rollback kind is code and database" equals code_and_database status_field rollback.kind
  sql "INSERT INTO mdl_forum_posts (message) VALUES ('written after the delivery')" >/dev/null
  check "$type: rollback without confirmation is refused (exit 2, confirmation_required)" runs 2 "$deliveryctl" rollback --json
  check "$type: … refused with confirmation_required, saying how old the snapshot is" said_both confirmation_required "taken .* ago"
  check "$type: … and nothing changed (production served, database as upgraded)" serving_with_version production 2024100800.00
  check "$type: rollback --restore-database succeeds" runs 0 "$deliveryctl" rollback --restore-database
  check "$type: the backup copy serves" equals backup served
  check "$type: the database version is back" equals 2024100700.00 db_version
  check "$type: the audit record says the database was restored (the plugin logs it to Moodle)" \
    equals "rollback true" php -r '$r = json_decode(stream_get_contents(STDIN), true)[0]; echo $r["operation"], " ", var_export($r["databaseRestored"] ?? null, true);' < <("$deliveryctl" log --limit 1 --json)
  check "$type: the upgrade's table is gone" no_table mdl_local_foo_items
  check "$type: what users wrote after the snapshot is gone (as the confirmation said)" equals 0 sql "SELECT count(*) FROM mdl_forum_posts WHERE message = 'written after the delivery'"
  check "$type: maintenance mode is off" maintenance_off
  check "$type: the older code serves its login page (200)" equals 200 login_status
  check "$type: the older code matches the database (upgrade.php --is-pending exits 0)" \
    setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups php "$dir/moodle/admin/cli/upgrade.php" --is-pending
  # Issue 13's sequence (secure --security, switch, update, restore, rollback --restore-database,
  # cancel): cancel once served production at the new revision, ahead of the restored database.
  rolled_back_revision=$(status_field copies.backup.revision.id)
  check "$type: cancel after the rollback with the database succeeds" runs 0 "$deliveryctl" cancel
  check "$type: … production is back at the revision of the copy that ran on the database" \
    equals "$rolled_back_revision" git -C "$dir/site/releases/production" rev-parse HEAD
  check "$type: … production serves, and its code matches the database (upgrade.php --is-pending exits 0)" \
    bash -c "[[ \$('$deliveryctl' status --json | php -r 'echo json_decode(stream_get_contents(STDIN), true)[\"served\"];') == production ]] && setpriv --reuid='$web_user' --regid='$(id -g "$web_user")' --init-groups php '$dir/moodle/admin/cli/upgrade.php' --is-pending"
  check "$type: … the database is still the pre-delivery one" equals 2024100700.00 db_version
  check "$type: … the login page answers 200" equals 200 login_status

  # ------------------------------------------------------------------------------------------
  echo "# $type: the upgrade fails midway: automatic rollback inside the delivery window"
  site "$type-midway" "$type" || { not_ok "$type: fixture site"; continue; }
  bash "$dir/revision2" >/dev/null 2>&1
  echo midway > "$dir/moodledata/fixture-fail-upgrade"
  check "$type: run-all fails (exit 1)" runs 1 "$deliveryctl" run-all
  check "$type: … and says it rolled back automatically" said "Rolled back automatically"
  check "$type: the backup copy serves" equals backup served
  check "$type: the half-done schema change is undone" no_table mdl_local_foo_items
  check "$type: the version is the old one" equals 2024100700.00 db_version
  check "$type: maintenance mode is off" maintenance_off
  check "$type: login page 200" equals 200 login_status
  rm -f "$dir/moodledata/fixture-fail-upgrade"
  check "$type: restore again once fixed succeeds (a new snapshot, the upgrade, the health check)" runs 0 "$deliveryctl" restore
  check "$type: and the upgrade is in" equals 2024100800.00 db_version

  # ------------------------------------------------------------------------------------------
  echo "# $type: the rollback plan's question, asked once per code fingerprint and database versions"
  site "$type-answers" "$type" || { not_ok "$type: fixture site"; continue; }
  check "$type: secure --security succeeds" runs 0 "$deliveryctl" secure --security
  check "$type: … Moodle was asked once for both copies (the same code)" equals 1 pending_asks
  check "$type: secure --security again succeeds" runs 0 "$deliveryctl" secure --security
  check "$type: … neither the copies nor the database changed: Moodle was not asked" equals 0 pending_asks
  check "$type: … the plan still knows the copies match" equals plan_code_matches status_field rollback.notices.0.code
  # Someone upgrades the database outside the helper (the web installer, another admin): the copies'
  # code is now older than the database. Outside the invariants' check: the site is made
  # inconsistent on purpose.
  sql "UPDATE mdl_config SET value = '2024100800.00' WHERE name = 'version'" >/dev/null
  "$deliveryctl" secure --security >/dev/null 2>&1
  check "$type: after an upgrade outside the helper, Moodle is asked again" equals 1 pending_asks
  check "$type: … and the plan says the copies no longer match (no code-only rollback to them)" \
    equals plan_code_mismatch status_field rollback.notices.0.code
  sql "UPDATE mdl_config SET value = '2024100700.00' WHERE name = 'version'" >/dev/null
  check "$type: the database back as it was: secure succeeds" runs 0 "$deliveryctl" secure --security
  check "$type: … the answer for this code and these versions is known: Moodle was not asked" equals 0 pending_asks
  check "$type: … the copies match again" equals plan_code_matches status_field rollback.notices.0.code
  # After an upgrade, a code-only Run all makes the backup copy of code Moodle was never asked about
  # (the upgraded code); the restore's health check found production matching the database, and
  # the copy differs from it only in a page's contents: it matches too, without a question of its own.
  bash "$dir/revision2" >/dev/null 2>&1
  check "$type: run-all of an upgrade succeeds" runs 0 "$deliveryctl" run-all
  echo "// a fix of the page" >>"$dir/author/login/index.php"
  git -C "$dir/author" -c user.name=t -c user.email=t@example.invalid commit -qam "code only" && git -C "$dir/author" push -q origin HEAD
  check "$type: a code-only run-all --security succeeds" runs 0 "$deliveryctl" run-all --security
  check "$type: … Moodle was asked once (the health check), not again for the two new copies" equals 1 pending_asks
  check "$type: … the plan knows the copies match" equals "plan_code_matches security" rollback_plan_said

  rehearsal_scenarios
  rehearsal_killed
done

# Scenarios on PostgreSQL only (the engine's paths are the same for both databases).
if [[ " ${types[*]} " == *" pgsql "* && -f $tmp/servers/pgsql/env ]]; then
  # The loop above left its last type in $type; the invariants ask the database by its type.
  type=pgsql
  source "$tmp/servers/pgsql/env"
  # The rehearsal gave Moodle's role CREATEDB: the scenarios below take dumps, but the server's copy.
  sql "ALTER ROLE $DBUSER NOCREATEDB" >/dev/null
  server_copy_scenarios

  echo "# pgsql: the health check fails (login page 500): automatic rollback"
  site health-auto pgsql
  bash "$dir/revision2" >/dev/null 2>&1
  "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
  touch "$dir/moodledata/fixture-fail-login"
  check "pgsql: restore fails with health_check_failed" runs 1 "$deliveryctl" restore --json
  check "pgsql: … code health_check_failed, rolled back automatically" said_both health_check_failed "Rolled back automatically"
  check "pgsql: the backup copy serves" equals backup served
  check "pgsql: the database is back" equals 2024100700.00 db_version
  check "pgsql: the last health check is recorded as failed" equals false status_field lastHealthCheck.passed
  rm -f "$dir/moodledata/fixture-fail-login"
  check "pgsql: login page 200 once the failure is gone" equals 200 login_status

  echo "# pgsql: the health check fails with healthCheck.mode = ask"
  site health-ask pgsql --health-check ask
  bash "$dir/revision2" >/dev/null 2>&1
  "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
  touch "$dir/moodledata/fixture-fail-login"
  check "pgsql(ask): restore fails" runs 1 "$deliveryctl" restore
  check "pgsql(ask): production still serves, in maintenance mode" in_maintenance_on production
  check "pgsql(ask): still inside the delivery window: rollback needs no confirmation" equals false status_field rollback.needsConfirmation
  check "pgsql(ask): rollback restores code and database" runs 0 "$deliveryctl" rollback
  check "pgsql(ask): the database is back" equals 2024100700.00 db_version
  check "pgsql(ask): maintenance mode is off" maintenance_off
  rm -f "$dir/moodledata/fixture-fail-login"

  echo "# pgsql: a critical check the site already had does not fail the health check"
  site health-baseline pgsql
  echo core_fixture_old_problem > "$dir/moodledata/fixture-critical-check-always"
  bash "$dir/revision2" >/dev/null 2>&1
  check "pgsql: run-all succeeds despite the pre-existing critical check" runs 0 "$deliveryctl" run-all
  check "pgsql: … the health check says the site already had it" said "the site already had"

  echo "# pgsql: the snapshot cannot be taken"
  site snapshot-full pgsql
  bash "$dir/revision2" >/dev/null 2>&1
  small=$dir/small-fs
  mkdir -p "$small"
  if mount -t tmpfs -o size=64k,mode=0700 tmpfs "$small" 2>/dev/null; then
    mounts+=("$small")
    php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["database"] = ["enabled" => true, "keep" => 3, "directory" => $argv[2], "timeoutSeconds" => 600]; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG" "$small/snapshots"
    # Fill it so that not even the free-space check's margin is left.
    dd if=/dev/zero of="$small/filler" bs=1k count=60 status=none 2>/dev/null || true
    "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
    check "pgsql: a full file system: restore refused (snapshot_failed), upgrade not run" runs 1 "$deliveryctl" restore --json
    check "pgsql: … the error is snapshot_failed and names the free space" said_both snapshot_failed "free space"
    check "pgsql: … the backup copy still serves" equals backup served
    check "pgsql: … the database is untouched" equals 2024100700.00 db_version
    check "pgsql: … maintenance mode is off again" maintenance_off
    umount "$small" && mounts=()
  else
    echo "# (mount -t tmpfs is not allowed here: the full file system case is left out)"
  fi
  echo "# pgsql: the dump itself fails (a Moodle table the site's user may not read)"
  site snapshot-denied pgsql
  bash "$dir/revision2" >/dev/null 2>&1
  sql "CREATE TABLE mdl_zz_foreign (id int); REVOKE ALL ON mdl_zz_foreign FROM PUBLIC" >/dev/null
  "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
  check "pgsql: a failing dump: restore refused (exit 1)" runs 1 "$deliveryctl" restore --json
  check "pgsql: … snapshot_failed, with pg_dump's reason" said_both snapshot_failed "permission denied"
  check "pgsql: … the backup copy still serves, the database is untouched" serving_with_version backup 2024100700.00
  check "pgsql: … no partial dump left behind" bash -c "! ls '$dir/state/snapshots/'*.partial 2>/dev/null | grep -q ."
  check "pgsql: … the version is unchanged" equals 2024100700.00 db_version
  sql "DROP TABLE mdl_zz_foreign" >/dev/null

  echo "# pgsql: kill -9 of the helper during the upgrade"
  site killed pgsql
  bash "$dir/revision2" >/dev/null 2>&1
  echo 6 > "$dir/moodledata/fixture-slow-upgrade"
  "$deliveryctl" run-all >"$tmp/killed-run.log" 2>&1 &
  helper=$!
  for _ in $(seq 200); do grep -q "upgrade.php --non-interactive" "$dir/moodledata/fixture-calls.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  kill -9 "$helper" 2>/dev/null
  wait "$helper" 2>/dev/null
  check "pgsql: the helper died during the upgrade; status reports the interrupted operation" equals run-all status_field interrupted.operation
  check "pgsql: still inside the window: rollback needs no confirmation" equals false status_field rollback.needsConfirmation
  check "pgsql: rollback stops the orphaned upgrade and restores code and database" runs 0 "$deliveryctl" rollback
  check "pgsql: … it said it stopped the upgrade" said "still runs from the interrupted operation"
  sleep 7
  check "pgsql: the orphaned upgrade never finished (version still old after its sleep)" equals 2024100700.00 db_version
  check "pgsql: the schema change is undone" no_table mdl_local_foo_items
  check "pgsql: the backup copy serves, login 200" login_ok_on backup
  check "pgsql: recover records the interrupted operation" runs 0 "$deliveryctl" recover
  rm -f "$dir/moodledata/fixture-slow-upgrade"
  check "pgsql: restore then completes the delivery" runs 0 "$deliveryctl" restore
  check "pgsql: … with the upgrade in" equals 2024100800.00 db_version

  echo "# pgsql: only the newest snapshots are kept"
  php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["database"] = ["enabled" => true, "keep" => 1, "timeoutSeconds" => 600]; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
  before=$(ls "$dir/state/snapshots/"*.pgdump | wc -l)
  sed -i 's/2024100800.00/2024100900.00/' "$dir/author/version.php"
  git -C "$dir/author" -c user.name=t -c user.email=t@example.invalid commit -qam "revision 3" && git -C "$dir/author" push -q origin HEAD
  check "pgsql: a third delivery with an upgrade succeeds" runs 0 "$deliveryctl" run-all
  check "pgsql: keep = 1: one snapshot remains (there were $before)" equals 1 bash -c "ls '$dir/state/snapshots/'*.pgdump | wc -l"

  source "$project/Tests/Attacks/destructive.sh"
  attacks_destructive
fi

echo
echo "database: $passed passed, $failed failed"
((failed == 0))
