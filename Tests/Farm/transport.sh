#!/usr/bin/env bash
# A web farm's transport against a real OpenSSH server started here (sshd on 127.0.0.1, a port of
# its own): the coordinator's `deliveryctl farm check` reaches a node through the farm account's
# forced command (`deliveryctl follow`), with the node's host key pinned; and what a holder of the
# farm key tries beyond that fails: a shell, another command, port forwarding, a terminal. A node
# whose host key is not the pinned one, that does not answer, or that is cut off (a network
# namespace of its own behind a veth, its link then taken down) is refused by name. As root.
# Needs DELIVERYCTL_BINARY. Ends with "farm: N passed, M failed".
set -uo pipefail
suite=farm
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
source "$project/Tests/Support/suite.sh"
source "$project/scripts/lib/common.sh"
deliveryctl=${DELIVERYCTL_BINARY:?set DELIVERYCTL_BINARY to a built deliveryctl}
install_server_packages openssh-server openssh-client iproute2

# Under /var/lib (root's, 0755 all the way up): sshd's StrictModes refuses authorized keys reached
# through a world-writable folder such as /tmp.
work=$(mktemp -d /var/lib/delivery-farm-XXXXXX)
chmod 755 "$work"
# The suite's own farm account, never a real node's (moodle-farm): the suite kills its processes.
account=moodle-farm-test
export account DELIVERY_FARM_ACCOUNT=$account
created_account=0
id "$account" >/dev/null 2>&1 || created_account=1
sshd_pid=
# The coordinator and the node are one machine here (one site, set up twice: as the coordinator
# of a node "web2" that is this machine's sshd, then as that node), with the setup's files in
# folders of the test's own.
export DELIVERY_ETC=$work/etc DELIVERY_BINDIR=$work/bin DELIVERY_RUN=$work/run DELIVERY_LOG_DIR=$work/log
setup=("$project/scripts/setup" --moodle "$work/fx/moodle" --site school --state-dir "$work/state"
  --no-database-snapshot --health-check off)
cleanup() {
  ((failed)) && [[ -f $work/sshd.log ]] && tail -20 "$work/sshd.log"
  [[ -n $sshd_pid ]] && kill "$sshd_pid" 2>/dev/null
  [[ -n ${sshd4_pid:-} ]] && kill "$sshd4_pid" 2>/dev/null
  [[ -n ${ns:-} ]] && ip netns del "$ns" 2>/dev/null
  [[ -n ${veth:-} ]] && ip link del "$veth" 2>/dev/null
  [[ -f $work/run/school/deliveryd.pid ]] && kill "$(cat "$work/run/school/deliveryd.pid")" 2>/dev/null
  [[ -f $work/run5/school/deliveryd.pid ]] && kill "$(cat "$work/run5/school/deliveryd.pid")" 2>/dev/null
  [[ -n ${sshd5_pid:-} ]] && kill "$sshd5_pid" 2>/dev/null
  pkill -u "$account" 2>/dev/null && sleep 0.5
  if ((created_account)); then
    userdel "$account" 2>/dev/null
    rm -rf "/var/lib/$account"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$DELIVERY_BINDIR" /run/sshd
chmod 755 /run/sshd
cp "$deliveryctl" "$(dirname "$deliveryctl")/deliveryd" "$(dirname "$deliveryctl")/delivery-copy" "$DELIVERY_BINDIR/"

section "A node: sshd for the farm account (its keys in its home, root's)"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$work/impostor_ed25519"
# Below the kernel's ephemeral ports (32768 and up: an outgoing connection of this machine may hold
# any of those), and free with the next one (the forwarding attack's).
port=$((20000 + RANDOM % 12000))
while ss -Htan "( sport = :$port or sport = :$((port + 1)) )" | grep -q .; do port=$((20000 + RANDOM % 12000)); done
start_sshd() { # start_sshd HOSTKEY
  [[ -n $sshd_pid ]] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  cat >"$work/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $1
PidFile $work/sshd.pid
AllowUsers $account
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitUserEnvironment no
CONF
  /usr/sbin/sshd -f "$work/sshd_config" -D -e 2>>"$work/sshd.log" &
  sshd_pid=$!
  for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
check "sshd listens on 127.0.0.1:$port with the node's host key" start_sshd "$work/host_ed25519"

section "moodle-delivery-setup --farm-node on the coordinator, --farm-coordinator-key on the node"
bash "$project/Tests/Fixture/make-site" --vcs git --dir "$work/fx" >/dev/null || fatal "make-site failed"
chown -R www-data: "$work/fx/moodledata"
chmod 2770 "$work/fx/moodledata"
# A second node of the same site for the lock-step delivery below: the same code, upstream and
# (through config.php) the same dataroot — a farm's shared one.
cp -a "$work/fx" "$work/fx5"
config=$work/etc/sites/school/site.json
before=$(cd "$work/fx/moodle" && find . | sort | md5sum)
check_fails "a node given as an option of ssh's is refused (exit 64) before anything changes" \
  "${setup[@]}" --farm-node "web2=-oProxyCommand=touch $work/pwned"
check "… nothing of the site changed, nothing ran" \
  bash -c '[[ ! -e $1/pwned && ! -L $1/fx/moodle && $(cd "$1/fx/moodle" && find . | sort | md5sum) == "$2" ]]' _ "$work" "$before"
check "a farm account name that is not a user name (DELIVERY_FARM_ACCOUNT) is refused (exit 64), nothing made" \
  bash -c 'DELIVERY_FARM_ACCOUNT="root;x" "${@:2}" --farm-node "web2=127.0.0.1:22" >"$1/bad-account.log" 2>&1
    [[ $? == 64 ]] && grep -q "DELIVERY_FARM_ACCOUNT must be a user name" "$1/bad-account.log" && ! id "root;x" 2>/dev/null &&
    [[ ! -L $1/fx/moodle ]]' _ "$work" "${setup[@]}"
check_fails "a coordinator key with options is refused (exit 64)" \
  "${setup[@]}" --farm-coordinator-key 'command="sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x'
check "setup --farm-node web2=127.0.0.1:$port (the coordinator)" \
  bash -c '"${@:3}" --farm-node "web2=127.0.0.1:$2" >"$1/coordinator.log" 2>&1' _ "$work" "$port" "${setup[@]}"
check "… it pinned web2's host key under the node's name, and printed its fingerprint" \
  bash -c '[[ $(cut -d" " -f1,2,3 "$1/etc/sites/school/farm_known_hosts") == "web2 $(cut -d" " -f1,2 "$1/host_ed25519.pub")" ]] &&
    grep -q "Node web2 (127.0.0.1, port $2): host key $(ssh-keygen -lf "$1/host_ed25519.pub" | cut -d" " -f2) pinned" "$1/coordinator.log"' _ "$work" "$port"
check "… the farm key is the farm account's own (0600), the site's configuration names the node" \
  bash -c '[[ $(stat -c "%U %a" "$1/etc/sites/school/farm_ed25519") == "$account 600" ]] &&
    php -r "\$c = json_decode(file_get_contents(\$argv[1]), true); exit(\$c[\"farm\"][\"nodes\"] === [[\"name\" => \"web2\", \"address\" => \"127.0.0.1\", \"port\" => (int) \$argv[2]]] ? 0 : 1);" "$1/etc/sites/school/site.json" "$2"' _ "$work" "$port"
check "… and says what to run on each node" grep -q -- "--farm-coordinator-key 'ssh-ed25519 " "$work/coordinator.log"
check "setup --farm-coordinator-key (the node)" \
  bash -c '"${@:2}" --farm-coordinator-key "$(cat "$1/etc/sites/school/farm_ed25519.pub")" >"$1/node.log" 2>&1' _ "$work" "${setup[@]}"
check "… the key is accepted for this site's forced command only, in keys the account cannot change" \
  bash -c '[[ $(grep -F -- "$(cat "$1/etc/sites/school/farm_ed25519.pub")" /var/lib/$account/.ssh/authorized_keys) == "restrict,command=\"$1/bin/deliveryctl follow --site school --farm-socket $1/run/school-farm.sock --farm-key $1/etc/sites/school/farm.key\" $(cat "$1/etc/sites/school/farm_ed25519.pub")" &&
    $(stat -c "%U %a" /var/lib/$account/.ssh/authorized_keys /var/lib/$account/.ssh /var/lib/$account | sort -u) == "root 644
root 755" ]]' _ "$work"
check "… the node's helper listens on its farm socket: the farm account's group, 0660; the farm key root's, that group's, 0640" \
  bash -c '[[ $(stat -c "%F %U %G %a" "$1/run/school-farm.sock") == "socket root $account 660" &&
    $(stat -c "%U %G %a" "$1/etc/sites/school/farm.key") == "root $account 640" ]]' _ "$work"
with_nodes() { # with_nodes JSON-ARRAY: the site's farm with these nodes
  php -r '$c = json_decode(file_get_contents($argv[1]), true); $c["farm"]["nodes"] = json_decode($argv[2], true);
    file_put_contents($argv[1], json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' "$config" "$1"
}
deliveryctl=$DELIVERY_BINDIR/deliveryctl

section "farm check over the pinned channel"
output=$("$deliveryctl" farm check --site school 2>&1)
status=$?
echo "$output"
check "farm check: web2 answers for the same site with the same version (exit 0)" \
  test "$status $output" = "0 web2 (127.0.0.1): site school, moodle-delivery $("$deliveryctl" --version): ok"
json=$("$deliveryctl" farm check --site school --json 2>&1)
check "… and in JSON" php -r '$c = json_decode($argv[1], true); exit($c[0]["node"] === "web2" && $c[0]["site"] === "school" ? 0 : 1);' "$json"
check "… ssh ran as the farm account, not root (sshd logged the key of $account)" \
  grep -q "Accepted publickey for $account from 127.0.0.1" "$work/sshd.log"

section "Through the channel to the node's helper: farm status, an operation tied to its farm delivery"
# What the coordinator sends in a farm delivery's step: an operation with the delivery's id.
coordinator_ssh=(ssh -F /dev/null -T -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o "UserKnownHostsFile=$work/etc/sites/school/farm_known_hosts" -o HostKeyAlias=web2 -o IdentitiesOnly=yes
  -i "$work/etc/sites/school/farm_ed25519" -p "$port" "$account@127.0.0.1")
reply=$(echo '{"version": 1, "request": "operation", "farmDelivery": "F20261204-transport", "call": "{\"operation\": \"secure\"}"}' |
  as "$account" "${coordinator_ssh[@]}")
php -r '$r = json_decode($argv[1], true); $j = json_decode($r["answer"] ?? "", true);
  echo "reply: status ", $r["status"] ?? "-", ", job ", $j["state"] ?? "-", ", error ", json_encode($r["error"] ?? $j["error"] ?? null), "\n";' "$reply"
check "an operation through the channel: the node's helper ran secure and answered the finished job" \
  php -r '$r = json_decode($argv[1], true); $j = json_decode($r["answer"] ?? "", true);
    exit(($r["status"] ?? 0) === 200 && ($j["state"] ?? "") === "succeeded" && $j["actor"]["source"] === "farm" ? 0 : 1);' "$reply"
check "… the node's audit log ties it to the farm delivery (source farm, the farm account's uid)" \
  bash -c 'grep -q "\"farmDelivery\":\"F20261204-transport\"" "$1"/state/audit.log* && grep "F20261204-transport" "$1"/state/audit.log* | grep -q "\"peerUid\":$(id -u "$account")"' _ "$work"
output=$("$deliveryctl" farm status --site school 2>&1)
status=$?
echo "$output"
check "farm status: web2's helper answers through follow and its farm socket (exit 0): secured now, serving production, its revision, its last result" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^web2 (127.0.0.1): secured, serves production, production at main @ [0-9a-f]*; last: secure succeeded at 20"' _ "$status" "$output"
check "deliveryctl status on the coordinator names the farm's nodes" \
  bash -c 'says "$("$1" status --site school 2>&1)" "^Web farm:  this node coordinates web2 "' _ "$deliveryctl"
socket_try() { # socket_try USER PATH: can USER connect to the unix socket at PATH?
  as "$1" php -r '$s = @stream_socket_client("unix://" . $argv[1], $no, $text, 2); exit($s ? 0 : 1);' "$2"
}
export -f socket_try
check_fails "the web user cannot connect to the farm socket (its group is the farm account's)" \
  socket_try www-data "$work/run/school-farm.sock"
check_fails "the farm account cannot connect to the web socket" socket_try "$account" "$work/run/school/deliveryd.sock"
check "… while the web user reaches its own socket (the refusals above are the sockets', not php's)" \
  socket_try www-data "$work/run/school/deliveryd.sock"

section "Attacks: what the farm key gets on a node beyond the forced command"
# The attacker holds the coordinator's private key and talks to sshd directly, as the farm account.
attacker=(ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o IdentitiesOnly=yes -i "$work/etc/sites/school/farm_ed25519" -p "$port" "$account@127.0.0.1")
out=$(as "$account" "${attacker[@]}" 'id; echo pwned' </dev/null 2>&1)
check "a command asked for is not run: follow answers 'command_given'" says "$out" command_given
check "… no id ran, nothing echoed" bash -c 'says_not "$1" "uid=" && says_not "$1" "^pwned"' _ "$out"
out=$(as "$account" "${attacker[@]}" -t -t 'id' </dev/null 2>&1)
check "a terminal is refused (restrict), and no id ran" bash -c 'says "$1" "PTY allocation request failed" && says_not "$1" "uid="' _ "$out"
out=$(echo '{"version":1,"request":"shell"}' | as "$account" "${attacker[@]}" 2>&1)
check "a request outside the closed set is refused (unknown_request)" says "$out" unknown_request
forward_port=$((port + 1))
as "$account" "${attacker[@]}" -N -o ExitOnForwardFailure=yes -L "127.0.0.1:$forward_port:127.0.0.1:$port" \
  </dev/null >"$work/forward.log" 2>&1 &
forwarder=$!
sleep 1.5
forwarded=no
(exec 3<>"/dev/tcp/127.0.0.1/$forward_port" && timeout 2 head -c 3 <&3 | grep -q SSH) 2>/dev/null && forwarded=yes
# The attacker's ssh runs as the farm account under `as`: stopped by what it is.
pkill -u "$account" -x ssh
wait "$forwarder" 2>/dev/null
check "port forwarding through the node is refused (restrict): nothing answers on the forwarded port" test "$forwarded" = no
as "$account" "${attacker[@]}" -N -R "127.0.0.1:$((port + 2)):127.0.0.1:22" -o ExitOnForwardFailure=yes </dev/null >"$work/remote.log" 2>&1 &
remote=$!
sleep 1.5
check_fails "… remote forwarding too" pgrep -u "$account" -x ssh
pkill -u "$account" -x ssh
wait "$remote" 2>/dev/null

section "A node that is not the one pinned, a node that does not answer"
logged=$(wc -l <"$work/sshd.log")
check "sshd restarted with another host key (an impostor at web2's address)" start_sshd "$work/impostor_ed25519"
capture "$deliveryctl" farm check --site school
check "farm check refuses it (exit 2), naming web2 and the host key" \
  bash -c '[[ $1 == 2 ]] && says "$2" "node web2 (127.0.0.1): its host key is not the one pinned at install"' _ "$status" "$out"
check "… and asked it nothing: follow never ran (no request reached the impostor)" \
  bash -c "! tail -n +$((logged + 1)) '$work/sshd.log' | grep -q 'Accepted publickey'"
pins=$(md5sum <"$work/etc/sites/school/farm_known_hosts")
"${setup[@]}" --farm-node "web2=127.0.0.1:$port" >"$work/repin.log" 2>&1
status=$?
check "setup --farm-node against the impostor refuses (exit 2), saying the key is not the pinned one" \
  bash -c '[[ $1 == 2 ]] && grep -q "node web2 answers with another host key than the one pinned" "$2/repin.log"' _ "$status" "$work"
check "… the pinned key stays" test "$(md5sum <"$work/etc/sites/school/farm_known_hosts")" = "$pins"
check "sshd back with web2's own host key" start_sshd "$work/host_ed25519"
with_nodes "[{\"name\": \"web2\", \"address\": \"127.0.0.1\", \"port\": $port}, {\"name\": \"web3\", \"address\": \"127.0.0.1\", \"port\": $((port + 3))}]"
capture "$deliveryctl" farm check --site school
check "a node that does not answer: farm check refuses (exit 2), naming web3 and the cause" \
  bash -c '[[ $1 == 2 ]] && says "$2" "node web3 (127.0.0.1): ssh: connect to host 127.0.0.1 port" "Connection refused"' _ "$status" "$out"
section "A node in a network namespace of its own: reached over a veth, then cut off"
ns=farmtest-$$
veth=vfarm$$
net=10.231.$((RANDOM % 250)).
sshd4_pid=
ip netns add "$ns" && ip link add "$veth" type veth peer name "${veth}n" && ip link set "${veth}n" netns "$ns" &&
  ip addr add "${net}1/30" dev "$veth" && ip link set "$veth" up &&
  ip netns exec "$ns" ip addr add "${net}2/30" dev "${veth}n" && ip netns exec "$ns" ip link set "${veth}n" up &&
  ip netns exec "$ns" ip link set lo up
check "node web4: a namespace of its own at ${net}2, a veth to this one" ip netns exec "$ns" ip -4 addr show "${veth}n"
ssh-keygen -q -t ed25519 -N '' -f "$work/web4_ed25519"
sed -e "s/^Port .*/Port 22/" -e "s/^ListenAddress .*/ListenAddress ${net}2/" -e "s#^HostKey .*#HostKey $work/web4_ed25519#" \
  -e "s#^PidFile .*#PidFile $work/sshd4.pid#" "$work/sshd_config" >"$work/sshd4_config"
ip netns exec "$ns" /usr/sbin/sshd -f "$work/sshd4_config" -D -e 2>>"$work/sshd4.log" &
sshd4_pid=$!
sleep 0.5
check "setup --farm-node web2=127.0.0.1:$port --farm-node web4=${net}2 pins both" \
  bash -c '"${@:4}" --farm-node "web2=127.0.0.1:$2" --farm-node "web4=${3}2" >"$1/web4.log" 2>&1 && grep -q "^web4 ssh-ed25519 " "$1/etc/sites/school/farm_known_hosts"' _ "$work" "$port" "$net" "${setup[@]}"
out=$("$deliveryctl" farm check --site school 2>&1)
check "farm check: web2 and web4 answer" says "$out" "web2 (127.0.0.1): site school" "web4 (${net}2): site school, moodle-delivery .*: ok"
ip link set "$veth" down
started=$SECONDS
out=$("$deliveryctl" farm check --site school 2>&1)
status=$?
took=$((SECONDS - started))
echo "$out"
check "web4 cut off (its link down): farm check refuses (exit 2) in ${took} s, naming web4" \
  bash -c '[[ $1 == 2 && $2 -le 15 ]] && says "$3" "node web4 (${4}2): ssh: " && grep -qE "timed out|No route|unreachable" <<<"$3"' _ "$status" "$took" "$out" "$net"
[[ -n $sshd4_pid ]] && kill "$sshd4_pid" 2>/dev/null
ip netns del "$ns" 2>/dev/null
ip link del "$veth" 2>/dev/null

with_nodes "[{\"name\": \"web2\", \"address\": \"-oProxyCommand=touch $work/pwned\"}]"
out=$("$deliveryctl" farm check --site school 2>&1)
echo "$out"
check "an address that would be an option of ssh's is refused by the configuration's check" \
  bash -c 'says "$1" "is not a host name or an IP address" && [[ ! -e $2/pwned ]]' _ "$out" "$work"

section "A delivery in lock-step: this node (school) and web5, a second node of the same site"
# web5: the same site installed from its own copy, with its own configuration, state, helper and
# sshd (whose authorized keys are a file of its own: the farm account's file holds the coordinator
# line of one install of a site).
port5=$((port + 5))
with_nodes "[{\"name\": \"web2\", \"address\": \"127.0.0.1\", \"port\": $port}]"
cp /var/lib/$account/.ssh/authorized_keys "$work/keys.saved"
setup5=("$project/scripts/setup" --moodle "$work/fx5/moodle" --site school --state-dir "$work/state5"
  --no-database-snapshot --health-check off)
check "setup --farm-coordinator-key on web5 (its own folders)" \
  bash -c 'DELIVERY_ETC=$1/etc5 DELIVERY_RUN=$1/run5 DELIVERY_LOG_DIR=$1/log5 "${@:2}" --farm-coordinator-key "$(cat "$1/etc/sites/school/farm_ed25519.pub")" >"$1/web5.log" 2>&1' \
  _ "$work" "${setup5[@]}"
install -m 0644 /var/lib/$account/.ssh/authorized_keys "$work/web5_keys"
install -m 0644 "$work/keys.saved" /var/lib/$account/.ssh/authorized_keys
ssh-keygen -q -t ed25519 -N '' -f "$work/web5_ed25519"
sed -e "s/^Port .*/Port $port5/" -e "s#^HostKey .*#HostKey $work/web5_ed25519#" -e "s#^PidFile .*#PidFile $work/sshd5.pid#" \
  "$work/sshd_config" >"$work/sshd5_config"
echo "AuthorizedKeysFile $work/web5_keys" >>"$work/sshd5_config"
/usr/sbin/sshd -f "$work/sshd5_config" -D -e 2>>"$work/sshd5.log" &
sshd5_pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port5") 2>/dev/null && break; sleep 0.1; done
check "setup --farm-node web5=127.0.0.1:$port5 on this node (the coordinator)" \
  bash -c '"${@:3}" --farm-node "web5=127.0.0.1:$2" >"$1/coordinator5.log" 2>&1' _ "$work" "$port5" "${setup[@]}"
out=$("$deliveryctl" farm status --site school 2>&1)
echo "$out"
check "farm status: this node first, then web5 answers, at rest, in line (the same revision)" \
  bash -c 'says "$1" "^this node (coordinator): [a-z]*, serves production" "^web5 (127.0.0.1): idle, serves production" && says_not "$1" "not the coordinator"' _ "$out"
# The upstream is the code owner's, as on a real site (its git refuses a repository of another user).
code_owner=$(stat -c %U "$work/fx/moodle-delivery/releases/production")
chown -R "$code_owner:" "$work/fx/upstream" "$work/fx/author" "$work/fx/revision2"
commit_code_change() { # commit_code_change TEXT: a code-only change (no version) pushed upstream
  echo "<?php // $1" >"$work/farm-note.php"
  as "$code_owner" bash -c 'cd "$1/fx/author" && cp "$1/farm-note.php" farm-note.php && git add -A &&
    git -c user.name=t -c user.email=t@example.invalid commit -qm "$2" && git push -q origin HEAD:main' _ "$work" "$1"
}
commit_code_change "farm delivery one"
upstream_head=$(git -c safe.directory="*" -C "$work/fx/upstream" rev-parse main)
capture "$deliveryctl" farm run-all --site school --comment "lock-step one"
check "farm run-all: every step on both nodes (exit 0)" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^secure: this node, web5 done" "^switch: this node, web5 done" "^update: this node goes to .*; bringing every node to exactly [0-9a-f]* at once" "^update: this node, web5 done" "^preflight: every node may restore" "^restore: this node, web5 done" "every node serves"' _ "$status" "$out"
check "… both productions at the upstream's commit, both served" \
  bash -c '[[ $(git -c safe.directory="*" -C "$1/fx/moodle-delivery/releases/production" rev-parse HEAD) == "$2" && $(git -c safe.directory="*" -C "$1/fx5/moodle-delivery/releases/production" rev-parse HEAD) == "$2" &&
    $(readlink "$1/fx/moodle-delivery/current") == releases/production && $(readlink "$1/fx5/moodle-delivery/current") == releases/production ]]' _ "$work" "$upstream_head"
farm_id=$(grep -oE "Farm delivery F[0-9A-Za-z-]+" <<<"$out" | head -1 | cut -d" " -f3)
check "… each node's audit log records the farm delivery $farm_id (web5's from the farm account), with the comment" \
  bash -c '[[ -n $2 ]] && grep -q "\"farmDelivery\":\"$2\"" "$1"/state/audit.log* && grep "\"farmDelivery\":\"$2\"" "$1"/state5/audit.log* | grep -q "\"source\":\"farm\"" &&
    grep "\"farmDelivery\":\"$2\"" "$1"/state5/audit.log* | grep -q "lock-step one"' _ "$work" "$farm_id"

# The Moodle page on the coordinator (the plugin's own client, as the web user): its status names
# the farm, its farm panel lists web5, and its Run all is the farm delivery.
both_at_head() { # both_at_head COMMIT: both productions at COMMIT, both served
  [[ $(git -c safe.directory="*" -C "$work/fx/moodle-delivery/releases/production" rev-parse HEAD) == "$1" &&
    $(git -c safe.directory="*" -C "$work/fx5/moodle-delivery/releases/production" rev-parse HEAD) == "$1" &&
    $(readlink "$work/fx/moodle-delivery/current") == releases/production &&
    $(readlink "$work/fx5/moodle-delivery/current") == releases/production ]]
}
page() { as www-data php "$project/Tests/Farm/page_client.php" "$work/run/school/deliveryd.sock" "$work/etc/sites/school/deliveryd.key" "$@"; }
out=$(page farm)
echo "$out"
check "the page's farm panel: web5 as its helper answered over SSH (idle, production, the revision)" \
  php -r '$n = json_decode($argv[1], true)["nodes"] ?? []; exit(count($n) === 1 && $n[0]["node"] === "web5" && $n[0]["phase"] === "idle" && $n[0]["served"] === "production" && $n[0]["revisionId"] === $argv[2] && $n[0]["lastOperation"] === "restore" && $n[0]["lastSucceeded"] && ($n[0]["outOfLine"] ?? null) === false ? 0 : 1);' "$out" "$upstream_head"
check "… and the page's status names the farm's nodes" \
  php -r 'exit((json_decode($argv[1], true)["site"]["farmNodes"] ?? null) === ["web5"] ? 0 : 1);' "$(page status)"
commit_code_change "farm delivery from the page"
upstream_head=$(git -c safe.directory="*" -C "$work/fx/upstream" rev-parse main)
out=$(page run-all '{"comment": "from the page"}')
echo "$out"
check "the page's Run all is the farm delivery: its job succeeded, done on every node (farm_done)" \
  php -r '$j = json_decode($argv[1], true); $codes = array_column($j["result"]["notices"] ?? [], "code"); exit(($j["state"] ?? "") === "succeeded" && in_array("farm_done", $codes, true) ? 0 : 1);' "$out"
check "… both productions at the upstream's commit, both served" both_at_head "$upstream_head"
check "… web5's audit log ties it to the page's job (farm id F + job id), from the farm account" \
  bash -c 'job=$(php -r "echo json_decode(\$argv[1], true)[\"id\"] ?? \"\";" "$2"); [[ -n $job ]] && grep "\"farmDelivery\":\"F$job\"" "$1"/state5/audit.log* | grep -q "\"source\":\"farm\""' _ "$work" "$out"
# The web user, with the plugin's key, asks for a job as the farm's follower does (waiting for its
# end holds one of the helper's request threads): refused on the web socket; without wait, answered.
job=$(php -r 'echo json_decode($argv[1], true)["id"] ?? "";' "$out")
check "the web user's question waiting for a job's end (wait=2, the plugin's key, the web socket): refused (bad_request, farm socket only)" \
  php -r '$j = json_decode($argv[1], true); exit(($j["refused"] ?? "") === "bad_request" && str_contains($j["message"] ?? "", "farm socket only") ? 0 : 1);' \
  "$(page job-wait "{\"id\": \"$job\", \"wait\": 2}")"
check "… the same question without waiting (wait=0): answered, the job's state" \
  php -r 'exit((json_decode($argv[1], true)["state"] ?? "") === "succeeded" ? 0 : 1);' "$(page job-wait "{\"id\": \"$job\", \"wait\": 0}")"
out=$(page rehearse)
echo "$out"
check "the page's Rehearse on a farm: refused (bad_request), node by node with deliveryctl" \
  php -r '$j = json_decode($argv[1], true); exit(($j["refused"] ?? $j["error"]["code"] ?? "") === "bad_request" || str_contains(json_encode($j), "node by node") ? 0 : 1);' "$out"

# A step that fails on one node. First web5's upstream is gone: its switch refuses (it checks the
# upstream answers), this node had switched and is brought back.
before=$(git -c safe.directory="*" -C "$work/fx/moodle-delivery/releases/production" rev-parse HEAD)
commit_code_change "farm delivery two"
production5=$work/fx5/moodle-delivery/releases/production
origin5=$(git -c safe.directory="*" -C "$production5" remote get-url origin)
as "$code_owner" git -C "$production5" remote set-url origin "$work/nowhere.git"
capture "$deliveryctl" farm run-all --site school
check "web5's switch fails: farm run-all fails (exit 1), naming web5; this node brought back" \
  bash -c '[[ $1 == 1 ]] && says "$2" "switch failed on web5" "^cancel (bringing back): this node done" "Production serves on every node again"' _ "$status" "$out"
both_at() { # both_at COMMIT: both productions at COMMIT, both served, web5 at rest
  [[ $(git -c safe.directory="*" -C "$work/fx/moodle-delivery/releases/production" rev-parse HEAD) == "$1" &&
    $(git -c safe.directory="*" -C "$work/fx5/moodle-delivery/releases/production" rev-parse HEAD) == "$1" &&
    $(readlink "$work/fx/moodle-delivery/current") == releases/production &&
    $(readlink "$work/fx5/moodle-delivery/current") == releases/production ]] &&
    "$deliveryctl" farm status --site school | grep -qE "^web5 \(127.0.0.1\): (idle|secured), serves production"
}
check "… both serve production at the commit before, at rest (web5 secured)" both_at "$before"
# Then web5's upstream is a mirror that lags: it answers, but lacks the commit this node reached.
install -d -o "$code_owner" "$work/mirror"
as "$code_owner" git clone -q --bare "$work/fx/upstream" "$work/mirror/stale.git"
as "$code_owner" git -C "$work/mirror/stale.git" update-ref refs/heads/main "$before"
as "$code_owner" git -C "$production5" remote set-url origin "$work/mirror/stale.git"
capture "$deliveryctl" farm run-all --site school
check "web5's update cannot reach this node's commit: farm run-all fails (exit 1), naming web5 and the update" \
  bash -c '[[ $1 == 1 ]] && says "$2" "update failed on web5" "^cancel (bringing back): this node, web5 done" "Production serves the code before the delivery on every node"' _ "$status" "$out"
check "… every node brought back: both serve production at the commit before, at rest" both_at "$before"
as "$code_owner" git -C "$production5" remote set-url origin "$origin5"

# A node whose restore would be refused: web5's checkout leaves a new PHP file with a syntax error
# (a hook of its repository). Every node's preflight runs before any node restores: web5's
# refuses, and every node cancels — no node ever served the new code.
commit_code_change "farm delivery three"
for hook in post-checkout post-merge; do
  printf '#!/bin/sh\necho "<?php this is not php" > farm-broken.php\n' | as "$code_owner" tee "$production5/.git/hooks/$hook" >/dev/null
  chmod +x "$production5/.git/hooks/$hook"
done
capture "$deliveryctl" farm run-all --site school
check "web5's preflight refuses its restore: farm run-all fails (exit 1) before any node restores; every node cancels" \
  bash -c '[[ $1 == 1 ]] && says "$2" "^preflight: refused on web5" "restore failed on web5: .*preflight found what would break the site.*1 PHP syntax error (first: farm-broken.php" \
    "^cancel (bringing back): this node, web5 done" "No node restored" && says_not "$2" "^restore: "' _ "$status" "$out"
rm -f "$production5/.git/hooks/post-checkout" "$production5/.git/hooks/post-merge" "$production5/farm-broken.php"
check "… both serve production at the commit before, at rest" both_at "$before"

# A revision that brings Moodle's upgrade: the restore is the lock-step upgrade. First the
# upgrade fails (the fixture's upgrade.php is told to, before it changes anything): web5 already
# served production; every node is rolled back, web5 first, then this node.
as "$code_owner" bash "$work/fx/revision2" >"$work/revision2.log" 2>&1
calls=$work/fx/moodledata/fixture-calls.log
upgrade_runs() { # upgrade_runs SINCE-LINE: the lines of upgrade.php runs (not its checks) after line SINCE-LINE
  tail -n +"$(($1 + 1))" "$calls" | grep " upgrade.php " | grep -v -- "--is-"
}
both_serve() { # both_serve TREE: both nodes serve TREE
  [[ $(readlink "$work/fx/moodle-delivery/current") == "releases/$1" && $(readlink "$work/fx5/moodle-delivery/current") == "releases/$1" ]]
}
database_untouched() { [[ $(cat "$work/fx/moodledata/fixture-db-version") == 2024100700.00 ]]; }
export work calls deliveryctl
export -f upgrade_runs both_serve database_untouched both_at
echo fail >"$work/fx/moodledata/fixture-fail-upgrade"
mark=$(wc -l <"$calls")
capture "$deliveryctl" farm run-all --site school
check "the upgrade fails on this node: farm run-all fails (exit 1) after web5 served production; every node rolled back, web5 first" \
  bash -c '[[ $1 == 1 ]] && says "$2" "^preflight: every node may restore; Moodle.s upgrade runs once, on this node" \
    "^restore (every other node serves production, before the upgrade): web5 done" "restore failed on this node: .*upgrade" \
    "^rollback (bringing back): web5 done" "^rollback: this node is back" "Every node was rolled back"' _ "$status" "$out"
check "… upgrade.php ran once, on this node; both serve their backup copy; the fixture's database untouched; maintenance off" \
  bash -c '[[ $(upgrade_runs "$1" | wc -l) == 1 ]] && upgrade_runs "$1" | grep -q "dirroot=$2/fx/moodle-delivery/" &&
    both_serve backup && database_untouched && [[ ! -e $2/fx/moodledata/climaintenance.html ]]' _ "$mark" "$work"
rm -f "$work/fx/moodledata/fixture-fail-upgrade"

# Once what failed is fixed, farm restore ends the delivery: the upgrade in lock-step. Maintenance
# mode on once, every node on production, upgrade.php once (here), maintenance off, then every
# other node's own health check.
upstream_head=$(git -c safe.directory="*" -C "$work/fx/upstream" rev-parse main)
mark=$(wc -l <"$calls")
capture "$deliveryctl" farm restore --site school
check "farm restore with Moodle's upgrade: every node restored (exit 0), the other nodes on production before the upgrade and checked after" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^preflight: every node may restore; Moodle.s upgrade runs once, on this node" \
    "^restore (every other node serves production, before the upgrade): web5 done" \
    "^restore (every other node.s health check, after the upgrade): web5 done" "upgrade ran once, on this node" "every node serves"' _ "$status" "$out"
check "… upgrade.php ran exactly once, on this node; maintenance mode on once (and off); the database at revision 2" \
  bash -c '[[ $(upgrade_runs "$1" | wc -l) == 1 ]] && upgrade_runs "$1" | grep -q "dirroot=$2/fx/moodle-delivery/" &&
    [[ $(tail -n +"$(($1 + 1))" "$3" | grep -c "maintenance.php --enable") == 1 ]] &&
    [[ $(cat "$2/fx/moodledata/fixture-db-version") == 2024100800.00 && ! -e $2/fx/moodledata/climaintenance.html ]]' _ "$mark" "$work" "$calls"
check "… both productions at the upstream's commit, both served, web5 idle" both_at "$upstream_head"
check "… web5's audit log: its two stages of the restore, tied to the farm restore" \
  bash -c 'id=$(grep -oE "Farm restore F[0-9A-Za-z-]+" <<<"$2" | head -1 | cut -d" " -f3); [[ -n $id ]] &&
    [[ $(grep "\"farmDelivery\":\"$id\"" "$1"/state5/audit.log* | grep -c "\"operation\":\"restore\"") -ge 2 ]]' _ "$work" "$out"

# The emergency rollback of the farm: web5 first, then this node (no snapshot in this suite: the
# older code does not match the upgraded database, so this node turns maintenance mode on).
capture "$deliveryctl" farm rollback --site school
check "farm rollback: web5 then this node serve their backup copy (exit 0)" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^rollback (bringing back): web5 done" "^rollback: this node is back" "every node serves its rollback copy" && both_serve backup' _ "$status" "$out"
check "… the database stays at revision 2: maintenance mode holds users out of the older code" \
  bash -c '[[ $(cat "$1/fx/moodledata/fixture-db-version") == 2024100800.00 && -e $1/fx/moodledata/climaintenance.html ]]' _ "$work"
capture "$deliveryctl" farm cancel --site school
check "farm cancel: every node serves production again (exit 0), which matches the database; maintenance off" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^cancel (bringing back): this node, web5 done" "every node serves production" && both_at "$3" && [[ ! -e $4/fx/moodledata/climaintenance.html ]]' \
  _ "$status" "$out" "$upstream_head" "$work"
check "farm cancel again: nothing to cancel (exit 0)" bash -c 'says "$("$1" farm cancel --site school 2>&1)" "nothing to cancel"' _ "$deliveryctl"
check "farm restore with every node at rest: refused (exit 2), naming the nodes, nothing changed" \
  bash -c 'out=$("$1" farm restore --site school 2>&1); [[ $? == 2 ]] && says "$out" "farm restore did not start: .*this node is idle; web5 " && both_at "$2"' _ "$deliveryctl" "$upstream_head"

# A node that comes back late is brought in line by farm recover. web5 cannot be reached during
# the farm's emergency rollback: this node is rolled back all the same, web5 is named.
start_sshd5() {
  /usr/sbin/sshd -f "$work/sshd5_config" -D -e 2>>"$work/sshd5.log" &
  sshd5_pid=$!
  for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port5") 2>/dev/null && break; sleep 0.1; done
}
kill "$sshd5_pid" 2>/dev/null
wait "$sshd5_pid" 2>/dev/null
capture "$deliveryctl" farm rollback --site school
check "web5 unreachable: farm rollback rolls this node back all the same and names web5 (exit 1)" \
  bash -c '[[ $1 == 1 ]] && says "$2" "^rollback: this node is back" "farm rollback F.* failed on web5: " &&
    [[ $(readlink "$3/fx/moodle-delivery/current") == releases/backup && $(readlink "$3/fx5/moodle-delivery/current") == releases/production ]]' \
  _ "$status" "$out" "$work"
start_sshd5
capture "$deliveryctl" farm recover --site school
check "web5 back: farm recover rolls it back like this node (exit 0)" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^recover: rollback: web5 done" "every node is in line with this one (web5)" && both_serve backup' _ "$status" "$out"
check "farm recover again: every node was in line (exit 0)" \
  bash -c 'says "$("$1" farm recover --site school 2>&1)" "every node was in line with this one"' _ "$deliveryctl"
check "farm cancel: production again on both" bash -c '"$1" farm cancel --site school >/dev/null 2>&1 && both_at "$2"' _ "$deliveryctl" "$upstream_head"

# A node that missed a delivery: this node alone delivers a change (deliveryctl run-all, not the
# farm's); farm recover brings web5 to exactly that commit.
commit_code_change "delivered on this node alone"
upstream_head=$(git -c safe.directory="*" -C "$work/fx/upstream" rev-parse main)
check "deliveryctl run-all on this node alone" bash -c '"$1" run-all --site school >"$2/alone.log" 2>&1' _ "$deliveryctl" "$work"
check "farm status shows this node first, then web5 behind, flagged (its production at the revision before)" \
  bash -c 'o=$("$1" farm status --site school 2>&1); says "$o" "^this node (coordinator): idle, serves production, production at main @ ${2:0:10}" \
    "^web5 (127.0.0.1): idle, serves production, production at main @ [0-9a-f]*, not the coordinator.s revision (behind: farm recover brings it in line; ahead: farm run-all)" &&
    says_not "$(grep "^web5" <<<"$o")" "${2:0:10}"' _ "$deliveryctl" "$upstream_head"
check "… and the page's farm panel flags web5 (outOfLine)" \
  php -r '$n = json_decode($argv[1], true)["nodes"] ?? []; exit(count($n) === 1 && $n[0]["node"] === "web5" && ($n[0]["outOfLine"] ?? null) === true ? 0 : 1);' "$(page farm)"
capture "$deliveryctl" farm recover --site school
check "farm recover: web5 secured, switched, updated to exactly this node's commit, restored (exit 0)" \
  bash -c '[[ $1 == 0 ]] && says "$2" "^recover: secure: web5 done" "^recover: switch: web5 done" "^recover: update: web5 done" "^recover: restore: web5 done" &&
    both_at "$3"' _ "$status" "$out" "$upstream_head"
check "… web5's audit log ties the four to the farm recover's id" \
  bash -c 'id=$(grep -oE "Farm recover F[0-9A-Za-z-]+" <<<"$2" | head -1 | cut -d" " -f3); [[ -n $id ]] &&
    [[ $(grep "\"farmDelivery\":\"$id\"" "$1"/state5/audit.log* | grep -c "\"result\":\"succeeded\"") -ge 4 ]]' _ "$work" "$out"

# A node ahead: web5 alone delivers a newer revision (its own run-all). An update cannot take it
# back: farm recover cancels what it began there and says to run farm run-all.
coordinator_head=$upstream_head
commit_code_change "delivered on web5 alone"
upstream_head=$(git -c safe.directory="*" -C "$work/fx/upstream" rev-parse main)
check "deliveryctl run-all on web5 alone" \
  bash -c 'DELIVERY_ETC=$1/etc5 DELIVERY_RUN=$1/run5 DELIVERY_LOG_DIR=$1/log5 "$2" run-all --site school >"$1/alone5.log" 2>&1' _ "$work" "$deliveryctl"
web5_head() { git -c safe.directory="*" -C "$work/fx5/moodle-delivery/releases/production" rev-parse HEAD; }
export -f web5_head
capture "$deliveryctl" farm recover --site school
check "web5 ahead: farm recover fails (exit 1) saying to run farm run-all; web5 cancelled, serving its production at its own commit" \
  bash -c '[[ $1 == 1 ]] && says "$2" "update failed on web5" "Then web5 cancelled: each serves its production as before" "farm run-all" &&
    [[ $(readlink "$3/fx5/moodle-delivery/current") == releases/production ]] && [[ $(web5_head) == "$4" ]] &&
    [[ $(git -c safe.directory="*" -C "$3/fx/moodle-delivery/releases/production" rev-parse HEAD) == "$5" ]] &&
    "$6" farm status --site school 2>&1 | grep "^web5" | grep -q "idle, serves production"' \
  _ "$status" "$out" "$work" "$upstream_head" "$coordinator_head" "$deliveryctl"
capture "$deliveryctl" farm run-all --site school
check "… then farm run-all brings both to web5's revision, the upstream's latest (exit 0)" \
  bash -c '[[ $1 == 0 ]] && both_at "$2"' _ "$status" "$upstream_head"

# A farm rollback that this node would refuse (the upgrade changed the database and the site was
# open since the snapshot: the restore must be confirmed) asks no other node: web5 would otherwise
# serve its older code against the upgraded database. The state is made so by hand (no database
# snapshot in this suite), and put back after.
cp -p "$work/state/state.json" "$work/state.saved"
php -r '$s = json_decode(file_get_contents($argv[1]));
  $s->databaseAhead = true; $s->deliveryWindowOpen = false; $s->copiesMatchingDatabase = new stdClass();
  $s->snapshot = (object) ["id" => "20261205T010000Z-0badc0de", "file" => $argv[1], "databaseType" => "pgsql",
    "database" => "moodle", "tableCount" => 1, "takenAt" => gmdate("Y-m-d\TH:i:s.000\Z", time() - 600),
    "sizeBytes" => 1, "seconds" => 1, "codeRevision" => $s->copies->backup->revision];
  file_put_contents($argv[1], json_encode($s, JSON_UNESCAPED_SLASHES));' "$work/state/state.json"
capture "$deliveryctl" farm rollback --site school
check "farm rollback needing the database restore's confirmation: refused (exit 2) before any node is asked; web5 still serves production" \
  bash -c '[[ $1 == 2 ]] && says "$2" "must be confirmed" "On this farm: deliveryctl farm rollback --restore-database" && says_not "$2" "^rollback (bringing back)" && both_at "$3"' _ "$status" "$out" "$upstream_head"
cp -p "$work/state.saved" "$work/state/state.json"

# A node that cannot be reached: nothing starts anywhere.
kill "$sshd5_pid" 2>/dev/null
wait "$sshd5_pid" 2>/dev/null
sshd5_pid=
status_before=$(cat "$work/state/state.json" 2>/dev/null | md5sum)
capture "$deliveryctl" farm run-all --site school
check "web5 unreachable: farm run-all refuses (exit 2, farm_unreachable), naming web5; nothing changed here" \
  bash -c '[[ $1 == 2 ]] && says "$2" "node web5 (127.0.0.1)" && [[ $(cat "$3/state/state.json" 2>/dev/null | md5sum) == "$4" ]]' _ "$status" "$out" "$work" "$status_before"
kill "$(cat "$work/run5/school/deliveryd.pid")" 2>/dev/null

section "Uninstall forgets the farm"
check "setup --uninstall" "${setup[@]}" --uninstall
check "… this site's line is gone from the farm account's keys, and its farm files" \
  bash -c '! grep -q "follow --site school" /var/lib/$account/.ssh/authorized_keys && [[ ! -e $1/etc/sites/school/farm_ed25519 ]]' _ "$work"

finish
