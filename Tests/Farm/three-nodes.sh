#!/usr/bin/env bash
# A web farm of three nodes behind a load balancer, all made here: each node a network namespace
# of its own behind a veth on a bridge, with its own nginx (in its namespace), PHP-FPM pool (its own
# OPcache, validate_timestamps off), sshd (in its namespace), code tree, moodle-delivery install
# and helper; one upstream and one dataroot (the FIXTURE site's, Tests/Fixture/make-site: its
# "database" is a file of the dataroot, its stand-ins record every CLI script run with its tree);
# an nginx balancer in front. Requests go through the balancer during whole farm deliveries.
# Shows: a code-only delivery with 0 failed requests and no old code answering once it is done; a
# delivery with Moodle's upgrade (upgrade.php once, on the coordinator; only the maintenance page
# in between); the farm's rollback with the database (one PostgreSQL server, the coordinator's
# snapshot) and the delivery again; a node cut off before a delivery (refused, nothing changed),
# during its update, its switch and its restore (every node it could reach brought back, then
# web3 brought in line by farm recover). As root.
# Needs DELIVERYCTL_BINARY. Ends with "farm-3: N passed, M failed".
set -uo pipefail
suite=farm-3
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
source "$project/Tests/Support/suite.sh"
source "$project/scripts/lib/common.sh"
deliveryctl_built=${DELIVERYCTL_BINARY:?set DELIVERYCTL_BINARY to a built deliveryctl}
install_server_packages openssh-server openssh-client nginx php-fpm php-cli curl iproute2 git
php_fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -1)

# Under /var/lib (root's, 0755 all the way up): sshd's StrictModes refuses keys reached through /tmp.
work=$(mktemp -d /var/lib/delivery-farm3-XXXXXX)
chmod 755 "$work"
# The suite's own farm account, never a real node's (moodle-farm): the suite kills its processes.
account=moodle-farm-test
export account DELIVERY_FARM_ACCOUNT=$account
created_account=0
id "$account" >/dev/null 2>&1 || created_account=1
# The balancer's port, 20000 + suffix, is below the kernel's ephemeral ports (32768 and up).
suffix=$((RANDOM % 9000 + 1000))
net=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
bridge=b3n$suffix
pids=()
cleanup() {
  local pid i
  ((failed)) && tail -5 "$work"/n*/log/*.log "$work"/log*/*.log 2>/dev/null | tail -60
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for i in 1 2 3; do
    [[ -f $work/run$i/school/deliveryd.pid ]] && kill "$(cat "$work/run$i/school/deliveryd.pid")" 2>/dev/null
    ip netns pids "n3n$suffix$i" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "n3n$suffix$i" 2>/dev/null
    ip link del "h3n$suffix$i" 2>/dev/null
  done
  ip link del "$bridge" 2>/dev/null
  bash "$project/Tests/Database/servers" stop "$work/db" >/dev/null 2>&1
  pkill -u "$account" 2>/dev/null && sleep 0.5
  if ((created_account)); then
    userdel "$account" 2>/dev/null
    rm -rf "/var/lib/$account"
  fi
  sleep 0.5
  [[ -n ${FARM3_KEEP:-} ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
export DELIVERY_BINDIR=$work/bin
mkdir -p "$DELIVERY_BINDIR" /run/sshd
chmod 755 /run/sshd
cp "$deliveryctl_built" "$(dirname "$deliveryctl_built")/deliveryd" "$(dirname "$deliveryctl_built")/delivery-copy" "$DELIVERY_BINDIR/"
deliveryctl=$DELIVERY_BINDIR/deliveryctl
export work deliveryctl
# node N: its environment for the setup and deliveryctl (its own configuration, run and log folders).
on() { # on N COMMAND…: runs COMMAND with node N's install
  local n=$1; shift
  env DELIVERY_ETC="$work/etc$n" DELIVERY_RUN="$work/run$n" DELIVERY_LOG_DIR="$work/log$n" "$@"
}
addr() { echo "$net.1$1"; }
export -f on

section "Three nodes: namespaces on a bridge, each with nginx, PHP-FPM, sshd and its code tree"
# One PostgreSQL server for the farm (Tests/Database/servers: its own folder and port): the
# fixture's database mode, so that the coordinator's snapshot and a rollback with it are real.
db_env=$(bash "$project/Tests/Database/servers" start pgsql "$work/db") || fatal "cannot start PostgreSQL"
eval "$db_env"
export ADMIN_CMD
bash "$project/Tests/Fixture/make-site" --vcs git --dir "$work/fx1" --wwwroot "http://farm.invalid" \
  --database pgsql --dbhost "$DBHOST" --dbport "$DBPORT" --dbname "$DBNAME" --dbuser "$DBUSER" --dbpass "$DBPASS" \
  >/dev/null || fatal "make-site failed"
chown -R www-data: "$work/fx1/moodledata"
chmod 2770 "$work/fx1/moodledata"
# bench/farm --moodle-shaped: the code grows by a Moodle-shaped tree (bench/make-tree: a real Moodle
# 4.5 tree's folders, files and sizes, its PHP files valid), so that each node's delivery does a
# real site's file work (copies, status, fingerprints); the fixture's Moodle scripts stay stand-ins.
if [[ -n ${FARM3_MOODLE_SHAPED:-} ]]; then
  shaped=$(python3 "$project/bench/make-tree" --valid-php "$work/fx1/author/shaped") &&
    echo "MEASURE the code tree: the fixture's, grown by a Moodle-shaped one (${shaped#*: })" &&
    git -C "$work/fx1/author" add -A &&
    git -C "$work/fx1/author" -c user.name=fixture -c user.email=fixture@example.invalid commit -qm "Moodle-shaped" &&
    git -C "$work/fx1/author" push -q origin main && git -C "$work/fx1/moodle" pull -q --ff-only ||
    fatal "cannot add the Moodle-shaped tree"
fi
# The same code and upstream; through config.php the same dataroot: the farm's shared one.
cp -a "$work/fx1" "$work/fx2"
cp -a "$work/fx1" "$work/fx3"
ip link add "$bridge" type bridge && ip addr add "$net.1/24" dev "$bridge" && ip link set "$bridge" up ||
  fatal "cannot make the bridge"
for i in 1 2 3; do
  ns=n3n$suffix$i
  ip netns add "$ns" &&
    ip link add "h3n$suffix$i" type veth peer name "v3n$suffix$i" &&
    ip link set "v3n$suffix$i" netns "$ns" &&
    ip link set "h3n$suffix$i" master "$bridge" up &&
    ip netns exec "$ns" ip addr add "$(addr "$i")/24" dev "v3n$suffix$i" &&
    ip netns exec "$ns" ip link set "v3n$suffix$i" up &&
    ip netns exec "$ns" ip link set lo up || fatal "cannot make node $i's namespace"
  mkdir -p "$work/n$i/nginx/temp" "$work/n$i/log"
  cat >"$work/n$i/fpm.conf" <<CONF
[global]
pid = $work/n$i/fpm.pid
error_log = $work/n$i/log/fpm.log
daemonize = no
[node$i]
user = www-data
group = www-data
listen = $work/n$i/fpm.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = static
pm.max_children = 3
php_admin_value[opcache.validate_timestamps] = 0
php_admin_value[opcache.file_update_protection] = 0
php_admin_value[auto_prepend_file] = $work/n$i/slow.php
CONF
  # While $work/n$i/slow exists, every PHP request of this node waits that many microseconds
  # first (a node whose switch or restore takes long enough to be cut off during it).
  printf '<?php\nif (is_file(__DIR__ . "/slow")) { usleep((int) file_get_contents(__DIR__ . "/slow")); }\n' \
    >"$work/n$i/slow.php"
  chmod 755 "$work/n$i"
  "$php_fpm" -d opcache.enable=1 --fpm-config "$work/n$i/fpm.conf" --nodaemonize </dev/null >>"$work/n$i/log/fpm.log" 2>&1 &
  pids+=($!)
  cat >"$work/n$i/nginx/nginx.conf" <<CONF
user www-data www-data;
worker_processes 1;
pid $work/n$i/nginx/nginx.pid;
error_log $work/n$i/log/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/n$i/nginx/temp/body;
  fastcgi_temp_path $work/n$i/nginx/temp/fastcgi;
  proxy_temp_path $work/n$i/nginx/temp/proxy;
  uwsgi_temp_path $work/n$i/nginx/temp/uwsgi;
  scgi_temp_path $work/n$i/nginx/temp/scgi;
  map \$realpath_root \$delivery_tree { "~/(?<tree>[^/]+)(/public)?\$" \$tree; }
  server {
    listen $(addr "$i"):80;
    root $work/fx$i/moodle;
    index index.php;
    add_header X-Delivery-Tree \$delivery_tree always;
    add_header X-Node web$i always;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$realpath_root\$fastcgi_script_name;
      fastcgi_param DOCUMENT_ROOT \$realpath_root;
      fastcgi_pass unix:$work/n$i/fpm.sock;
    }
  }
}
CONF
  ip netns exec "$ns" nginx -p "$work/n$i/nginx/" -c "$work/n$i/nginx/nginx.conf" -g 'daemon off;' </dev/null \
    >>"$work/n$i/log/nginx.log" 2>&1 &
  pids+=($!)
  ssh-keygen -q -t ed25519 -N '' -f "$work/n$i/host_ed25519"
  install -m 0644 /dev/null "$work/keys$i"
  cat >"$work/n$i/sshd_config" <<CONF
ListenAddress $(addr "$i"):22
HostKey $work/n$i/host_ed25519
PidFile $work/n$i/sshd.pid
AuthorizedKeysFile $work/keys$i
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
CONF
  ip netns exec "$ns" /usr/sbin/sshd -f "$work/n$i/sshd_config" -D -e 2>>"$work/n$i/log/sshd.log" &
  pids+=($!)
done
wait_for() { # wait_for SECONDS COMMAND…
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
}
for i in 1 2 3; do
  check "node web$i: nginx in its namespace answers at $(addr "$i") through its own PHP-FPM" \
    wait_for 20 curl -sf -o /dev/null "http://$(addr "$i")/login/index.php"
  check "node web$i: its sshd listens at $(addr "$i"):22" wait_for 10 bash -c "echo >/dev/tcp/$(addr "$i")/22"
done

section "moodle-delivery on each node; web1 coordinates web2 and web3"
setup_node() { # setup_node N OPTION…: the setup of node N's install, its output in its log
  local n=$1; shift
  local snapshot=(--no-database-snapshot)
  ((n == 1)) && snapshot=() # the coordinator holds the database snapshot; the other nodes never do
  on "$n" "$project/scripts/setup" --moodle "$work/fx$n/moodle" --site school --state-dir "$work/state$n" \
    "${snapshot[@]}" --health-check automatic --php-fpm-socket "$work/n$n/fpm.sock" --web-server nginx \
    "$@" >>"$work/n$n/log/setup.log" 2>&1
}
own_urls() { # own_urls N: node N's switch check and health check ask its own nginx, not the balancer
  php -r '$c = json_decode(file_get_contents($argv[1]), true);
    $c["webServer"]["checkURL"] = "http://" . $argv[2] . "/"; $c["healthCheck"]["url"] = "http://" . $argv[2] . "/login/index.php";
    $c["operationLimits"] = ["switchesPerHour" => 500, "restoresPerHour" => 500, "rollbacksPerHour" => 500];
    file_put_contents($argv[1], json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' \
    "$work/etc$1/sites/school/site.json" "$(addr "$1")"
}
for i in 1 2 3; do
  check "setup on web$i" setup_node "$i"
  own_urls "$i"
done
check "setup --farm-node web2 --farm-node web3 on web1 (the coordinator)" \
  setup_node 1 --farm-node "web2=$(addr 2)" --farm-node "web3=$(addr 3)"
for i in 2 3; do
  check "setup --farm-coordinator-key on web$i" setup_node "$i" --farm-coordinator-key "$(cat "$work/etc1/sites/school/farm_ed25519.pub")"
  # The farm account's keys hold one line per site: each node here (one machine) gets its own file.
  install -m 0644 "/var/lib/$account/.ssh/authorized_keys" "$work/keys$i"
done
capture on 1 "$deliveryctl" farm check --site school
check "farm check: web2 and web3 answer for the same site and version" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^web2 .*: ok" "^web3 .*: ok"' _ "$status" "$out"

cat >"$work/balancer.conf" <<CONF
worker_processes 1;
pid $work/balancer.pid;
error_log $work/balancer-error.log;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $work/balancer-temp/body;
  proxy_temp_path $work/balancer-temp/proxy;
  fastcgi_temp_path $work/balancer-temp/fastcgi;
  uwsgi_temp_path $work/balancer-temp/uwsgi;
  scgi_temp_path $work/balancer-temp/scgi;
  upstream farm { server $(addr 1):80 max_fails=0; server $(addr 2):80 max_fails=0; server $(addr 3):80 max_fails=0; }
  server {
    listen 127.0.0.1:$((20000 + suffix));
    location / { proxy_pass http://farm; proxy_connect_timeout 1s; proxy_next_upstream error timeout; }
  }
}
CONF
mkdir -p "$work/balancer-temp"
nginx -p "$work/" -c "$work/balancer.conf" -g 'daemon off;' </dev/null >>"$work/balancer.log" 2>&1 &
pids+=($!)
balancer=http://127.0.0.1:$((20000 + suffix))
check "the balancer answers, from every node in turn" \
  bash -c 'wait_for() { local d=$((SECONDS + 10)); until curl -sf -o /dev/null "$1/login/index.php"; do ((SECONDS < d)) || return 1; sleep 0.1; done; }
    wait_for "$1" && for _ in 1 2 3 4 5 6; do curl -s -D - -o /dev/null "$1/login/index.php"; done | grep -i "^X-Node" | sort -u | wc -l | grep -qx 3' _ "$balancer"

# The upstream is the code owner's, as on a real site (its git refuses a repository of another user).
code_owner=$(stat -c %U "$work/fx1/moodle-delivery/releases/production")
chown -R "$code_owner:" "$work/fx1/upstream" "$work/fx1/author" "$work/fx1/revision2"
# publish_marker N: farm-marker.php answers "marker N", pushed upstream. Like the fixture's login
# page it answers 503 "maintenance" in maintenance mode and 503 "mismatch" when the code and the
# database are at different versions (what a user must never get from a delivery).
publish_marker() {
  cat >"$work/farm-marker.php" <<PHP
<?php
define('ABORT_AFTER_CONFIG', true);
require(__DIR__ . '/config.php');
require_once(\$CFG->libdir . '/fixturelib.php');
header('Content-Type: text/plain');
if (is_file(\$CFG->dataroot . '/climaintenance.html')) {
    http_response_code(503);
    exit("maintenance\n");
}
if (fixture_code_version() != fixture_db_version()) {
    http_response_code(503);
    exit("mismatch\n");
}
echo "marker $1\n";
PHP
  as "$code_owner" bash -c 'cd "$1/fx1/author" && cp "$1/farm-marker.php" farm-marker.php && git add -A &&
    git -c user.name=t -c user.email=t@example.invalid commit -qm "marker $2" && git push -q origin HEAD:main' _ "$work" "$1"
}
# traffic: requests through the balancer until stopped, one line each: status, node, marker, time.
traffic_start() {
  (while :; do
    curl -s -m 3 -D "$work/headers" -o "$work/body" "$balancer/farm-marker.php" >/dev/null 2>&1
    printf '%s %s %s %s\n' "$(head -1 "$work/headers" | cut -d' ' -f2)" "$(grep -i '^X-Node' "$work/headers" | tr -d '\r' | cut -d' ' -f2)" \
      "$(tr -d ' \n' <"$work/body" | head -c 20)" "$(date +%s.%N)"
    sleep 0.005
  done >"$work/traffic.txt") &
  traffic_pid=$!
}
traffic_stop() { kill "$traffic_pid" 2>/dev/null; wait "$traffic_pid" 2>/dev/null; }
# run_all_under_traffic: a farm run-all with requests through the balancer before, during and
# after it ($work/traffic.txt); $out and $status are its, $done_at when it reported done.
run_all_under_traffic() {
  traffic_start
  sleep 0.5
  capture on 1 "$deliveryctl" farm run-all --site school
  done_at=$(date +%s.%N)
  sleep 1
  traffic_stop
}
export balancer
every_node_serves() { # every_node_serves MARKER: each node's own nginx answers MARKER
  local i
  for i in 1 2 3; do curl -s "http://$net.1$i/farm-marker.php" | grep -qx "$1" || return 1; done
}
export net
export -f every_node_serves

section "A code-only delivery across the farm under traffic"
# With marker 1, a new file under lib/ (core code with caches): Moodle's caches must be purged.
as "$code_owner" bash -c 'cd "$1/fx1/author" && echo "<?php // farm" >lib/farm-touch.php && git add -A &&
  git -c user.name=t -c user.email=t@example.invalid commit -qm "lib change" && git push -q origin HEAD:main' _ "$work"
publish_marker 1
calls=$work/fx1/moodledata/fixture-calls.log
mark=$(wc -l <"$calls")
capture on 1 "$deliveryctl" farm run-all --site school
check "farm run-all (exit 0) on three nodes" bash -c '[[ $1 == 0 ]] && says "$2" "^restore: this node, web2, web3 done"' _ "$status" "$out"
check "… Moodle's shared caches purged once, from the coordinator's tree" \
  bash -c 'runs=$(tail -n +"$(($2 + 1))" "$1" | grep " purge_caches.php"); [[ $(grep -c . <<<"$runs") == 1 ]] && grep -q "dirroot=$3/fx1/" <<<"$runs"' _ "$calls" "$mark" "$work"
check "every node serves the new code (marker 1), each through its own nginx" every_node_serves "marker 1"
# The update on every node at once: web1's own update is slow (a hook of its repository sleeps
# 2 s after the merge); web2 and web3 check out the commit as soon as web1's update names it.
production1=$work/fx1/moodle-delivery/releases/production
printf '#!/bin/sh\nsleep 2\n' | as "$code_owner" tee "$production1/.git/hooks/post-merge" >/dev/null
chmod +x "$production1/.git/hooks/post-merge"
as "$code_owner" bash -c 'cd "$1/fx1/author" && echo "<?php // at once" >lib/farm-touch.php && git add -A &&
  git -c user.name=t -c user.email=t@example.invalid commit -qm "at once" && git push -q origin HEAD:main' _ "$work"
capture on 1 "$deliveryctl" farm run-all --site school
rm -f "$production1/.git/hooks/post-merge"
# update_window N FARM_DELIVERY: when node N's update of that farm delivery began and ended (epoch seconds).
update_window() {
  php -r 'foreach (file($argv[1]) as $line) { $r = json_decode($line, true);
      if (($r["operation"] ?? "") == "update" && ($r["actor"]["farmDelivery"] ?? "") == $argv[2]) {
        $t = (new DateTime($r["time"]))->format("U.u"); printf("%.3f %.3f\n", $t, $t + $r["durationSeconds"]); } }' \
    "$work/state$1/audit.log" "$2"
}
export -f update_window
check "farm run-all with web1's update slowed by 2 s (exit 0): web2 and web3 began theirs before web1's ended, at its commit" \
  bash -c '[[ $1 == 0 ]] && says "$2" "bringing every node to exactly [0-9a-f]* at once" || exit 1
    id=$(grep -o "^Farm delivery F[^:]*" <<<"$2" | head -1 | cut -d" " -f3); read -r _ end1 < <(update_window 1 "$id")
    for n in 2 3; do read -r start _ < <(update_window $n "$id"); awk -v s="$start" -v e="$end1" "BEGIN { exit !(s != \"\" && s < e - 1) }" || exit 1; done
    every_node_serves "marker 1"' _ "$status" "$out"
publish_marker 2
run_all_under_traffic
requests=$(wc -l <"$work/traffic.txt")
check "farm run-all under traffic (exit 0): $requests requests through the balancer" bash -c '[[ $1 == 0 && $2 -gt 50 ]]' _ "$status" "$requests"
check "… 0 failed requests (every answer 200 with a marker)" bash -c '! grep -v "^200 web[123] marker[12] " "$1"' _ "$work/traffic.txt"
check "… after it reported done, 0 answers of the old code from any node" \
  bash -c 'awk -v t="$2" "\$4 > t && \$3 != \"marker2\"" "$1" | grep -q . && exit 1; awk -v t="$2" "\$4 > t" "$1" | grep -q .' _ "$work/traffic.txt" "$done_at"
check "… every node answered during it" bash -c '[[ $(cut -d" " -f2 "$1" | sort -u | wc -l) == 3 ]]' _ "$work/traffic.txt"

# bench/farm (FARM3_MEASURE=1): figures only (Tests/Farm/measure.sh).
[[ -z ${FARM3_MEASURE:-} ]] || source "$here/measure.sh"

section "A delivery with Moodle's upgrade: upgrade.php once, on the coordinator"
as "$code_owner" bash "$work/fx1/revision2" >"$work/revision2.log" 2>&1
publish_marker 3
mark=$(wc -l <"$calls")
run_all_under_traffic
check "farm run-all with the upgrade (exit 0): every other node served production before it, checked after" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^restore (every other node serves production, before the upgrade): web2, web3 done" "^restore (every other node.s health check, after the upgrade): web2, web3 done"' _ "$status" "$out"
check "… upgrade.php ran exactly once, in the coordinator's tree" \
  bash -c 'runs=$(tail -n +"$(($2 + 1))" "$1" | grep " upgrade.php " | grep -v -- "--is-"); [[ $(grep -c . <<<"$runs") == 1 ]] && grep -q "dirroot=$3/fx1/" <<<"$runs"' _ "$calls" "$mark" "$work"
check "… during it, only 200 or the maintenance page (503), never code the database is not at; after it, every answer 200 with the new code" \
  bash -c '! grep -vE "^(200 web[123] marker[23]|503 web[123] maintenance) " "$1" && ! awk -v t="$2" "\$4 > t && \$3 != \"marker3\"" "$1" | grep -q . && grep -q "^503 web[123] maintenance " "$1"' _ "$work/traffic.txt" "$done_at"
db_version() { "$ADMIN_CMD" "SELECT value FROM mdl_config WHERE name = 'version'"; }
export -f db_version
check "… the database at revision 2 (PostgreSQL), snapshotted once on the coordinator before; every node on marker 3" \
  bash -c '[[ $(db_version) == 2024100800.00 ]] && every_node_serves "marker 3" && [[ $(ls "$1"/state1/snapshots/*.pgdump | wc -l) == 1 ]] &&
    ! ls "$1"/state2/snapshots/*.pgdump "$1"/state3/snapshots/*.pgdump' _ "$work"

section "The farm's emergency rollback with the database, then the delivery again"
"$ADMIN_CMD" "INSERT INTO mdl_forum_posts (message) VALUES ('written after the delivery')" >/dev/null
before=$(md5sum "$work"/state{1,2,3}/state.json)
capture on 1 "$deliveryctl" farm rollback --site school
check "farm rollback without --restore-database, the site open since the upgrade: refused (exit 2) before any node, saying how" \
  bash -c '[[ $1 == 2 ]] && says "$2" "farm rollback --restore-database" && [[ $(md5sum "$3"/state{1,2,3}/state.json) == "$4" ]] && every_node_serves "marker 3"' \
  _ "$status" "$out" "$work" "$before"
capture on 1 "$deliveryctl" farm rollback --site school --restore-database
check "farm rollback --restore-database (exit 0): web2 and web3 first, then this node with the database; every node on its backup copy" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^rollback (bringing back): web2, web3 done" "^rollback: this node is back" &&
    for i in 1 2 3; do [[ $(readlink "$3/fx$i/moodle-delivery/current") == releases/backup ]] || exit 1; done' _ "$status" "$out" "$work"
check "… the database back at revision 1 (the upgrade's table gone, what was written after it gone)" \
  bash -c '[[ $(db_version) == 2024100700.00 ]] && [[ $("$ADMIN_CMD" "SELECT count(*) FROM information_schema.tables WHERE table_name = '"'"'mdl_local_foo_items'"'"'") == 0 ]] &&
    [[ $("$ADMIN_CMD" "SELECT count(*) FROM mdl_forum_posts WHERE message = '"'"'written after the delivery'"'"'") == 0 ]]'
check "… every node serves the code that matches the database: marker 2, 200 on each login page" \
  bash -c 'every_node_serves "marker 2" && for i in 1 2 3; do [[ $(curl -s -o /dev/null -w "%{http_code}" "http://$1.1$i/login/index.php") == 200 ]] || exit 1; done' _ "$net"
mark=$(wc -l <"$calls")
capture on 1 "$deliveryctl" farm restore --site school
check "farm restore (exit 0): the lock-step upgrade again, upgrade.php once, every node on marker 3, the database at revision 2" \
  bash -c '[[ $1 == 0 ]] && [[ $(tail -n +"$(($3 + 1))" "$2" | grep " upgrade.php " | grep -vc -- "--is-") == 1 ]] && every_node_serves "marker 3" && [[ $(db_version) == 2024100800.00 ]]' \
  _ "$status" "$calls" "$mark"

# The Moodle page on the coordinator (the plugin's own client, as the web user): its emergency
# rollback with the database wants the administrator's second factor, checked once, before any node.
page() { as www-data php "$project/Tests/Farm/page_client.php" "$work/run1/school/deliveryd.sock" "$work/etc1/sites/school/deliveryd.key" "$@"; }
refusal_code() { php -r '$j = json_decode($argv[1], true); echo $j["refused"] ?? $j["error"]["code"] ?? $j["state"] ?? "";' "$1"; }
export -f refusal_code
before=$(md5sum "$work"/state{1,2,3}/state.json)
out=$(page rollback '{"confirmDatabaseRestore": true}')
check "the page's farm rollback with the database, no second-factor code: refused (second_factor_required), no node asked" \
  bash -c '[[ $(refusal_code "$1") == second_factor_required ]] && [[ $(md5sum "$2"/state{1,2,3}/state.json) == "$3" ]] && every_node_serves "marker 3"' \
  _ "$out" "$work" "$before"
secret=$(on 1 "$deliveryctl" admin enrol-totp 2 --name "Ada Farm Admin" --site school --json |
  php -r 'echo json_decode(stream_get_contents(STDIN), true)["secret"] ?? "";')
valid=$(php "$project/Tests/Support/totp.php" "$secret")
out=$(page rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$(printf '%06d' $(((10#$valid + 1) % 1000000)))\"}")
check "… with a wrong code (administrator 2 enrolled on the coordinator): refused (second_factor_refused), no node asked" \
  bash -c '[[ $(refusal_code "$1") == second_factor_refused ]] && [[ $(md5sum "$2"/state{1,2,3}/state.json) == "$3" ]] && every_node_serves "marker 3"' \
  _ "$out" "$work" "$before"
out=$(page rollback "{\"confirmDatabaseRestore\": true, \"secondFactorCode\": \"$valid\"}")
check "… with the administrator's code: the farm rollback (every node on its backup copy, marker 2, the database at revision 1)" \
  bash -c '[[ $(refusal_code "$1") == succeeded ]] && every_node_serves "marker 2" && [[ $(db_version) == 2024100700.00 ]] &&
    for i in 1 2 3; do [[ $(readlink "$2/fx$i/moodle-delivery/current") == releases/backup ]] || exit 1; done' _ "$out" "$work"
check "… web2's and web3's audit logs tie their rollback to the page's job, from the farm; no code went to them" \
  bash -c 'job=$(php -r "echo json_decode(\$argv[1], true)[\"id\"] ?? \"\";" "$2"); [[ -n $job ]] && for i in 2 3; do
    grep "\"farmDelivery\":\"F$job\"" "$1/state$i/audit.log" | grep "\"operation\":\"rollback\"" | grep -q "\"source\":\"farm\"" || exit 1; done &&
    ! grep -q "$3" "$1"/state2/audit.log "$1"/state3/audit.log' _ "$work" "$out" "$valid"
capture on 1 "$deliveryctl" farm restore --site school
check "farm restore: the delivery again (exit 0), marker 3 on every node, the database at revision 2" \
  bash -c '[[ $1 == 0 ]] && every_node_serves "marker 3" && [[ $(db_version) == 2024100800.00 ]]' _ "$status"

section "A node cut off: before a delivery, and during one"
publish_marker 4
states() { md5sum "$work"/state{1,2,3}/state.json | cut -d' ' -f1 | tr '\n' ' '; }
before=$(states)
export -f states
ip link set "h3n${suffix}3" down
capture on 1 "$deliveryctl" farm run-all --site school
check "web3 cut off: farm run-all refused (exit 2) naming web3, nothing changed on any node" \
  bash -c '[[ $1 == 2 ]] && says "$2" "web3" && [[ $(states) == "$3" ]]' _ "$status" "$out" "$before"
ip link set "h3n${suffix}3" up
check "… every node serves what it served (marker 3), web3 again once its link is up" every_node_serves "marker 3"
# web3's update is slow (a hook of its repository), and its link goes down while it runs.
production3=$work/fx3/moodle-delivery/releases/production
for hook in post-checkout post-merge; do
  printf '#!/bin/sh\nsleep 4\n' | as "$code_owner" tee "$production3/.git/hooks/$hook" >/dev/null
  chmod +x "$production3/.git/hooks/$hook"
done
on 1 "$deliveryctl" farm run-all --site school >"$work/cut.log" 2>&1 &
run_pid=$!
wait_for 60 grep -q "bringing every node to exactly" "$work/cut.log"
sleep 1
ip link set "h3n${suffix}3" down
wait "$run_pid"
status=$?
cat "$work/cut.log"
check "web3 cut off during the update: farm run-all fails (exit 1) naming web3; the other nodes brought back" \
  bash -c '[[ $1 == 1 ]] && says "$(cat "$2")" "update failed on .*web3" "^cancel (bringing back): .*this node"' _ "$status" "$work/cut.log"
check "… web1 and web2 serve production at the code before (marker 3)" \
  bash -c 'for i in 1 2; do curl -s "http://$1.1$i/farm-marker.php" | grep -qx "marker 3" || exit 1; done' _ "$net"
ip link set "h3n${suffix}3" up
rm -f "$production3/.git/hooks/post-checkout" "$production3/.git/hooks/post-merge"
capture on 1 "$deliveryctl" farm recover --site school
check "web3 back: farm recover brings it in line (exit 0): every node serves production at the code before, 200" \
  bash -c '[[ $1 == 0 ]] && every_node_serves "marker 3" && for i in 1 2 3; do [[ $(readlink "$2/fx$i/moodle-delivery/current") == releases/production ]] || exit 1; done' \
  _ "$status" "$work"
capture on 1 "$deliveryctl" farm run-all --site school
check "then the delivery across the three nodes (exit 0): marker 4 everywhere" \
  bash -c '[[ $1 == 0 ]] && every_node_serves "marker 4"' _ "$status"

# cut_during PHASE_DONE_LINE: a farm run-all whose web3 is slow (4 s per PHP request) and cut off
# one second after the log shows the line; sets status, leaves the log in $work/cut.log.
cut_during() {
  echo 4000000 >"$work/n3/slow"
  on 1 "$deliveryctl" farm run-all --site school >"$work/cut.log" 2>&1 &
  local run_pid=$!
  wait_for 60 grep -q "$1" "$work/cut.log"
  sleep 1
  ip link set "h3n${suffix}3" down
  rm -f "$work/n3/slow"
  wait "$run_pid"
  status=$?
  cat "$work/cut.log"
}
serves_on() { # serves_on "MARKER" NODE…: those nodes answer that marker, straight
  local marker=$1 i
  shift
  for i in "$@"; do [[ $(curl -s -m 5 "http://$net.1$i/farm-marker.php") == "$marker" ]] || return 1; done
}
export -f serves_on

# recover_once_ended: farm recover, again while a node's own job still runs (an admin runs it
# again); sets status and out.
recover_once_ended() {
  for _ in $(seq 60); do
    capture on 1 "$deliveryctl" farm recover --site school
    [[ $out == *"wait for it to end"* ]] || break
    sleep 1
  done
}

section "A node cut off during the switch, while production is readied, then during the restore"
publish_marker 5
cut_during "^secure: "
check "web3 cut off during its switch: farm run-all fails (exit 1) naming web3; web1 and web2 cancelled" \
  bash -c '[[ $1 == 1 ]] && says "$(cat "$2")" "switch failed on .*web3" "^cancel (bringing back): .*this node"' _ "$status" "$work/cut.log"
check "… web1 and web2 serve production at the code before (marker 4), at rest" \
  bash -c 'serves_on "marker 4" 1 2 && for i in 1 2; do [[ $(readlink "$1/fx$i/moodle-delivery/current") == releases/production ]] || exit 1; done' _ "$work"
ip link set "h3n${suffix}3" up
capture on 1 "$deliveryctl" farm recover --site school
check "web3 back: farm recover cancels its switch (exit 0): every node serves production at marker 4" \
  bash -c '[[ $1 == 0 ]] && every_node_serves "marker 4" && for i in 1 2 3; do [[ $(readlink "$2/fx$i/moodle-delivery/current") == releases/production ]] || exit 1; done' \
  _ "$status" "$work"
cut_during "^update: this node, web2, web3 done"
check "web3 cut off while production is readied: farm run-all fails (exit 1) naming web3; web1 and web2 cancelled, none served the new code" \
  bash -c '[[ $1 == 1 ]] && says "$(cat "$2")" "restore failed on .*web3" "^cancel (bringing back): .*web2" &&
    ! grep -q "^rollback" "$2" && ! grep -q "^restore: " "$2"' _ "$status" "$work/cut.log"
check "… web1 and web2 serve production at the code before (marker 4), at rest" \
  bash -c 'serves_on "marker 4" 1 2 && for i in 1 2; do [[ $(readlink "$1/fx$i/moodle-delivery/current") == releases/production ]] || exit 1; done' _ "$work"
ip link set "h3n${suffix}3" up
recover_once_ended
check "web3 back: farm recover cancels its delivery (exit 0): every node serves production at marker 4" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^recover: cancel: web3 done" && every_node_serves "marker 4" &&
    for i in 1 2 3; do [[ $(readlink "$3/fx$i/moodle-delivery/current") == releases/production ]] || exit 1; done' _ "$status" "$out" "$work"
cut_during "^restore (every node.s preflight; production readied"
check "web3 cut off during its restore: farm run-all fails (exit 1) naming web3; web1 and web2 rolled back" \
  bash -c '[[ $1 == 1 ]] && says "$(cat "$2")" "restore failed on .*web3" "^rollback (bringing back): .*web2"' _ "$status" "$work/cut.log"
check "… web1 and web2 serve the code before (marker 4)" serves_on "marker 4" 1 2
check "… the error says to recover once every node answers, and to keep web3 out of the balancer until then" \
  says "$(cat "$work/cut.log")" "farm recover brings them in line" "take it out of the load balancer"
ip link set "h3n${suffix}3" up
# web3 finished its own restore alone meanwhile: recover waits for that.
recover_once_ended
check "web3 back: farm recover rolls it back as the others were (exit 0): marker 4 on every node, each on its backup copy" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^recover: rollback: web3 done" && every_node_serves "marker 4" &&
    for i in 1 2 3; do [[ $(readlink "$3/fx$i/moodle-delivery/current") == releases/backup ]] || exit 1; done' _ "$status" "$out" "$work"
capture on 1 "$deliveryctl" farm restore --site school
check "then farm restore serves the delivered code on the three nodes (exit 0): marker 5 everywhere" \
  bash -c '[[ $1 == 0 ]] && every_node_serves "marker 5"' _ "$status"

finish
