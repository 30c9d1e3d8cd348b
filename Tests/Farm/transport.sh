#!/usr/bin/env bash
# A web farm's transport against a real OpenSSH server started here (sshd on 127.0.0.1, a port of
# its own): the coordinator's `deliveryctl farm check` reaches a node through the farm account's
# forced command (`deliveryctl follow`), with the node's host key pinned; and what a holder of the
# farm key tries beyond that fails: a shell, another command, port forwarding, a terminal. A node
# whose host key is not the pinned one, or that does not answer, is refused by name. As root.
# Needs DELIVERYCTL_BINARY. Ends with "farm: N passed, M failed".
set -uo pipefail
suite=farm
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
source "$project/Tests/Support/suite.sh"
source "$project/scripts/lib/common.sh"
deliveryctl=${DELIVERYCTL_BINARY:?set DELIVERYCTL_BINARY to a built deliveryctl}
install_server_packages openssh-server openssh-client

# Under /var/lib (root's, 0755 all the way up): sshd's StrictModes refuses authorized keys reached
# through a world-writable folder such as /tmp.
work=$(mktemp -d /var/lib/delivery-farm-XXXXXX)
chmod 755 "$work"
account=moodle-farm
code_owner=deliverycode
created_account=0
sshd_pid=
cleanup() {
  ((failed)) && [[ -f $work/sshd.log ]] && tail -20 "$work/sshd.log"
  [[ -n $sshd_pid ]] && kill "$sshd_pid" 2>/dev/null
  ((created_account)) && userdel "$account" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

section "A node: sshd with the farm account's forced command"
if ! id "$account" >/dev/null 2>&1; then
  # sshd runs the forced command through the account's shell: a shell, but only that command runs.
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /bin/sh "$account"
  # No password, but not locked: sshd refuses a locked account even for a key ('!' from useradd).
  usermod -p '*' "$account"
  created_account=1
fi
id "$code_owner" >/dev/null 2>&1 ||
  useradd --system --user-group --create-home --home-dir "/var/lib/$code_owner" --shell /usr/sbin/nologin "$code_owner"
mkdir -p /run/sshd "$work/keys" "$work/authorized"
chmod 755 /run/sshd "$work/keys" "$work/authorized"
ssh-keygen -q -t ed25519 -N '' -C "farm coordinator" -f "$work/keys/farm_ed25519"
chown "$account:" "$work/keys/farm_ed25519" "$work/keys/farm_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -f "$work/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$work/impostor_ed25519"
echo "restrict,command=\"$deliveryctl follow --site school\" $(cat "$work/keys/farm_ed25519.pub")" \
  >"$work/authorized/$account"
chmod 644 "$work/authorized/$account"
port=$((30000 + RANDOM % 20000))
start_sshd() { # start_sshd HOSTKEY
  [[ -n $sshd_pid ]] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null
  cat >"$work/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $1
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized/%u
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

section "The coordinator: a site with a farm of one node, its host key pinned under the node's name"
bash "$project/Tests/Fixture/make-site" --vcs git --dir "$work/fx" >/dev/null || fatal "make-site failed"
chown -R "$code_owner:" "$work/fx/upstream" "$work/fx/author" "$work/fx/moodle"
chown -R www-data: "$work/fx/moodledata"
mkdir -p "$work/etc/sites/school"
config=$work/etc/sites/school/site.json
"$deliveryctl" init --moodle "$work/fx/moodle" --site-root "$work/fx/site" --state-dir "$work/state" --config "$config" \
  --web-user www-data --code-owner "$code_owner" --no-database-snapshot >"$work/init.log" 2>&1 ||
  { cat "$work/init.log"; fatal "deliveryctl init failed"; }
# What the install will do: the node's host key, read once and checked by the admin, pinned.
echo "web2 $(cut -d' ' -f1,2 "$work/host_ed25519.pub")" >"$work/keys/farm_known_hosts"
chmod 644 "$work/keys/farm_known_hosts"
with_nodes() { # with_nodes JSON-ARRAY: the site's farm with these nodes
  php -r '$c = json_decode(file_get_contents($argv[1]), true);
    $c["farm"] = ["account" => $argv[2], "identityFile" => $argv[3], "knownHostsFile" => $argv[4], "nodes" => json_decode($argv[5], true)];
    file_put_contents($argv[1], json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));' \
    "$config" "$account" "$work/keys/farm_ed25519" "$work/keys/farm_known_hosts" "$1"
}
with_nodes "[{\"name\": \"web2\", \"address\": \"127.0.0.1\", \"port\": $port}]"
export DELIVERY_ETC=$work/etc
# says TEXT PATTERN…: each pattern is in the text; says_not TEXT PATTERN: it is not.
says() { local text=$1 pattern; shift; for pattern in "$@"; do grep -q -- "$pattern" <<<"$text" || return 1; done; }
says_not() { ! grep -q -- "$2" <<<"$1"; }
export -f says says_not

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

section "Attacks: what the farm key gets on a node beyond the forced command"
# The attacker holds the coordinator's private key and talks to sshd directly, as the farm account.
attacker=(ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o IdentitiesOnly=yes -i "$work/keys/farm_ed25519" -p "$port" "$account@127.0.0.1")
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
kill "$forwarder" 2>/dev/null
wait "$forwarder" 2>/dev/null
check "port forwarding through the node is refused (restrict): nothing answers on the forwarded port" test "$forwarded" = no
as "$account" "${attacker[@]}" -N -R "127.0.0.1:$((port + 2)):127.0.0.1:22" -o ExitOnForwardFailure=yes </dev/null >"$work/remote.log" 2>&1 &
remote=$!
sleep 1.5
check_fails "… remote forwarding too" kill -0 "$remote"
kill "$remote" 2>/dev/null

section "A node that is not the one pinned, a node that does not answer"
logged=$(wc -l <"$work/sshd.log")
check "sshd restarted with another host key (an impostor at web2's address)" start_sshd "$work/impostor_ed25519"
out=$("$deliveryctl" farm check --site school 2>&1)
status=$?
echo "$out"
check "farm check refuses it (exit 2), naming web2 and the host key" \
  bash -c '[[ $1 == 2 ]] && says "$2" "node web2 (127.0.0.1): its host key is not the one pinned at install"' _ "$status" "$out"
check "… and asked it nothing: follow never ran (no request reached the impostor)" \
  bash -c "! tail -n +$((logged + 1)) '$work/sshd.log' | grep -q 'Accepted publickey'"
check "sshd back with web2's own host key" start_sshd "$work/host_ed25519"
with_nodes "[{\"name\": \"web2\", \"address\": \"127.0.0.1\", \"port\": $port}, {\"name\": \"web3\", \"address\": \"127.0.0.1\", \"port\": $((port + 3))}]"
out=$("$deliveryctl" farm check --site school 2>&1)
status=$?
echo "$out"
check "a node that does not answer: farm check refuses (exit 2), naming web3 and the cause" \
  bash -c '[[ $1 == 2 ]] && says "$2" "node web3 (127.0.0.1): ssh: connect to host 127.0.0.1 port" "Connection refused"' _ "$status" "$out"
with_nodes "[{\"name\": \"web2\", \"address\": \"-oProxyCommand=touch $work/pwned\"}]"
out=$("$deliveryctl" farm check --site school 2>&1)
echo "$out"
check "an address that would be an option of ssh's is refused by the configuration's check" \
  bash -c 'says "$1" "is not a host name or an IP address" && [[ ! -e $2/pwned ]]' _ "$out" "$work"

finish
