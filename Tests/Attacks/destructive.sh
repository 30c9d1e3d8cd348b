# What the web user's key can still destroy (issue 23), attacked for real: sourced by
# Tests/Database/database.sh, whose helpers (site, runs, check, equals, said, sql, db_version,
# served, status_field) and PostgreSQL fixture it uses. A live deliveryd serves a fixture site
# whose upgrade ran and whose delivery window closed (users wrote since the snapshot); the web user,
# holding the plugin's key, signs every request perfectly and names the administrator it likes
# (Tests/Attacks/key-client.php). See docs/SECURITY.md, "What the web user's key can still do".
#
#   attacks_destructive    a database restore outside the window: without a code, with a wrong, an
#                          expired and a replayed one (refused, the database dump byte for byte
#                          the same, audited), with a valid one (done), then wrong codes until the
#                          second factor locks (a valid code refused); a switch loop beyond the
#                          hourly limit (refused after the limit, audited, production served)

attacks_destructive() {
  local here_attacks deliveryd request_user=moodle-delivery run config enrolment secret answer
  here_attacks=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  deliveryd=${DELIVERYD_BINARY:-$(dirname "$deliveryctl")/deliveryd}
  [[ -x $deliveryd ]] || { not_ok "key attacks: no deliveryd at $deliveryd"; return; }
  id "$request_user" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$request_user"

  echo "# pgsql: what the web user's key can still destroy (as $web_user, against a live deliveryd)"
  site key-attack pgsql || { not_ok "key attacks: fixture site"; return; }
  bash "$dir/revision2" >/dev/null 2>&1
  check "key attacks: run-all with an upgrade (deliveryctl)" runs 0 "$deliveryctl" run-all
  sql "INSERT INTO mdl_forum_posts (message) VALUES ('written by students after the delivery')" >/dev/null
  check "key attacks: the database restore now needs confirmation (the window closed)" \
    equals true status_field rollback.needsConfirmation
  # A loop of switches: three an hour through the key, for this test.
  php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["operationLimits"] = ["switchesPerHour" => 3]; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"

  # The helper, as scripts/install runs it: key and socket for the web server's group only.
  run=$tmp/key-attack-run
  mkdir -p "$run"
  chmod 0755 "$run"
  head -c 48 /dev/urandom | base64 >"$dir/etc/deliveryd.key"
  chown root:"$web_user" "$dir/etc/deliveryd.key" "$dir/etc"
  chmod 0640 "$dir/etc/deliveryd.key"
  chmod 0750 "$dir/etc"
  cat >"$tmp/key-attack-deliveryd.json" <<JSON
{"socketPath": "$run/deliveryd.sock", "socketGroup": "$web_user", "allowedUids": [$(id -u "$web_user")],
 "keyFile": "$dir/etc/deliveryd.key", "siteConfiguration": "$DELIVERY_CONFIG", "requestUser": "$request_user",
 "workers": 4}
JSON
  "$deliveryd" --config "$tmp/key-attack-deliveryd.json" </dev/null >"$tmp/key-attack-deliveryd.log" 2>&1 &
  local helper=$!
  web_pids+=("$helper")
  for _ in $(seq 100); do [[ -S $run/deliveryd.sock ]] && break; sleep 0.1; done
  check "key attacks: deliveryd listens" test -S "$run/deliveryd.sock"
  config=$tmp/key-attack-client.json
  printf '{"socket": "%s", "key": "%s", "userId": 2, "userName": "Ada Admin"}' "$run/deliveryd.sock" \
    "$dir/etc/deliveryd.key" >"$config"
  chmod 0644 "$config"

  # attack OPERATION [OPTIONS.json]: one signed request by the web user; its answer in $last.
  attack() {
    last=$(cd /tmp && setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups \
      php "$here_attacks/key-client.php" "$config" "$@" 2>&1)
  }
  answered() { [[ $last == "$1"* ]] || { echo "answered: $last"; return 1; }; }
  # The data and schema, byte for byte (pg_dump's \restrict key is random on each run).
  dump() {
    local out
    out=$(PGPASSWORD=$DBPASS pg_dump -h "$DBHOST" -p "$DBPORT" -U "$DBUSER" "$DBNAME") || return 1
    [[ $out == *mdl_forum_posts* ]] || return 1
    grep -Ev '^\\(un)?restrict ' <<<"$out" | sha256sum
  }
  unchanged() {
    local now
    now=$(dump) || { echo "pg_dump failed"; return 1; }
    [[ $now == "$database_before" && $(served) == production && $(db_version) == 2024100800.00 ]] ||
      { echo "served $(served), version $(db_version), dump $([[ $now == "$database_before" ]] && echo same || echo changed)"; return 1; }
  }
  audited() {
    "$deliveryctl" log --json --limit 1 | php -r '$r = json_decode(stream_get_contents(STDIN), true)[0];
      exit($r["result"] === "refused" && $r["errorCode"] === $argv[1] && $r["actor"]["source"] === "moodle" ? 0 : 1);' "$1"
  }
  local database_before
  database_before=$(dump) || not_ok "key attacks: pg_dump of the fixture's database"

  attack rollback '{"confirmDatabaseRestore": true}'
  check "key attacks: a confirmed database restore without a code is refused (second_factor_required)" \
    answered "failed second_factor_required"
  check "key attacks: … nothing changed (the database dump byte for byte, production served)" unchanged
  check "key attacks: … and it is in the audit log" audited second_factor_required

  enrolment=$("$deliveryctl" admin enrol-totp 2 --name "Ada Admin" --json)
  secret=$(php -r 'echo json_decode(stream_get_contents(STDIN), true)["secret"];' <<<"$enrolment")
  check "key attacks: root enrols administrator 2 (deliveryctl admin enrol-totp; an otpauth URI)" \
    grep -q '"uri" : "otpauth://totp/' <<<"$enrolment"
  check "key attacks: the secret is root's alone (second-factor.json 0600 root)" \
    equals "600 root" stat -c '%a %U' "$dir/state/second-factor.json"
  check "key attacks: the web user cannot read it" \
    bash -c "! setpriv --reuid=$web_user --regid=$(id -g "$web_user") --init-groups cat '$dir/state/second-factor.json' 2>/dev/null"

  local valid wrong
  valid=$(php "$project/Tests/Support/totp.php" "$secret")
  wrong=$(printf '%06d' $(((10#$valid + 1) % 1000000)))
  attack rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$wrong\"}"
  check "key attacks: a wrong code is refused (second_factor_refused, wrong code)" \
    bash -c '[[ $1 == "failed second_factor_refused"*"wrong code"* ]]' _ "$last"
  check "key attacks: … nothing changed" unchanged
  check "key attacks: … audited" audited second_factor_refused

  attack rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$(php "$project/Tests/Support/totp.php" "$secret" -150)\"}"
  check "key attacks: a valid but expired code (2.5 minutes old) is refused" \
    bash -c '[[ $1 == "failed second_factor_refused"*"expired"* ]]' _ "$last"
  check "key attacks: … nothing changed" unchanged

  # The valid code at the start of a 30-second step: the replay below then falls in its window.
  sleep $((30 - $(date +%s) % 30 + 1))
  valid=$(php "$project/Tests/Support/totp.php" "$secret")
  attack rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$valid\"}"
  check "key attacks: with the administrator's valid code, the restore is done" answered "succeeded -"
  check "key attacks: … the database is back before the upgrade" equals 2024100700.00 db_version
  check "key attacks: … what users wrote since is gone, as confirmed" \
    equals 0 sql "SELECT count(*) FROM mdl_forum_posts WHERE message = 'written by students after the delivery'"
  check "key attacks: … the audit log names the administrator of the code" \
    bash -c "'$deliveryctl' log --json --limit 1 | grep -q '\"moodleUserId\" : 2'"

  # The same state again (a new delivery), and the same code sent again within its 30 seconds.
  runs 0 "$deliveryctl" cancel >/dev/null
  runs 0 "$deliveryctl" run-all >/dev/null
  database_before=$(dump) || not_ok "key attacks: pg_dump of the fixture's database"
  attack rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$valid\"}"
  check "key attacks: a replayed code is refused (already used)" \
    bash -c '[[ $1 == "failed second_factor_refused"*"already used"* ]]' _ "$last"
  check "key attacks: … nothing changed" unchanged

  # Failures so far: wrong, expired, replayed. Two more lock the second factor.
  attack rollback '{"confirmDatabaseRestore": true, "secondFactorCode": "000000"}'
  attack rollback '{"confirmDatabaseRestore": true, "secondFactorCode": "999999"}'
  check "key attacks: the fifth wrong code says the second factor is now locked" \
    bash -c '[[ $1 == *"now locked"* ]]' _ "$last"
  attack rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$(php "$project/Tests/Support/totp.php" "$secret" 30)\"}"
  check "key attacks: locked: even a valid code is refused (second_factor_locked)" \
    answered "failed second_factor_locked"
  check "key attacks: … nothing changed" unchanged
  check "key attacks: … audited" audited second_factor_locked
  check "key attacks: deliveryctl on the server is not asked for a code" \
    runs 0 "$deliveryctl" rollback --restore-database
  runs 0 "$deliveryctl" cancel >/dev/null

  # A loop of switches through the key: three an hour allowed here.
  local round
  for round in 1 2 3; do
    attack secure
    attack switch
    answered "succeeded" >/dev/null || break
    attack cancel
  done
  check "key attacks: three switches and cancels through the key in a row" answered "succeeded"
  attack secure
  attack switch
  check "key attacks: the fourth switch within the hour is refused (rate_limited)" answered "failed rate_limited"
  check "key attacks: … production still serves" equals production served
  check "key attacks: … audited" audited rate_limited
  check "key attacks: deliveryctl is not limited" runs 0 "$deliveryctl" switch
  runs 0 "$deliveryctl" cancel >/dev/null
  kill "$helper" 2>/dev/null
  wait "$helper" 2>/dev/null
}
