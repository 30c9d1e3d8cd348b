# The snapshot as PostgreSQL's own copy of the database and the rollback by two renames (sourced by
# Tests/Database/database.sh, which gives: site, check, runs, equals, said, status_field, sql,
# served, db_version, login_status, deliveryctl, tmp, dir, web_user and the server's env). The role
# is given CREATEDB here and loses it at the end; every other scenario takes dumps.

# admin_on DATABASE SQL: as the superuser on another database of the server.
admin_on() { "$ADMIN_CMD" --database "$1" "${@:2}"; }
database_exists() { [[ $(admin_on postgres "SELECT count(*) FROM pg_database WHERE datname = '$1'") == 1 ]]; }
copies_of() { admin_on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '%\_$1\_%' AND datname <> '$DBNAME'"; }
set_database_settings() { # JSON of the "database" member
  php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["database"] = json_decode($argv[2], true); file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG" "$1"
}
plan_copy() { "$deliveryctl" plan --json | php -r '$p = json_decode(stream_get_contents(STDIN), true); echo $p["snapshotSpace"]["serverCopyOf"] ?? "dump";'; }
# As the web user, with the password Moodle has: psql on DATABASE.
web_psql() {
  setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups \
    env PGPASSWORD="$DBPASS" psql -X -At -h 127.0.0.1 -p "$DBPORT" -U "$DBUSER" -d "$1" -c "$2"
}
web_refused_on() {
  local out
  out=$(web_psql "$1" "SELECT 1" 2>&1) && { echo "connected: $out"; return 1; }
  grep -q 'not currently accepting connections' <<<"$out" || { echo "$out"; return 1; }
}
copies_count() { echo "$(copies_of snapshot) $(copies_of replaced)"; }
no_site_database() { ! database_exists "$DBNAME"; }
backup_serves_open() { [[ $(served) == backup ]] && maintenance_off; }
open_with_login() { [[ $(login_status) == 200 ]] && maintenance_off; }
copy_recorded() { [[ -n $1 && -z $(status_field snapshot.file) ]]; }
used_copy_not_offered() { [[ $(status_field rollback.kind) != code_and_database ]]; }
back_before_midway() { [[ $(db_version) == 2024100700.00 ]] && no_table mdl_local_foo_items; }
# Without the invariants' reading (the site has no database while the swap is half done).
rollback_again() { last=$("$deliveryctl" rollback --restore-database 2>&1); }

server_copy_scenarios() {
  echo "# pgsql: the snapshot is the server's own copy; the rollback swaps it in by renames"
  sql "ALTER ROLE $DBUSER NOCREATEDB" >/dev/null
  site server-copy pgsql || { not_ok "pgsql: fixture site"; return; }
  bash "$dir/revision2" >/dev/null 2>&1
  "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
  check "pgsql: without CREATEDB the plan says the snapshot is a dump" equals dump plan_copy
  set_database_settings '{"method": "copy"}'
  check "pgsql: method copy without CREATEDB: restore refused (exit 1)" runs 1 "$deliveryctl" restore --json
  check "pgsql: … it says why and what to grant" said_both snapshot_failed "ALTER ROLE .*CREATEDB"
  check "pgsql: … the backup copy still serves, maintenance mode off" backup_serves_open
  check "pgsql: … the database version is the old one" equals 2024100700.00 db_version
  sql "ALTER ROLE $DBUSER CREATEDB" >/dev/null
  sql "CREATE TABLE other_application_data (id int)" >/dev/null
  check "pgsql: a table besides Moodle's in the database: the plan falls back to a dump" equals dump plan_copy
  sql "DROP TABLE other_application_data" >/dev/null
  check "pgsql: only Moodle's tables and CREATEDB: the plan says the server's copy of fixture" equals "$DBNAME" plan_copy
  set_database_settings '{"method": "auto", "keep": 1}'
  # What is set on the database itself must survive the rollback's renames.
  admin_on postgres "CREATE ROLE delivery_reader NOLOGIN" >/dev/null 2>&1
  admin_on postgres "REVOKE ALL ON DATABASE $DBNAME FROM PUBLIC" >/dev/null
  admin_on postgres "GRANT CONNECT ON DATABASE $DBNAME TO delivery_reader" >/dev/null
  admin_on postgres "ALTER DATABASE $DBNAME SET work_mem TO '9MB'" >/dev/null
  # A session of Moodle's role left on the database (a cron task, a pooled connection).
  setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups \
    env PGPASSWORD="$DBPASS" psql -X -h 127.0.0.1 -p "$DBPORT" -U "$DBUSER" -d "$DBNAME" -c "SELECT pg_sleep(600)" \
    >/dev/null 2>&1 &
  local sleeper=$!
  sleep 0.5
  check "pgsql: restore succeeds with the server's copy as the snapshot" runs 0 "$deliveryctl" restore
  wait "$sleeper" 2>/dev/null
  check "pgsql: … it said it copied, and ended the role's session left on the database" \
    said_both "the server copies fixture" "ended 1 session of fixture"
  local copy
  copy=$(status_field snapshot.copyDatabase)
  check "pgsql: … the copy is recorded ($copy), no dump file" copy_recorded "$copy"
  check "pgsql: … the copy is closed to connections" equals f admin_on postgres "SELECT datallowconn FROM pg_database WHERE datname = '$copy'"
  check "pgsql: … the web user, with Moodle's password, cannot connect to it" web_refused_on "$copy"
  check "pgsql: … the upgrade is in" equals 2024100800.00 db_version
  check "pgsql: … the plan: code and database" equals code_and_database status_field rollback.kind
  check "pgsql: … its confirmation says what users wrote since is kept in the replaced database" \
    equals plan_database_confirm_kept status_field rollback.notices.0.code
  sql "INSERT INTO mdl_forum_posts (message) VALUES ('written after the delivery')" >/dev/null

  # Killed between the two renames: the site has no database until the rollback runs again.
  DELIVERYCTL_TEST_KILL_AT="text:renamed aside" "$deliveryctl" rollback --restore-database >"$tmp/copy-killed.log" 2>&1 &
  wait $! 2>/dev/null
  check "pgsql: rollback killed between the renames: the site's database is renamed aside" no_site_database
  check "pgsql: … recover records the interrupted rollback" "$deliveryctl" recover
  check "pgsql: … the site shows the maintenance page meanwhile" test -e "$dir/moodledata/climaintenance.html"
  check "pgsql: rollback again finishes the swap" rollback_again
  check "pgsql: … and says where the replaced database is kept" said "kept on the server as"
  check "pgsql: … the database version is back" equals 2024100700.00 db_version
  check "pgsql: … the upgrade's table is gone" no_table mdl_local_foo_items
  check "pgsql: … the backup copy serves its login page (200), maintenance off" open_with_login
  local replaced
  replaced=$(status_field snapshot.replacedDatabase)
  check "pgsql: … the replaced database ($replaced) is kept, closed to connections" \
    equals f admin_on postgres "SELECT datallowconn FROM pg_database WHERE datname = '$replaced'"
  admin_on postgres "ALTER DATABASE $replaced ALLOW_CONNECTIONS true" >/dev/null
  check "pgsql: … what users wrote after the snapshot is in it, not lost" \
    equals 1 admin_on "$replaced" "SELECT count(*) FROM mdl_forum_posts WHERE message = 'written after the delivery'"
  admin_on postgres "ALTER DATABASE $replaced ALLOW_CONNECTIONS false" >/dev/null
  check "pgsql: … the database keeps its owner" equals "$DBUSER" admin_on postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$DBNAME'"
  check "pgsql: … its grants (PUBLIC none, delivery_reader CONNECT)" equals "f t" \
    admin_on postgres "SELECT has_database_privilege('public', '$DBNAME', 'CONNECT')::text::char || ' ' || has_database_privilege('delivery_reader', '$DBNAME', 'CONNECT')::text::char"
  check "pgsql: … and its settings (work_mem 9MB)" equals "{work_mem=9MB}" \
    admin_on postgres "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '$DBNAME' AND s.setrole = 0"
  check "pgsql: … and Moodle's role reaches it again" equals 1 web_psql "$DBNAME" "SELECT 1"
  check "pgsql: the rollback plan no longer offers the used copy" used_copy_not_offered

  echo "# pgsql: with copies, the upgrade fails midway: automatic rollback, then restore again"
  check "pgsql: cancel after the rollback succeeds" runs 0 "$deliveryctl" cancel
  sed -i 's/2024100800.00/2024100900.00/' "$dir/author/version.php"
  git -C "$dir/author" -c user.name=t -c user.email=t@example.invalid commit -qam "revision 3" && git -C "$dir/author" push -q origin HEAD
  echo midway > "$dir/moodledata/fixture-fail-upgrade"
  check "pgsql: run-all fails and rolls back automatically by the renames" runs 1 "$deliveryctl" run-all
  check "pgsql: … said so" said "Rolled back automatically"
  check "pgsql: … the version is the old one, the half-done table gone" back_before_midway
  rm -f "$dir/moodledata/fixture-fail-upgrade"
  check "pgsql: restore again makes a new copy (a name of its own) and upgrades" runs 0 "$deliveryctl" restore
  check "pgsql: … the upgrade is in" equals 2024100900.00 db_version
  check "pgsql: keep = 1: one snapshot copy and one replaced database remain" equals "1 1" copies_count

  echo "# pgsql: another role's session on the database: the copy cannot be made, a dump is taken instead"
  "$ADMIN_CMD" "SELECT pg_sleep(120)" >/dev/null 2>&1 &
  local other=$!
  sleep 0.5
  sed -i 's/2024100900.00/2024101000.00/' "$dir/author/version.php"
  git -C "$dir/author" -c user.name=t -c user.email=t@example.invalid commit -qam "revision 4" && git -C "$dir/author" push -q origin HEAD
  check "pgsql: run-all succeeds" runs 0 "$deliveryctl" run-all
  check "pgsql: … it said why the copy failed and that it dumped instead" \
    said_both "other roles have 1 session on it (postgres)" "dumping Moodle's tables instead"
  check "pgsql: … the snapshot is a dump file" bash -c "[[ -s \$1 ]]" _ "$(status_field snapshot.file)"
  check "pgsql: … the superuser's session was not ended (only Moodle's role's are)" kill -0 "$other"
  kill "$other" 2>/dev/null
  wait "$other" 2>/dev/null
  check "pgsql: … the upgrade is in" equals 2024101000.00 db_version

  admin_on postgres "REVOKE CONNECT ON DATABASE $DBNAME FROM delivery_reader" >/dev/null
  admin_on postgres "GRANT CONNECT, TEMPORARY ON DATABASE $DBNAME TO PUBLIC" >/dev/null
  admin_on postgres "ALTER DATABASE $DBNAME RESET work_mem" >/dev/null
  sql "ALTER ROLE $DBUSER NOCREATEDB" >/dev/null
}
