#!/usr/bin/env bash
# The end-to-end suite: a Moodle-shaped FIXTURE site (Tests/Fixture/make-site, git) adopted with
# `deliveryctl init`, served by a real nginx + PHP-FPM (OPcache on, validate_timestamps off) through
# `current` with $realpath_root, and driven through deliveryd by the Moodle plugin's own client
# code (Tests/EndToEnd/driver.php, run as the web user www-data), under concurrent load for the switches.
# The code owner (deliverycode) and the web user (www-data) are distinct real accounts.
#
# Run as root on Debian 12 (scripts/test-e2e installs the packages and builds the binaries):
#   DELIVERYD_BINARY=… DELIVERYCTL_BINARY=… bash Tests/EndToEnd/e2e.sh
# Environment: E2E_KEEP=1 keeps the temporary folder; E2E_SWITCHES (default 20),
# E2E_CONCURRENCY (default 8) tune the switches under load; E2E_OPCACHE_RESET=1 resets the pool's
# OPcache after every operation (a workaround, NOT the default: it would hide stale compiled code).
# Everything it starts (nginx, php-fpm, deliveryd) is stopped and its folder removed on exit.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
deliveryd=${DELIVERYD_BINARY:?set DELIVERYD_BINARY}
deliveryctl=${DELIVERYCTL_BINARY:?set DELIVERYCTL_BINARY}
code_owner=${E2E_CODE_OWNER:-deliverycode}
web_user=www-data

suite=e2e
source "$project/Tests/Support/suite.sh"

((EUID == 0)) || { echo "e2e.sh runs as root" >&2; exit 1; }
for binary in "$deliveryd" "$deliveryctl"; do
  [[ -x $binary ]] || { echo "not an executable: $binary" >&2; exit 1; }
done
php_fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -1)
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $php_fpm && -x $nginx_bin ]] || { echo "php-fpm and nginx are needed (scripts/test-e2e installs them)" >&2; exit 1; }


# ---------------------------------------------------------------------------------------------
# The temporary folder, and the clean-up of everything started here (even on failure).
tmp=$(mktemp -d /tmp/delivery-e2e.XXXXXX)
chmod 0755 "$tmp"
# Installed as scripts/install does: the three programs side by side in a folder of root's that
# the code owner can reach (it runs delivery-copy, which makes the copies).
mkdir -m 0755 "$tmp/bin"
install -m 0755 "$deliveryd" "$deliveryctl" "$(dirname "$deliveryd")/delivery-copy" "$tmp/bin/"
deliveryd=$tmp/bin/deliveryd
deliveryctl=$tmp/bin/deliveryctl
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n ${E2E_KEEP:-} ]]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dir=$tmp/fixture           # the fixture: upstream, author, moodle, moodledata, site, state, etc
run=$tmp/run               # sockets: root and www-data only
logs=$tmp/logs
work=$tmp/www              # the web user's scratch (load results)
mkdir -p "$run" "$logs" "$work" "$tmp/nginx/temp" "$tmp/fpm" "$tmp/probe"
chown root:"$web_user" "$run" && chmod 0750 "$run"
chown "$web_user":"$web_user" "$work"

# ---------------------------------------------------------------------------------------------
section "Accounts"
if ! id "$code_owner" >/dev/null 2>&1; then
  useradd --system --user-group --create-home --home-dir "/var/lib/$code_owner" --shell /usr/sbin/nologin "$code_owner"
fi
id "$web_user" >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/www --shell /usr/sbin/nologin "$web_user"
request_user=moodle-delivery
id "$request_user" >/dev/null 2>&1 ||
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$request_user"
owner_uid=$(id -u "$code_owner")
web_uid=$(id -u "$web_user")
if [[ $owner_uid != "$web_uid" && $owner_uid != 0 && $web_uid != 0 ]] && ! id -nG "$web_user" | grep -qw "$code_owner"; then
  ok "code owner $code_owner (uid $owner_uid) and web user $web_user (uid $web_uid) are distinct real accounts"
else
  fatal "code owner and web user must be distinct, non-root accounts"
fi

# ---------------------------------------------------------------------------------------------
section "Fixture site"
port=$(php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);')
url=http://127.0.0.1:$port
bash "$project/Tests/Fixture/make-site" --vcs git --dir "$dir" --wwwroot "$url" --component-cache >/dev/null || fatal "make-site failed"
chown -R "$code_owner:$code_owner" "$dir/upstream" "$dir/author" "$dir/moodle" "$dir/revision2"
chown -R "$web_user:$web_user" "$dir/moodledata"
# As Moodle recommends (directorypermissions 02777 less others): the web server's group writes the
# dataroot (the code owner builds component caches with that group).
chmod 2770 "$dir/moodledata"
# As many real sites do: config.php is tracked and changed on the site. A site-local file (issue
# 15): every delivery below runs with it, and it must come out byte for byte as the site had it.
as "$code_owner" sed -i "s|^\\\$CFG->admin .*|&\\n\\\$CFG->e2e_site_local = 'this site only';|" "$dir/moodle/config.php"
grep -q e2e_site_local "$dir/moodle/config.php" || fatal "the fixture's config.php was not changed"
site_local_config=$(sha256sum <"$dir/moodle/config.php")
# A site-local file of root's that holds a secret, readable by the web server's group only (as
# config.php is on real sites; the fixture's config.php is under version control, the code owner's).
echo "<?php // e2e: a secret of this site" >"$dir/moodle/site-secret.php"
chown "root:$web_user" "$dir/moodle/site-secret.php"
chmod 0640 "$dir/moodle/site-secret.php"
mkdir -p "$dir/etc"
if "$deliveryctl" init --moodle "$dir/moodle" --site-root "$dir/site" --state-dir "$dir/state" \
  --config "$dir/etc/site.json" --web-user "$web_user" --code-owner "$code_owner" \
  --php-fpm-socket "$run/php-fpm.sock" --no-database-snapshot >"$logs/init.log" 2>&1; then
  ok "deliveryctl init adopted the fixture (site root $dir/site)"
else
  cat "$logs/init.log"
  fatal "deliveryctl init failed"
fi
export DELIVERY_CONFIG=$dir/etc/site.json
# The plugin in production, as scripts/install puts it (out of git's view): the restore's health
# check asks its cli/health.php.
as "$code_owner" mkdir -p "$dir/site/releases/production/admin/tool"
as "$code_owner" cp -r "$project/moodle-plugin" "$dir/site/releases/production/admin/tool/delivery"
echo "/admin/tool/delivery/" >>"$dir/site/releases/production/.git/info/exclude"
# The load phase alone switches 20 times through the key: above the hourly limits of a real site
# (Tests/Attacks/destructive.sh shows them).
php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["operationLimits"] = ["switchesPerHour" => 500, "restoresPerHour" => 500, "rollbacksPerHour" => 500]; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
check "current serves releases/production" test "$(readlink -f "$dir/site/current")" = "$(readlink -f "$dir/site/releases/production")"

# publish N VERSION: the author commits revision N (core version VERSION, a new file) and pushes it
# upstream, as the code owner (git refuses repositories owned by someone else).
publish() {
  local n=$1 version=$2 a=$dir/author
  if ((n == 2)); then
    as "$code_owner" bash "$dir/revision2"
    return
  fi
  as "$code_owner" sed -i -E "s/^[\$]version( *)= [0-9.]+;/\$version\\1= ${version};/; s/fixture revision [0-9]+/fixture revision ${n}/" "$a/version.php" &&
    as "$code_owner" sh -c "echo '<?php // FIXTURE revision $n' > '$a/local/foo/rev$n.php'" &&
    as "$code_owner" git -C "$a" add -A &&
    as "$code_owner" git -C "$a" -c user.name=fixture -c user.email=fixture@example.invalid commit -qm "revision $n" &&
    as "$code_owner" git -C "$a" push -q origin main
}

# ---------------------------------------------------------------------------------------------
section "Stack: deliveryd, PHP-FPM, nginx"
key=$dir/etc/deliveryd.key
head -c 48 /dev/urandom | base64 >"$key"
chown root:"$web_user" "$key" "$dir/etc" && chmod 0640 "$key" && chmod 0750 "$dir/etc"
cat >"$tmp/deliveryd.json" <<JSON
{
  "socketPath": "$run/deliveryd.sock",
  "socketGroup": "$web_user",
  "allowedUids": [$web_uid, 0],
  "keyFile": "$key",
  "siteConfiguration": "$dir/etc/site.json",
  "requestUser": "$request_user",
  "workers": 4,
  "limits": {"readTimeoutSeconds": 5, "clockSkewSeconds": 60, "retainedJobs": 16}
}
JSON
"$deliveryd" --config "$tmp/deliveryd.json" </dev/null >"$logs/deliveryd.log" 2>&1 &
pids+=($!)
monitor_pid=$!

cat >"$tmp/fpm/php-fpm.conf" <<CONF
[global]
pid = $tmp/fpm/php-fpm.pid
error_log = $logs/php-fpm.log
daemonize = no

[e2e]
user = $web_user
group = $web_user
listen = $run/php-fpm.sock
listen.owner = $web_user
listen.group = $web_user
listen.mode = 0660
pm = static
pm.max_children = 8
catch_workers_output = yes
; opcache.enable=1 is given on the command line: a pool may only turn OPcache off. With
; validate_timestamps=0 a compiled file is never checked again; file_update_protection=0 caches even
; files younger than 2 s (this fixture's are), so that stale compiled code cannot hide.
php_admin_value[opcache.validate_timestamps] = 0
php_admin_value[opcache.file_update_protection] = 0
php_admin_value[error_log] = $logs/php-errors.log
php_admin_flag[log_errors] = on
CONF
"$php_fpm" -d opcache.enable=1 --fpm-config "$tmp/fpm/php-fpm.conf" --nodaemonize </dev/null >>"$logs/php-fpm.log" 2>&1 &
pids+=($!)

# The console location comes from deploy/nginx-console.conf, pointed at our socket (its relative
# `include fastcgi_params` finds Debian's file next to our nginx.conf).
cp /etc/nginx/fastcgi_params "$tmp/nginx/fastcgi_params"
sed "s#unix:/run/deliveryd/deliveryd.sock#unix:$run/deliveryd.sock#" "$project/deploy/nginx-console.conf" >"$tmp/nginx/console.conf"
cat >"$tmp/probe/opcache.php" <<'PHP'
<?php
// The test's own probe (outside the site): what OPcache does in this pool.
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
$answer = ['enabled' => is_array($status) && !empty($status['opcache_enabled']),
    'validate_timestamps' => ini_get('opcache.validate_timestamps'), 'uid' => posix_geteuid()];
if (isset($_GET['reset'])) {
    // E2E_OPCACHE_RESET=1 only: the workaround, to check everything else past the stale-code finding.
    $answer['reset'] = opcache_reset();
}
if (isset($_GET['scripts'])) {
    // The cached scripts: full path => the modification time OPcache compiled.
    $scripts = (opcache_get_status(true) ?: [])['scripts'] ?? [];
    $answer['scripts'] = array_map(fn($script) => $script['timestamp'] ?? 0, $scripts);
}
echo json_encode($answer, JSON_UNESCAPED_SLASHES);
PHP
cat >"$tmp/nginx/nginx.conf" <<CONF
user $web_user;
worker_processes 2;
pid $tmp/nginx/nginx.pid;
error_log $logs/nginx-error.log;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path $tmp/nginx/temp/body;
  fastcgi_temp_path $tmp/nginx/temp/fastcgi;
  proxy_temp_path $tmp/nginx/temp/proxy;
  uwsgi_temp_path $tmp/nginx/temp/uwsgi;
  scgi_temp_path $tmp/nginx/temp/scgi;
  map \$realpath_root \$delivery_tree { "~/(?<tree>[^/]+)(/public)?\$" \$tree; }
  server {
    listen 127.0.0.1:$port;
    server_name localhost;
    root $dir/site/current;
    index index.php;
    # As init advises: the tree that answers, which the helper checks after each switch.
    add_header X-Delivery-Tree \$delivery_tree always;
    location ~ [^/]\.php(/|\$) {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$realpath_root\$fastcgi_script_name;
      fastcgi_param DOCUMENT_ROOT \$realpath_root;
      fastcgi_pass unix:$run/php-fpm.sock;
    }
    location = /__e2e/opcache.php {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $tmp/probe/opcache.php;
      fastcgi_pass unix:$run/php-fpm.sock;
    }
    include $tmp/nginx/console.conf;
  }
}
CONF
"$nginx_bin" -e "$logs/nginx-error.log" -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' </dev/null >>"$logs/nginx.log" 2>&1 &
pids+=($!)

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
socket_answers() { php -r 'exit(@stream_socket_client("unix://" . $argv[1], $e, $s, 1) ? 0 : 1);' "$1"; }
http_get() { php -r '$c = curl_init($argv[1]); curl_setopt_array($c, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 5]);
  $b = curl_exec($c); if ($b === false || curl_getinfo($c, CURLINFO_RESPONSE_CODE) != 200) exit(1); echo $b;' "$1"; }
if wait_for 20 socket_answers "$run/deliveryd.sock"; then ok "deliveryd answers on $run/deliveryd.sock"; else
  cat "$logs/deliveryd.log"; fatal "deliveryd did not start"; fi
if wait_for 20 test -S "$run/php-fpm.sock"; then ok "PHP-FPM pool (as $web_user) listens on $run/php-fpm.sock"; else
  cat "$logs/php-fpm.log"; fatal "php-fpm did not start"; fi
if wait_for 20 http_get "$url/index.php"; then ok "nginx serves the site on $url"; else
  cat "$logs/nginx-error.log" "$logs/nginx.log" 2>/dev/null; fatal "nginx does not serve $url"; fi
tree_header=$(curl --silent --max-time 5 --output /dev/null --dump-header - "$url/" | tr -d '\r' | sed -n 's/^X-Delivery-Tree: //Ip')
check "nginx names the tree that answers as init advises (X-Delivery-Tree: $tree_header)" test "$tree_header" = production
check "the deliveryd socket is 0660 root:$web_user" test "$(stat -c '%a %U %G' "$run/deliveryd.sock")" = "660 root $web_user"
# Split as root: the engine in the root monitor, what reads the web server's bytes as $request_user.
check "deliveryd's monitor runs as root" test "$(ps -o user:32= -p "$monitor_pid" | tr -d ' ')" = root
check "deliveryd's request side runs as $request_user, without capabilities or new privileges" \
  test "$(ps -o user:32= --ppid "$monitor_pid" | tr -d ' ')|$(grep -hE '^(CapEff|NoNewPrivs):' /proc/"$(pgrep -P "$monitor_pid" | head -1)"/status | tr -d '\t' | tr '\n' ' ')" = "$request_user|CapEff:0000000000000000 NoNewPrivs:1 "
probe=$(http_get "$url/__e2e/opcache.php")
if [[ $probe == *'"enabled":true'* && $probe == *'"validate_timestamps":"0"'* && $probe == *"\"uid\":$web_uid"* ]]; then
  ok "PHP-FPM runs as $web_user with OPcache on and validate_timestamps=0 ($probe)"
else
  not_ok "PHP-FPM OPcache settings: $probe"
fi

# ---------------------------------------------------------------------------------------------
# The driver runs as the web user, like the plugin, through the plugin's client code.
cat >"$tmp/e2e.json" <<JSON
{"socket": "$run/deliveryd.sock", "key": "$key", "url": "$url", "siteRoot": "$dir/site",
 "work": "$work", "switches": ${E2E_SWITCHES:-20}, "concurrency": ${E2E_CONCURRENCY:-8},
 "opcacheReset": $([[ -n ${E2E_OPCACHE_RESET:-} ]] && echo true || echo false)}
JSON
chmod 0644 "$tmp/e2e.json"
# wait_for_schedule: waits, asking nothing of the helper but its status from root, until the
# scheduled Run all has run (no schedule, nothing running); at most 150 seconds.
wait_for_schedule() {
  section "Waiting for the scheduled Run all (no browser, no cron: the helper's timer)"
  local deadline=$((SECONDS + 150)) status=""
  while ((SECONDS < deadline)); do
    # The scheduled run's own audit record is written when it ends (its `started` record before).
    status=$("$deliveryctl" log --json --limit 1 2>/dev/null || true)
    if php -r '$r = json_decode($argv[1], true)[0] ?? [];
      exit(($r["scheduled"] ?? false) === true && ($r["result"] ?? "started") !== "started" ? 0 : 1);' "$status"; then
      ok "the scheduled Run all ran by itself ($((SECONDS - deadline + 150)) s after scheduling)"
      return
    fi
    sleep 2
  done
  not_ok "the scheduled Run all did not run within 150 s: $(head -c 400 <<<"$status")"
}

driver() { # driver PHASE: runs one phase of driver.php as the web user and counts its results
  local phase=$1 log=$logs/driver-$1.log status
  section "Driver ($web_user, plugin client): $phase"
  (cd "$here" && as "$web_user" php "$here/driver.php" "$tmp/e2e.json" "$phase") 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  local p f
  p=$(grep -c '^ok - ' "$log")
  f=$(grep -c '^not ok - ' "$log")
  passed=$((passed + p))
  failed=$((failed + f))
  if ((status != 0 && f == 0)); then not_ok "driver phase $phase exited with status $status"; fi
}

# counted LOG COMMAND...: runs a test program that prints "ok - …" / "not ok - …" lines, and
# counts them (Debian's python3, which has python3-selenium, whatever python3 comes first on PATH).
counted() {
  local log=$1 status p f; shift
  "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  p=$(grep -c '^ok - ' "$log")
  f=$(grep -c '^not ok - ' "$log")
  passed=$((passed + p))
  failed=$((failed + f))
  if ((status != 0 && f == 0)); then not_ok "$(basename "$2") exited with status $status"; fi
}

# console_browser: the emergency console in headless Chromium (Tests/EndToEnd/console_browser.py, as
# root, the browser without its sandbox): it loads without a JavaScript error, shows the state, and
# its Emergency rollback button, once confirmed, rolls the site back to the backup copy (revision
# 3); then the audit log must name the console as the rollback's source.
console_browser() {
  section "Emergency console in a browser (Selenium, headless Chromium)"
  counted "$logs/console-browser.log" /usr/bin/python3 "$here/console_browser.py" --url "$url" \
    --token-file "$work/console-token" --phase idle --served production --rollback --expect-tree backup \
    --expect-version 2024100900
  "$deliveryctl" log --json --limit 5 >"$logs/console-audit.json" 2>&1
  if php -r '
    $data = json_decode(file_get_contents($argv[1]), true);
    $records = $data["records"] ?? $data ?? [];
    foreach ($records as $record) { // newest first
      if (($record["operation"] ?? "") === "rollback") {
        exit(($record["actor"]["source"] ?? "") === "console" && ($record["result"] ?? "") === "succeeded"
          && ($record["actor"]["name"] ?? "") === "Ada E2E Admin" ? 0 : 1);
      }
    }
    exit(1);' "$logs/console-audit.json"; then
    ok "the audit log records the rollback as succeeded, by Ada E2E Admin from source console"
  else
    not_ok "the audit log does not name the console as the rollback's source: $(head -c 600 "$logs/console-audit.json")"
  fi
}

section "The plugin's AMD module in a browser (Selenium, headless Chromium; a fixture page, no Moodle)"
counted "$logs/amd-browser.log" /usr/bin/python3 "$here/amd_browser.py"
driver initial        # peer and signature checks, status, the site serves production revision 1
source "$project/Tests/Attacks/attacks.sh"
attacks_begin         # the web user's watcher races the helper from now on; the decoy it aims at
driver steps-1        # secure (with security copy), switch
section "Publishing revision 2 upstream (as $code_owner)"
check "revision 2 published" publish 2 2024100800.00
driver steps-2        # update (old version still served), restore (new version served)
section "Publishing revision 3 upstream (as $code_owner)"
check "revision 3 published" publish 3 2024100900.00
attacks_trace_start   # strace on deliveryd during run-all
driver schedule       # the upstream watch sees revision 3; a Run all of it is scheduled a minute ahead
wait_for_schedule     # nobody asks anything: the helper's own timer starts it
driver scheduled      # revision 3 served; the report has its steps, versions and maintenance window
driver run-all        # run-all again (nothing new upstream): revision 3 still served
attacks_trace_check   # no path resolved through a folder a less-privileged user can write
attacks_check_caches  # every component cache built by the code owner, the decoy untouched
section "Publishing revision 4 upstream (as $code_owner)"
check "revision 4 published" publish 4 2024101000.00
driver cancel         # secure, switch, update, cancel: back to revision 3
driver rollback       # the rollback target is the backup copy; a console token for the browser
console_browser       # emergency rollback pressed in the console (headless Chromium): backup served
driver rolled-back    # the backup copy (revision 3, matching the database) is served
driver load           # 20+ switches (restore / rollback) under concurrent load

# ---------------------------------------------------------------------------------------------
section "Separate users"
releases=$dir/site/releases
for tree in "$releases"/* "$releases"/.[!.]*; do
  [[ -e $tree ]] || continue
  [[ -L $tree ]] && continue # releases/backup and releases/security are symlinks to a generation
  name=${tree#"$releases"/}
  check_fails "$web_user cannot create a file in releases/$name" as "$web_user" touch "$tree/e2e-intruder.php"
  check_fails "$web_user cannot modify releases/$name/index.php" as "$web_user" sh -c "echo x >> '$tree/index.php'"
  check_fails "$web_user cannot create a file in releases/$name/mod/forum" as "$web_user" touch "$tree/mod/forum/e2e-intruder.php"
  writable=$(as "$web_user" find "$tree" -writable -print -quit 2>/dev/null)
  if [[ -z $writable ]]; then ok "nothing in releases/$name is writable by $web_user"; else
    not_ok "releases/$name has files writable by $web_user: $writable"; fi
done
check_fails "$web_user cannot replace the releases folder's entries" as "$web_user" ln -s /tmp "$releases/e2e-intruder"
check_fails "$web_user cannot replace current" as "$web_user" ln -sfn /tmp "$dir/site/current"
attacks_code_owner
attacks_request_side  # deliveryd's request user reaches nothing of the site, nor the monitor
attacks_flood         # ends with the site rolled back by the flood
attacks_terminal      # TIOCSTI from the web user's PHP under deliveryctl restore on a terminal
check_fails "$web_user cannot create a file in the state directory" as "$web_user" touch "$dir/state/e2e-intruder"
check_fails "$web_user cannot modify state.json" as "$web_user" sh -c "echo x >> '$dir/state/state.json'"
check_fails "$web_user cannot append to the audit log" as "$web_user" sh -c "echo x >> '$dir/state/audit.log'"
check_fails "$web_user cannot read the audit log" as "$web_user" cat "$dir/state/audit.log"
check "the audit log exists and is not empty" test -s "$dir/state/audit.log"
check "the state directory is 0750 and the audit log 0640, the helper's" \
  test "$(stat -c '%a %U' "$dir/state") $(stat -c '%a %U' "$dir/state/audit.log")" = "750 root 640 root"
foreign=$(find "$releases/production" ! -user "$code_owner" ! -path "$releases/production/site-secret.php" -print -quit)
if [[ -z $foreign ]]; then ok "every file of the production working copy (.git included; site-secret.php aside, root:$web_user) belongs to $code_owner"; else
  not_ok "production has files not owned by $code_owner (git ran as someone else?): $foreign"; fi
for tree in production backup security; do
  [[ -e $releases/$tree/config.php ]] || continue
  check "the site's own config.php (tracked, changed on the site) is byte for byte in $tree after every delivery" \
    test "$(sha256sum <"$releases/$tree/config.php")" = "$site_local_config"
done
check "the fixture's database is at revision 3 (upgraded by restore and run-all, not by the cancelled revision 4)" \
  test "$(cat "$dir/moodledata/fixture-db-version")" = 2024100900.00

calls=$dir/moodledata/fixture-calls.log
upgrades=$(grep -c ' upgrade\.php' "$calls" 2>/dev/null || true)
upgrades_as_web=$(grep ' upgrade\.php' "$calls" 2>/dev/null | grep -c " uid=$web_uid " || true)
real_upgrades=$(grep -E ' upgrade\.php( --non-interactive| *$| --allow-unstable)' "$calls" 2>/dev/null | grep -vc -- '--is-' || true)
if ((upgrades > 0 && upgrades == upgrades_as_web)); then
  ok "upgrade.php ran $upgrades times, every time as $web_user (uid $web_uid); $real_upgrades were upgrades"
else
  not_ok "upgrade.php runs as $web_user: $upgrades_as_web of $upgrades (see $calls)"
  sed 's/^/    /' "$calls" 2>/dev/null | head -20
fi
# The restore's health check asks the installed plugin's cli/health.php (one bootstrap of PHP for both
# questions): the fixture's stand-ins of Moodle's APIs record the call.
if grep -q " check manager status uid=$web_uid " "$calls" && grep -q " moodle_needs_upgrading uid=$web_uid " "$calls"; then
  ok "the health check asked the plugin's cli/health.php, as $web_user"
else
  not_ok "the health check did not ask the plugin's cli/health.php (see $calls)"
fi
others=$(grep -v " uid=$web_uid " "$calls" 2>/dev/null | head -3)
if [[ -z $others ]]; then ok "every Moodle CLI script of the fixture ran as $web_user"; else not_ok "CLI scripts ran as another uid: $others"; fi

"$deliveryctl" log --json --limit 1000 >"$logs/audit.json" 2>"$logs/audit.err"
php -r '
  [$file, $owner, $web] = array_slice($argv, 1);
  $text = file_get_contents($file);
  $data = json_decode($text, true);
  if (!is_array($data)) { $data = array_map(fn($l) => json_decode($l, true), array_filter(explode("\n", $text))); }
  $records = $data["records"] ?? $data;
  $vcs = $php = $bad = $caches = $copies = 0;
  foreach ($records as $record) {
    foreach ($record["commands"] ?? [] as $command) {
      $line = $command["command"] ?? "";
      $program = basename(strtok($line, " "));
      if ($program === "delivery-copy") { str_contains($line, "alternative_component_cache.php") ? $caches++ : $copies++; if (($command["user"] ?? "") !== $owner) { $bad++; echo "  delivery-copy as ", $command["user"] ?? "?", "\n"; } }
      if ($program === "git") { $vcs++; if (($command["user"] ?? "") !== $owner) { $bad++; echo "  git as ", $command["user"] ?? "?", ": $line\n"; } }
      // The component cache is built by the code owner (nothing the web user ran goes into a tree);
      // every other PHP script runs as the web user.
      $cache = str_contains($line, "alternative_component_cache.php");
      if (preg_match("/^php[0-9.]*$/", $program)) { $php++; $caches += $cache ? 1 : 0; if (($command["user"] ?? "") !== ($cache ? $owner : $web)) { $bad++; echo "  php as ", $command["user"] ?? "?", ": $line\n"; } }
    }
  }
  echo "records=", count($records), " git=$vcs php=$php component_caches=$caches copies=$copies wrong_user=$bad\n";
  exit($vcs > 0 && $php > 0 && $caches > 0 && $copies > 0 && $bad === 0 ? 0 : 1);
' "$logs/audit.json" "$code_owner" "$web_user" >"$logs/audit-check.txt" 2>&1
audit_status=$?
if ((audit_status == 0)); then
  ok "audit log (deliveryctl log --json): every copy (delivery-copy), git command and component cache build ran as $code_owner, every other php as $web_user ($(tail -1 "$logs/audit-check.txt"))"
else
  not_ok "audit log users: $(cat "$logs/audit-check.txt" "$logs/audit.err" | head -12)"
fi
# The copies were made by the code owner, not by root: nothing in them is root's, and the secret
# kept its group and mode (the web server's group reads it, nobody else).
root_entries=$(find "$dir/site/releases/" -mindepth 2 -user root -path "$dir/site/releases/.*" 2>/dev/null | head -5)
copy_configs=$(stat -c '%U:%G:%a' "$dir"/site/releases/.{backup,security}.*/site-secret.php 2>/dev/null | sort -u | tr '\n' ' ')
if [[ -z $root_entries && $copy_configs == "$code_owner:$web_user:640 " ]]; then
  ok "the copies are the code owner's (nothing of root's in them); their site-secret.php is $copy_configs(production's is $(stat -c '%U:%G:%a' "$dir/site/releases/production/site-secret.php"))"
else
  not_ok "the copies hold entries of root's ($root_entries) or site-secret.php is '$copy_configs'"
fi
moodle_actor=$(grep -c '"source":"moodle"' "$dir/state/audit.log" || true)
if ((moodle_actor > 0)); then ok "the audit log names the Moodle user who asked ($moodle_actor records from source moodle)"; else
  not_ok "no audit record with a Moodle actor"; fi

# ---------------------------------------------------------------------------------------------
section "Logs"
if [[ -s $logs/php-errors.log ]] || grep -qE 'said into stderr|ERROR|ALERT' "$logs/php-fpm.log"; then
  not_ok "PHP errors were logged by the pool: $(cat "$logs/php-errors.log" 2>/dev/null; grep -E 'said into stderr|ERROR|ALERT' "$logs/php-fpm.log" | head -5)"
else
  ok "no PHP error or warning logged by the pool"
fi
if grep -E '\[(error|crit|alert|emerg)\]' "$logs/nginx-error.log" >/dev/null 2>&1; then
  not_ok "nginx logged errors: $(grep -E '\[(error|crit|alert|emerg)\]' "$logs/nginx-error.log" | head -3)"
else
  ok "nginx logged no error"
fi
finish
