# The rehearsal scenarios of the database suite (sourced by Tests/Database/database.sh, which
# gives: site, check, runs, equals, said, status_field, sql, serving_with_version, db_version,
# deliveryctl, tmp, type, dir and the server's env). Moodle's upgrade is tried on a copy of the
# database: the real database (a dump of it) and the real dataroot (a digest of every file) must
# come out byte-for-byte as they went in, and nothing of the rehearsal may remain.

# The site's database as its server dumps it, as a digest.
site_dump() {
  case $type in
    # (pg_dump's \restrict lines carry a random key of each run.)
    pgsql) pg_dump -h "$DBSOCKETDIR" -p "$DBPORT" -U postgres --no-owner "$DBNAME" | grep -v '^\\\(un\)\?restrict ' | md5sum ;;
    mariadb) mariadb-dump --no-defaults --socket="$DBSOCKET" --skip-dump-date --single-transaction "$DBNAME" | md5sum ;;
  esac
}
# Every file of the real dataroot (name, size, mode, time, content), as a digest; but the
# fixture's call log, which the suite's own checks of the site write to (no_rehearsal_call says
# that no call of the rehearsal's went there).
dataroot_digest() {
  (cd "$dir/moodledata" && find . -mindepth 1 ! -name fixture-calls.log -printf '%p %s %m %T@\n' | sort &&
    find . -type f ! -name fixture-calls.log -exec md5sum {} + | sort) | md5sum
}
no_rehearsal_call() { ! grep "/site/rehearsal/" "$dir/moodledata/fixture-calls.log"; }
rehearsal_databases() {
  case $type in
    pgsql) sql "SELECT count(*) FROM pg_database WHERE datname LIKE '%\_rehearsal\_%'" ;;
    mariadb) sql "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE '%\_rehearsal\_%'" ;;
  esac
}
nothing_left() {
  [[ $(rehearsal_databases) == 0 ]] || { echo "a database copy is left: $(rehearsal_databases)"; return 1; }
  [[ ! -e $dir/site/rehearsal ]] || { echo "the rehearsal folder is left"; ls -la "$dir/site/rehearsal"; return 1; }
  [[ ! -e $dir/state/rehearsal-running.json ]] || { echo "the leftovers record is left"; return 1; }
  ! ls "$dir/state/"rehearsal-* >/dev/null 2>&1 || { echo "a dump is left: $(ls "$dir/state/")"; return 1; }
}
unchanged() { # WHAT WANT GOT
  [[ $2 == "$3" ]] || { echo "the $1 changed"; return 1; }
}
# as_owner COMMAND…: as the code's owner (CODE_OWNER, else root).
as_owner() {
  if [[ -n ${CODE_OWNER:-} ]]; then
    setpriv --reuid="$CODE_OWNER" --regid="$(id -g "$CODE_OWNER")" --init-groups env HOME=/tmp "$@"
  else
    "$@"
  fi
}
# author_commit MESSAGE: commits what the author tree holds and pushes it upstream.
author_commit() {
  [[ -z ${CODE_OWNER:-} ]] || chown -R "$CODE_OWNER:" "$dir/author"
  as_owner git -C "$dir/author" add -A
  as_owner git -C "$dir/author" -c user.name=fixture -c user.email=fixture@example.invalid commit -qm "$1"
  as_owner git -C "$dir/author" push -q origin main
}
# forum_upgrade VERSION STEPS: mod_forum at VERSION, with db/upgrade.php holding STEPS (PHP).
forum_upgrade() {
  sed -i "s/\$plugin->version = .*/\$plugin->version = $1;/" "$dir/author/mod/forum/version.php"
  cat > "$dir/author/mod/forum/db/upgrade.php" <<PHP
<?php
// FIXTURE forum upgrade steps.
function xmldb_forum_upgrade(\$oldversion) {
    global \$CFG;
$2
    return true;
}
PHP
}
grant_rehearsal() {
  case $type in
    pgsql) sql "ALTER ROLE $DBUSER CREATEDB" >/dev/null ;;
    mariadb)
      sql "GRANT ALL PRIVILEGES ON \`${DBNAME}\\_rehearsal\\_%\`.* TO '$DBUSER'@'127.0.0.1'" >/dev/null
      sql "GRANT ALL PRIVILEGES ON \`${DBNAME}\\_rehearsal\\_%\`.* TO '$DBUSER'@'localhost'" >/dev/null ;;
  esac
}

rehearsal_scenarios() {
  echo "# $type: rehearsal of Moodle's upgrade on a copy of the database (the code has an owner of its own)"
  id deliverycode >/dev/null 2>&1 ||
    useradd --system --user-group --create-home --home-dir /var/lib/deliverycode --shell /usr/sbin/nologin deliverycode
  local CODE_OWNER=deliverycode
  site "$type-rehearse" "$type" || { not_ok "$type: fixture site"; return; }
  as_owner bash "$dir/revision2" >/dev/null 2>&1
  # Moodle's schema read whole: tables enough that the columns' listing is over 256 kB (a real
  # Moodle 4.5's is about 280 kB), which a reading cut to its last bytes would take for tables dropped.
  php -r 'for ($t = 0; $t < 60; $t++) {
      $c = [];
      for ($i = 0; $i < 100; $i++) { $c[] = sprintf("column_with_a_rather_long_name_%03d INT", $i); }
      echo "CREATE TABLE mdl_zz_padding_$t (", implode(", ", $c), ");\n";
      if ($argv[1] === "pgsql") { echo "ALTER TABLE mdl_zz_padding_$t OWNER TO {$argv[2]};\n"; }
  }' "$type" "$DBUSER" | sql >/dev/null
  if [[ $type == pgsql ]]; then
    check "$type: without the right to create databases, rehearse is refused (exit 2) with the grant to run" \
      runs 2 "$deliveryctl" rehearse
    check "$type: … it names ALTER ROLE … CREATEDB" said "ALTER ROLE \"$DBUSER\" CREATEDB"
    check "$type: … and nothing was made" nothing_left
  fi
  grant_rehearsal
  local dump data rehearsed
  dump=$(site_dump)
  data=$(dataroot_digest)
  check "$type: rehearse of revision 2 passes (exit 0)" runs 0 "$deliveryctl" rehearse
  check "$type: … it says the upgrade's time, the copy and what changed" \
    said "The rehearsal of main @ .* passed: Moodle's upgrade took .* on a copy of the database (.*, copied in .*). Components upgraded: 2; tables added or dropped: 1; columns added, dropped or changed: 1."
  check "$type: … the schema diff names the table the upgrade adds" equals '["mdl_local_foo_items"]' status_field rehearsal.schema.addedTables
  check "$type: … and no table or column dropped (the schema was read whole)" \
    equals '[] []' bash -c "echo \$('$deliveryctl' status --json | php -r '\$s = json_decode(stream_get_contents(STDIN), true)[\"rehearsal\"][\"schema\"]; echo json_encode(\$s[\"droppedTables\"]), \" \", json_encode(\$s[\"droppedColumns\"]);')"
  check "$type: … and the column it adds to mdl_forum_posts" bash -c "[[ \$('$deliveryctl' status --json | php -r '\$s = json_decode(stream_get_contents(STDIN), true); echo implode(\",\", \$s[\"rehearsal\"][\"schema\"][\"addedColumns\"]);') == mdl_forum_posts.rating* ]]"
  check "$type: … core and mod_forum upgraded, from → to" equals "core 2024100700.00>2024100800.00 mod_forum 2024100700>2024100800" \
    php -r '$s = json_decode(stream_get_contents(STDIN), true); echo implode(" ", array_map(fn($u) => "{$u["component"]} {$u["from"]}>{$u["to"]}", $s["rehearsal"]["upgraded"]));' < <("$deliveryctl" status --json)
  check "$type: … the upgrade's time is measured" php -r '$s = json_decode(stream_get_contents(STDIN), true); exit(($s["rehearsal"]["upgradeSeconds"] ?? 0) > 0 ? 0 : 1);' < <("$deliveryctl" status --json)
  check "$type: … the real database is byte-for-byte unchanged (a dump before and after)" unchanged database "$dump" "$(site_dump)"
  check "$type: … the real dataroot is unchanged (every file's digest)" unchanged dataroot "$data" "$(dataroot_digest)"
  check "$type: … no script of the rehearsal logged a call in the real dataroot" no_rehearsal_call
  check "$type: … and production still at revision 1 (the database at 2024100700.00)" serving_with_version production 2024100700.00
  check "$type: … no database copy, folder or dump is left" nothing_left
  check "$type: … the audit record carries the rehearsal" equals "rehearse succeeded true" \
    php -r '$r = json_decode(stream_get_contents(STDIN), true)[0]; echo $r["operation"], " ", $r["result"], " ", var_export($r["rehearsal"]["passed"] ?? null, true);' < <("$deliveryctl" log --limit 1 --json)
  rehearsed=$(status_field rehearsal.revision.id)
  echo '<?php // FIXTURE a newer file' >"$dir/author/local/foo/newer.php"
  author_commit "a newer revision, after the rehearsal"
  check "$type: a newer upstream revision: the rehearsal is no longer current once checked" \
    bash -c "'$deliveryctl' check-upstream >/dev/null; [[ \$('$deliveryctl' status --json | php -r 'echo var_export(json_decode(stream_get_contents(STDIN), true)[\"rehearsalCurrent\"], true);') == false ]]"
  check "$type: run-all succeeds" runs 0 "$deliveryctl" run-all
  check "$type: … it brought exactly the rehearsed revision, not the newer one" \
    equals "$rehearsed" as_owner git -C "$dir/site/releases/production" rev-parse HEAD
  check "$type: … and says the rehearsal's prediction beside the upgrade's time" said "the rehearsal predicted"

  echo "# $type: a rehearsal that fails in its second upgrade step blocks the restore"
  forum_upgrade 2024100900 '    if ($oldversion < 2024100850) {
        fixture_pdo()->exec("CREATE TABLE {$CFG->prefix}forum_extra (id INT)");
        upgrade_mod_savepoint(true, 2024100850, "forum");
    }
    if ($oldversion < 2024100900) {
        throw new Exception("Fixture: the second step of the forum upgrade fails");
    }'
  author_commit "forum: a two-step upgrade whose second step fails"
  dump=$(site_dump)
  data=$(dataroot_digest)
  check "$type: rehearse fails (exit 1)" runs 1 "$deliveryctl" rehearse
  check "$type: … naming the component and Moodle's message" said "stopped in mod_forum: Fixture: the second step of the forum upgrade fails"
  check "$type: … the copy had reached the first step's savepoint" equals 2024100850 status_field rehearsal.failure.reachedVersion
  check "$type: … the real database is byte-for-byte unchanged" unchanged database "$dump" "$(site_dump)"
  check "$type: … the real dataroot is unchanged" unchanged dataroot "$data" "$(dataroot_digest)"
  check "$type: … nothing of the rehearsal is left" nothing_left
  check "$type: run-all of that revision is refused (exit 2), nothing changed" runs 2 "$deliveryctl" run-all
  check "$type: … refused_rehearsal_failed" said "Run-all refused: the rehearsal of .* failed"
  "$deliveryctl" secure >/dev/null && "$deliveryctl" switch >/dev/null && "$deliveryctl" update >/dev/null
  check "$type: restore of the failed revision is refused (exit 2, rehearsal_failed)" runs 2 "$deliveryctl" restore --json
  check "$type: … the backup copy still serves, the database untouched" serving_with_version backup 2024100800.00
  check "$type: restore --confirm-failed-rehearsal goes on; its upgrade fails as rehearsed, rolled back" \
    runs 1 "$deliveryctl" restore --confirm-failed-rehearsal
  check "$type: … the audit record says the failed rehearsal was overridden" equals "restore true" \
    php -r '$r = json_decode(stream_get_contents(STDIN), true)[0]; echo $r["operation"], " ", var_export($r["rehearsalOverridden"] ?? null, true);' < <("$deliveryctl" log --limit 1 --json)
  check "$type: … and the database is back at 2024100800.00" equals 2024100800.00 db_version
  # The upstream moves on past the failed revision: a Run all of the newer one is not held by the
  # older one's failed rehearsal (it was the same base: production's revision).
  # (Not through the invariants' check: it reads the code owner's working copy as root, which git refuses.)
  check "$type: cancel brings production back to its revision" "$deliveryctl" cancel
  forum_upgrade 2024100900 '    if ($oldversion < 2024100900) {
        upgrade_mod_savepoint(true, 2024100900, "forum");
    }'
  author_commit "forum: the second step fixed"
  check "$type: run-all of the newer revision is not held by the failed rehearsal of the older one" \
    runs 0 "$deliveryctl" run-all
  check "$type: … and delivered it" equals 2024100900 \
    sql "SELECT max(value) FROM mdl_config_plugins WHERE plugin = 'mod_forum' AND name = 'version'"
}

# kill -9 of deliveryctl while the rehearsal's upgrade runs, then recover (PostgreSQL).
rehearsal_killed() {
  echo "# $type: kill -9 during a rehearsal, then recover"
  site "$type-rehearse-killed" "$type" || { not_ok "$type: fixture site"; return; }
  grant_rehearsal
  # Bad inputs first: each refused (exit 2) with one clear reason, nothing made.
  check "$type: nothing waits upstream: rehearse is refused (exit 2), saying so" runs 2 "$deliveryctl" rehearse
  check "$type: … 'there is nothing to rehearse', nothing made" \
    bash -c "grep -q 'there is nothing to rehearse' <<<\"\$1\" && [[ ! -e '$dir/site/rehearsal' ]]" _ "$last"
  local config=$dir/site/releases/production/config.php saved
  saved=$(cat "$config")
  sed -i "s|require_once(__DIR__ . '/lib/setup.php');|require_once('$dir/site/releases/production/lib/setup.php');|" "$config"
  check "$type: a config.php loading lib/setup.php by an absolute path: refused (exit 2), the reason said" \
    runs 2 "$deliveryctl" rehearse
  check "$type: … it names the line Moodle writes, nothing made" \
    bash -c "grep -q \"does not load lib/setup.php relatively\" <<<\"\$1\" && [[ ! -e '$dir/site/rehearsal' ]] && [[ \$(ls '$dir/state' | grep -c rehearsal) == 0 ]]" _ "$last"
  printf '%s\n' "$saved" >"$config"
  forum_upgrade 2024100900 '    if ($oldversion < 2024100900) {
        sleep(30);
    }'
  author_commit "forum: a slow upgrade step"
  local dump
  dump=$(site_dump)
  "$deliveryctl" rehearse >"$tmp/rehearse-killed.log" 2>&1 &
  local helper=$!
  for _ in $(seq 300); do
    grep -q "upgrade.php --non-interactive" "$dir/site/rehearsal/dataroot/fixture-calls.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5
  # The web user, while the rehearsal runs: links planted in the scratch dataroot (its own) toward
  # a folder of root's, which the cleanup must remove as links, never follow; and the rehearsal's
  # folder, the copy's tree and its settings, which it must not be able to write.
  local victim=$tmp/rehearsal-victim
  mkdir -p "$victim/inner" && echo keep >"$victim/keep" && echo keep >"$victim/inner/keep"
  as_web() { setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups "$@"; }
  as_web ln -s "$victim" "$dir/site/rehearsal/dataroot/link-to-folder" 2>/dev/null
  as_web ln -s "$victim/keep" "$dir/site/rehearsal/dataroot/link-to-file" 2>/dev/null
  as_web mkdir -p "$dir/site/rehearsal/dataroot/deep" && as_web ln -s "$victim/inner" "$dir/site/rehearsal/dataroot/deep/in" 2>/dev/null
  check "$type: attack: the web user can plant links in the scratch dataroot (its own)" \
    test -L "$dir/site/rehearsal/dataroot/link-to-folder"
  check "$type: attack: the web user cannot write in the rehearsal's folder, tree or settings" \
    bash -c "! setpriv --reuid=$web_user --regid=$(id -g "$web_user") --init-groups touch '$dir/site/rehearsal/x' '$dir/site/rehearsal/tree/x.php' '$dir/site/rehearsal/settings/x.php' 2>/dev/null; [[ ! -e '$dir/site/rehearsal/x' && ! -e '$dir/site/rehearsal/tree/x.php' && ! -e '$dir/site/rehearsal/settings/x.php' ]]"
  check "$type: attack: the web user cannot change the rehearsal's settings (the database it points at)" \
    bash -c "! setpriv --reuid=$web_user --regid=$(id -g "$web_user") --init-groups sh -c 'echo x >> \"\$1\"' sh '$dir/site/rehearsal/settings/lib/setup.php' 2>/dev/null"
  kill -9 "$helper" 2>/dev/null
  wait "$helper" 2>/dev/null
  check "$type: the rehearsal's upgrade was running when the helper died" \
    grep -q "upgrade.php --non-interactive" "$dir/site/rehearsal/dataroot/fixture-calls.log"
  check "$type: … at a lower CPU priority than the site (nice 10), as the web user" \
    grep -q "upgrade.php --non-interactive uid=$(id -u "$web_user") nice=10 " "$dir/site/rehearsal/dataroot/fixture-calls.log"
  check "$type: status reports the interrupted rehearsal" equals rehearse status_field interrupted.operation
  check "$type: recover succeeds" runs 0 "$deliveryctl" recover
  check "$type: … it removed the rehearsal's copy and folder" said "interrupted rehearsal"
  check "$type: … no database copy, folder or dump is left" nothing_left
  check "$type: … the orphaned upgrade is stopped" bash -c "! pgrep -f '[${dir:0:1}]${dir:1}/site/rehearsal/tree' >/dev/null"
  check "$type: … the real database is byte-for-byte unchanged" unchanged database "$dump" "$(site_dump)"
  check "$type: attack: the cleanup removed the planted links and followed none (root's files intact)" \
    bash -c "[[ \$(cat '$victim/keep') == keep && \$(cat '$victim/inner/keep') == keep ]]"

  echo "# $type: Run all rehearses first (\"rehearsal\": {\"beforeRunAll\": true}); a failed rehearsal stops it"
  php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["rehearsal"] = ["beforeRunAll" => true]; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
  forum_upgrade 2024101000 '    if ($oldversion < 2024101000) {
        throw new Exception("Fixture: the forum upgrade fails");
    }'
  author_commit "forum: an upgrade that fails"
  local before
  before=$(git -C "$dir/site/releases/production" rev-parse HEAD)
  check "$type: run-all fails in its rehearsal (exit 1)" runs 1 "$deliveryctl" run-all
  check "$type: … naming where the upgrade stopped" said "stopped in mod_forum: Fixture: the forum upgrade fails"
  check "$type: … before anything changed: idle, production served at its revision, the database as it was" \
    bash -c "[[ \$('$deliveryctl' status --json | php -r '\$s = json_decode(stream_get_contents(STDIN), true); echo \$s[\"phase\"], \" \", \$s[\"served\"];') == 'idle production' && \$(git -C '$dir/site/releases/production' rev-parse HEAD) == '$before' ]]"
  check "$type: … the real database is byte-for-byte unchanged" unchanged database "$dump" "$(site_dump)"
  check "$type: … nothing of the rehearsal is left" nothing_left
}
