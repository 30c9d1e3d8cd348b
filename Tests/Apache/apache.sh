#!/usr/bin/env bash
# The Apache suite: a Moodle-shaped FIXTURE site (Tests/Fixture/make-site, git) adopted with
# `deliveryctl init --web-server apache`, served at once by two real Apache 2.4 servers started
# here, the two ways Debian runs PHP under Apache:
#   - mod_php (mpm_prefork, libphp8.2), OPcache on with validate_timestamps=0;
#   - mpm_event + mod_proxy_fcgi to a PHP-FPM pool, OPcache on with validate_timestamps=0.
# Both take DocumentRoot from the helper's Define file; at each switch the helper rewrites it and
# reloads both gracefully, then checks that the new tree answers (X-Delivery-Tree). Switches run
# under concurrent load on both servers; every answer is checked: none fails, and none comes from
# the tree switched away from once the switch is reported done. Then the helper's refusals: a
# reload that fails, and a server that does not follow, each undo the switch.
#
# Run as root on Debian 12: DELIVERYCTL_BINARY=… bash Tests/Apache/apache.sh
# Environment: APACHE_SWITCHES (default 10), APACHE_KEEP=1 keeps the temporary folder.
# Ends with "apache: N passed, M failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
source "$project/scripts/lib/common.sh"
deliveryctl=${DELIVERYCTL_BINARY:?set DELIVERYCTL_BINARY}
code_owner=deliverycode
web_user=www-data
switches=${APACHE_SWITCHES:-10}

suite=apache
source "$project/Tests/Support/suite.sh"

((EUID == 0)) || { echo "apache.sh runs as root" >&2; exit 1; }
install_server_packages apache2 libapache2-mod-php php-fpm php-cli php-curl git curl >/dev/null
apache=/usr/sbin/apache2
modules=/usr/lib/apache2/modules
php_fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -1)
mod_php=$(ls "$modules"/libphp*.so 2>/dev/null | sort -V | tail -1)
[[ -x $apache && -x $php_fpm && -f $mod_php && -x $deliveryctl ]] ||
  { echo "apache2, libapache2-mod-php, php-fpm and deliveryctl are needed" >&2; exit 1; }


tmp=$(mktemp -d /tmp/delivery-apache.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
  local pid conf
  for conf in "$tmp"/httpd-*/httpd.conf; do
    [[ -f $conf ]] && "$apache" -d "$(dirname "$conf")" -f "$conf" -k stop >/dev/null 2>&1
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n ${APACHE_KEEP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "Accounts and fixture site"
id "$code_owner" >/dev/null 2>&1 ||
  useradd --system --user-group --create-home --home-dir "/var/lib/$code_owner" --shell /usr/sbin/nologin "$code_owner"
id "$web_user" >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/www --shell /usr/sbin/nologin "$web_user"
free_port() { php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'; }
port_php=$(free_port)
port_fpm=$(free_port)
while [[ $port_fpm == "$port_php" ]]; do port_fpm=$(free_port); done
dir=$tmp/fixture
logs=$tmp/logs
run=$tmp/run
mkdir -p "$logs" "$run" "$tmp/fpm"
chown "$web_user" "$logs"
bash "$project/Tests/Fixture/make-site" --vcs git --dir "$dir" --wwwroot "http://127.0.0.1:$port_php" --component-cache >/dev/null ||
  fatal "make-site failed"
chown -R "$code_owner:$code_owner" "$dir/upstream" "$dir/author" "$dir/moodle" "$dir/revision2"
chown -R "$web_user:$web_user" "$dir/moodledata"
chmod 2770 "$dir/moodledata"
mkdir -p "$dir/etc"
define_file=$dir/etc/apache-tree.conf
reload_php="$apache -d $tmp/httpd-php -f $tmp/httpd-php/httpd.conf -k graceful"
reload_fpm="$apache -d $tmp/httpd-fpm -f $tmp/httpd-fpm/httpd.conf -k graceful"
if "$deliveryctl" init --moodle "$dir/moodle" --site-root "$dir/site" --state-dir "$dir/state" \
  --config "$dir/etc/site.json" --web-user "$web_user" --code-owner "$code_owner" \
  --php-fpm-socket "$run/php-fpm.sock" --no-database-snapshot --web-server apache \
  --apache-define-file "$define_file" --apache-reload "$reload_php" --apache-reload "$reload_fpm" >"$logs/init.log" 2>&1; then
  ok "deliveryctl init --web-server apache adopted the fixture"
else
  cat "$logs/init.log"
  fatal "deliveryctl init failed"
fi
export DELIVERY_CONFIG=$dir/etc/site.json
variable=$(sed -n 's/^Define \(MOODLE_DELIVERY_ROOT_[A-Za-z0-9_]*\) .*/\1/p' "$define_file")
tree_variable=${variable/ROOT/TREE}
check "init wrote the Define file for production ($define_file)" \
  grep -qx "Define $variable $(readlink -f "$dir/site/releases/production")" "$define_file"
check "init printed the Apache change (Include, DocumentRoot \${$variable}, the X-Delivery-Tree header)" \
  grep -q "DocumentRoot \${$variable}" "$logs/init.log"

section "Stack: PHP-FPM, Apache with mod_php, Apache with mod_proxy_fcgi"
cat >"$tmp/fpm/php-fpm.conf" <<CONF
[global]
pid = $tmp/fpm/php-fpm.pid
error_log = $logs/php-fpm.log
daemonize = no
[apache]
user = $web_user
group = $web_user
listen = $run/php-fpm.sock
listen.owner = $web_user
listen.group = $web_user
listen.mode = 0660
pm = static
pm.max_children = 6
php_admin_value[opcache.validate_timestamps] = 0
php_admin_value[opcache.file_update_protection] = 0
php_admin_value[error_log] = $logs/php-errors.log
php_admin_flag[log_errors] = on
CONF
"$php_fpm" -d opcache.enable=1 --fpm-config "$tmp/fpm/php-fpm.conf" --nodaemonize </dev/null >>"$logs/php-fpm.log" 2>&1 &
pids+=($!)

# httpd_conf NAME PORT: one Apache server, as a site's configuration would be after init's advice.
httpd_conf() {
  local name=$1 port=$2 root=$tmp/httpd-$1
  mkdir -p "$root"
  {
    cat <<CONF
ServerRoot $root
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile $root/httpd.pid
DefaultRuntimeDir $root
Mutex file:$root default
ErrorLog $logs/apache-$name-error.log
LogLevel warn
User $web_user
Group $web_user
GracefulShutdownTimeout 30
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule dir_module $modules/mod_dir.so
LoadModule mime_module $modules/mod_mime.so
LoadModule headers_module $modules/mod_headers.so
TypesConfig /etc/mime.types
CONF
    if [[ $name == php ]]; then
      cat <<CONF
LoadModule mpm_prefork_module $modules/mod_mpm_prefork.so
LoadModule php_module $mod_php
StartServers 6
MinSpareServers 6
MaxSpareServers 12
MaxRequestWorkers 32
<FilesMatch "\\.php\$">
  SetHandler application/x-httpd-php
</FilesMatch>
php_admin_value opcache.validate_timestamps 0
php_admin_value opcache.file_update_protection 0
php_admin_flag log_errors on
php_admin_value error_log $logs/php-errors.log
CONF
    else
      cat <<CONF
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule proxy_module $modules/mod_proxy.so
LoadModule proxy_fcgi_module $modules/mod_proxy_fcgi.so
<FilesMatch "\\.php\$">
  SetHandler "proxy:unix:$run/php-fpm.sock|fcgi://localhost"
</FilesMatch>
CONF
    fi
    # What init printed, with this site's names.
    cat <<CONF
Include $define_file
<VirtualHost 127.0.0.1:$port>
  DocumentRoot \${$variable}
  DirectoryIndex index.php
  <Directory $dir/site/releases>
    Require all granted
    AllowOverride None
  </Directory>
  Header always set X-Delivery-Tree "\${$tree_variable}"
</VirtualHost>
CONF
  } >"$root/httpd.conf"
}
httpd_conf php "$port_php"
httpd_conf fpm "$port_fpm"
for name in php fpm; do
  if "$apache" -d "$tmp/httpd-$name" -f "$tmp/httpd-$name/httpd.conf" -t >"$logs/configtest-$name.log" 2>&1 &&
    "$apache" -d "$tmp/httpd-$name" -f "$tmp/httpd-$name/httpd.conf" -k start >>"$logs/apache-$name.log" 2>&1; then
    ok "Apache ($name) starts with the configuration init advised"
  else
    cat "$logs/configtest-$name.log" "$logs/apache-$name.log" "$logs/apache-$name-error.log" 2>/dev/null
    fatal "Apache ($name) did not start"
  fi
done
# body URL: the fixture's front page ("fixture-site version=V tree=T").
body() { curl --silent --max-time 5 "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
}
serves() { # serves URL VERSION TREE: the front page comes from TREE at VERSION (2024100700…)
  local answer
  answer=$(body "$1/")
  [[ $answer == "fixture-site version=$2"* && $answer == *" tree=$3" ]]
}
for name in php fpm; do
  port=port_$name
  if wait_for 20 serves "http://127.0.0.1:${!port}" 2024100700 production; then
    ok "Apache ($name) serves production (revision 1) from the Define file"
  else
    fatal "Apache ($name) does not serve the site: '$(body "http://127.0.0.1:${!port}/")' $(tail -3 "$logs/apache-$name-error.log" 2>/dev/null)"
  fi
done
header=$(curl --silent --max-time 5 --output /dev/null --dump-header - "http://127.0.0.1:$port_php/" | tr -d '\r' | sed -n 's/^X-Delivery-Tree: //Ip')
check "the answer names its tree (X-Delivery-Tree: $header)" test "$header" = production

# ctl OPERATION…: deliveryctl as root (the CLI is not limited per hour), output kept in the log.
ctl() { "$deliveryctl" "$@" >>"$logs/ctl.log" 2>&1; }
section "A delivery: the new code served by both servers, OPcache (validate_timestamps=0) included"
check "secure --security" ctl secure --security
check "switch: both servers serve the backup copy" ctl switch
for name in php fpm; do
  port=port_$name
  check "after switch, Apache ($name) serves the backup copy" serves "http://127.0.0.1:${!port}" 2024100700 "$(basename "$(readlink -f "$dir/site/releases/backup")")"
done
check "the switch was confirmed by the new tree's answer" grep -q "answers from the backup tree (X-Delivery-Tree" "$logs/ctl.log"
check "revision 2 published upstream" as "$code_owner" bash "$dir/revision2"
check "update" ctl update --comment "apache suite"
check "restore" ctl restore
for name in php fpm; do
  port=port_$name
  check "after restore, Apache ($name) serves production at revision 2 (nothing stale in OPcache)" \
    serves "http://127.0.0.1:${!port}" 2024100800 production
done
check "secure: the backup copy holds revision 2" ctl secure
check "rollback: the backup copy serves" ctl rollback
backup_name=$(basename "$(readlink -f "$dir/site/releases/backup")")
check "after rollback, Apache (php) serves the backup copy" serves "http://127.0.0.1:$port_php" 2024100800 "$backup_name"

section "Switches under load on both servers"
stop=$tmp/load.stop
load_pids=()
for name in php fpm; do
  port=port_$name
  php "$project/Tests/EndToEnd/load.php" "http://127.0.0.1:${!port}/" 4 400000 240 "$stop" "$tmp/load-$name.jsonl" \
    >"$logs/load-$name.out" 2>&1 &
  pids+=($!)
  load_pids+=($!)
done
sleep 0.5
: >"$tmp/switches.txt"
done_switches=0
for ((i = 0; i < switches; i++)); do
  if ((i % 2 == 0)); then operation=restore target=production; else operation=rollback target=$backup_name; fi
  start=$(date +%s.%N)
  if ! ctl "$operation"; then not_ok "$operation #$((i + 1)) under load failed: $(tail -3 "$logs/ctl.log")"; break; fi
  echo "$start $(date +%s.%N) $target" >>"$tmp/switches.txt"
  done_switches=$((done_switches + 1))
  sleep 0.3
done
sleep 0.5
touch "$stop"
for pid in "${load_pids[@]}"; do wait "$pid"; done
check "$done_switches switches (restore / rollback) done under load" test "$done_switches" = "$switches"
for name in php fpm; do
  verdict=$(php -r '
    [$switchfile, $loadfile] = array_slice($argv, 1);
    $switches = array_map(fn($l) => explode(" ", $l), file($switchfile, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES));
    $sent = $failed = $stale = $retried = 0; $examples = [];
    foreach (file($loadfile, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line) {
      $r = json_decode($line, true); $sent++;
      if (($r["r"] ?? "") !== "") { $retried++; }
      if ($r["c"] !== 200 || !preg_match("/^fixture-site version=\S+ tree=(\S+)$/", trim($r["b"]), $m)) {
        $failed++; if (count($examples) < 3) { $examples[] = $line; } continue;
      }
      // The tree expected: the target of the last switch reported done before this request
      // started, or, once the next switch has started, the target of that one too.
      $allowed = null;
      foreach ($switches as [$start, $end, $target]) {
        if ((float) $end <= $r["s"]) { $allowed = [$target]; }
        elseif ($allowed !== null && (float) $start <= $r["e"]) { $allowed[] = $target; }
      }
      if ($allowed !== null && !in_array($m[1], $allowed, true)) { $stale++; if (count($examples) < 3) { $examples[] = "stale: $line"; } }
    }
    echo "$sent $failed $stale $retried ", implode(" | ", $examples);
  ' "$tmp/switches.txt" "$tmp/load-$name.jsonl")
  read -r sent failed_requests stale retried examples <<<"$verdict"
  if ((sent > 100 && failed_requests == 0 && stale == 0)); then
    ok "Apache ($name): $sent requests under $done_switches switches, 0 failed, 0 answered by the old tree after a switch was reported done ($retried sent again on a new connection, as a browser does, after a graceful reload closed their keep-alive connection)"
  else
    not_ok "Apache ($name): $sent requests, $failed_requests failed, $stale answered by the old tree after the switch was done: $examples"
  fi
done

section "A web server that does not follow: the switch is undone"
cp "$DELIVERY_CONFIG" "$tmp/site.json.saved"
served_before=$(readlink "$dir/site/current")
php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["webServer"]["reloadCommands"] = [["/bin/false"]];
  file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
"$deliveryctl" restore >"$logs/failed-reload.log" 2>&1
status=$?
if ((status != 0)) && grep -q "reloading Apache failed" "$logs/failed-reload.log" && [[ $(readlink "$dir/site/current") == "$served_before" ]] &&
  serves "http://127.0.0.1:$port_php" 2024100800 "$backup_name"; then
  ok "a reload that fails: restore fails (exit $status), current is back on $served_before, Apache still serves it"
else
  not_ok "a failed reload: exit $status, current -> $(readlink "$dir/site/current"): $(tail -3 "$logs/failed-reload.log")"
fi
# A server that reloads (the command succeeds) but keeps serving the old tree: the reload is a no-op.
php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["webServer"]["reloadCommands"] = [["/bin/true"]];
  $c["webServer"]["checkSeconds"] = 2; file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
"$deliveryctl" restore >"$logs/stale.log" 2>&1
status=$?
if ((status != 0)) && grep -q "did not follow the switch to the production tree: it still answers from $backup_name" "$logs/stale.log" &&
  [[ $(readlink "$dir/site/current") == "$served_before" ]] && grep -q "Define $variable $(readlink -f "$dir/site/releases/backup")\$" "$define_file"; then
  ok "a server still on the old tree 2 s later: restore fails (exit $status), current and the Define file are back on the old tree"
else
  not_ok "a server that does not follow: exit $status, current -> $(readlink "$dir/site/current"): $(tail -3 "$logs/stale.log")"
fi

# An emergency rollback goes on (the state must say what current points at), and fails at its end.
cp "$tmp/site.json.saved" "$DELIVERY_CONFIG"
check "restore (Apache reloads again)" ctl restore
php -r '$f = $argv[1]; $c = json_decode(file_get_contents($f), true); $c["webServer"]["reloadCommands"] = [["/bin/false"]];
  file_put_contents($f, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$DELIVERY_CONFIG"
"$deliveryctl" rollback >"$logs/emergency.log" 2>&1
status=$?
phase=$("$deliveryctl" status --json 2>/dev/null | php -r '$s = json_decode(stream_get_contents(STDIN), true); echo ($s["phase"] ?? "?"), " ", ($s["served"] ?? "?");')
if ((status != 0)) && grep -q "reload it by hand\|reloaded by hand" "$logs/emergency.log" && [[ $phase == "rolled_back backup" ]]; then
  ok "an emergency rollback that Apache does not follow: it fails (exit $status) saying to reload by hand, and the state says what current points at ($phase)"
else
  not_ok "an emergency rollback that Apache does not follow: exit $status, state '$phase': $(tail -3 "$logs/emergency.log")"
fi
cp "$tmp/site.json.saved" "$DELIVERY_CONFIG"

section "Logs"
if [[ -s $logs/php-errors.log ]]; then not_ok "PHP logged errors: $(head -3 "$logs/php-errors.log")"; else ok "no PHP error logged"; fi
for name in php fpm; do
  if grep -E '\[[a-z_]*:(error|crit|alert|emerg)\]' "$logs/apache-$name-error.log" >/dev/null 2>&1; then
    not_ok "Apache ($name) logged errors: $(grep -E '\[[a-z_]*:(error|crit|alert|emerg)\]' "$logs/apache-$name-error.log" | head -3)"
  else
    ok "Apache ($name) logged no error"
  fi
done
finish
