# A web farm's channel, set up by scripts/setup (moodle-delivery-setup) — README, "Web farm":
#   --farm-node NAME=ADDRESS[:PORT]   (the coordinator, repeatable) its key, each node's host key
#                                     pinned under the node's name, the site's farm settings
#   --farm-coordinator-key 'ssh-ed25519 AAAA… comment'   (each other node) that key accepted for
#                                     this site's forced command only
# Source it after common.sh, with site, site_etc, site_config, bindir and php set.

# The account's name: moodle-farm (DELIVERY_FARM_ACCOUNT names another, as the farm test suites do so
# that they never touch the account of a real farm node on the same machine).
farm_account=${DELIVERY_FARM_ACCOUNT:-moodle-farm}
[[ $farm_account =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || {
  echo "install: DELIVERY_FARM_ACCOUNT must be a user name (lower-case letters, digits, '_' or '-'), not '$farm_account'; nothing was changed" >&2
  exit 64
}
farm_home=/var/lib/$farm_account
farm_authorized=$farm_home/.ssh/authorized_keys

# The account: ssh runs as it on the coordinator, sshd runs the forced command as it on a node.
# Its home and authorized keys are root's: the account cannot change which keys it accepts.
ensure_farm_account() {
  if ! id "$farm_account" >/dev/null 2>&1; then
    say "Creating the farm account $farm_account (the nodes' SSH channel runs as it, never as root)"
    # sshd runs a forced command through the account's shell: a shell, but only that command runs.
    useradd --system --user-group --no-create-home --home-dir "$farm_home" --shell /bin/sh "$farm_account"
  fi
  # Its keys are read from its home: an account of that name made otherwise gets this one.
  [[ $(getent passwd "$farm_account" | cut -d: -f6) == "$farm_home" ]] || usermod -d "$farm_home" "$farm_account"
  # No password, but not locked: sshd refuses a locked account's key.
  usermod -p '*' "$farm_account"
  install -d -o root -g root -m 0755 "$farm_home" "$farm_home/.ssh"
}

# farm_parse_nodes SPEC…: checks every NAME=ADDRESS[:PORT] before anything changes; sets
# farm_names, farm_addresses, farm_ports.
farm_parse_nodes() {
  farm_names=() farm_addresses=() farm_ports=()
  local spec name address port
  for spec in "$@"; do
    name=${spec%%=*} address=${spec#*=} port=22
    if [[ $address =~ ^([^:]+):([0-9]{1,5})$ ]]; then address=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}; fi
    if [[ $spec != *=* || ! $name =~ ^[a-z0-9_][a-z0-9._-]{0,63}$ || ! $address =~ ^[A-Za-z0-9.:][A-Za-z0-9.:-]{0,252}$ ]] ||
      ((port < 1 || port > 65535)); then
      echo "install: --farm-node takes NAME=ADDRESS[:PORT] (a lower-case name, a host name or an IP address), not '$spec'; nothing was changed" >&2
      exit 64
    fi
    [[ " ${farm_names[*]-} " != *" $name "* ]] ||
      { echo "install: --farm-node names $name twice; nothing was changed" >&2; exit 64; }
    farm_names+=("$name") farm_addresses+=("$address") farm_ports+=("$port")
  done
}

# farm_scan: every node's host key, read before anything of the site changes (a node that does
# not answer, or whose key is not the one pinned before, changes nothing); sets farm_keys.
farm_scan() {
  local known=$site_etc/farm_known_hosts i scanned pinned
  command -v ssh-keyscan >/dev/null 2>&1 || install_packages openssh-client
  farm_keys=()
  for i in "${!farm_names[@]}"; do
    scanned=$(ssh-keyscan -T 5 -t ed25519 -p "${farm_ports[$i]}" "${farm_addresses[$i]}" 2>/dev/null |
      awk '$2 == "ssh-ed25519" { print $2, $3; exit }')
    if [[ -z $scanned ]]; then
      echo "install: node ${farm_names[$i]} (${farm_addresses[$i]}, port ${farm_ports[$i]}) gave no ed25519 host key (ssh-keyscan): is its sshd running and reachable? Nothing was changed" >&2
      exit 1
    fi
    pinned=$(awk -v n="${farm_names[$i]}" '$1 == n { print $2, $3; exit }' "$known" 2>/dev/null || true)
    if [[ -n $pinned && $pinned != "$scanned" ]]; then
      echo "install: node ${farm_names[$i]} answers with another host key than the one pinned in $known: if the node was reinstalled, check its key (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub there) and remove its line from $known; nothing was changed" >&2
      exit 2
    fi
    farm_keys+=("$scanned")
  done
}

# farm_pin: the coordinator's key (made once), the scanned host keys pinned under the nodes' names,
# and the site's farm settings.
farm_pin() {
  local key=$site_etc/farm_ed25519 known=$site_etc/farm_known_hosts i nodes=()
  ensure_farm_account
  if [[ ! -f $key ]]; then
    say "Making the farm key of site '$site' ($key)"
    ssh-keygen -q -t ed25519 -N '' -C "moodle-delivery farm coordinator of $site" -f "$key"
  fi
  chown "$farm_account:" "$key" "$key.pub"
  chmod 0600 "$key"
  chmod 0644 "$key.pub"
  touch "$known"
  chmod 0644 "$known"
  for i in "${!farm_names[@]}"; do
    grep -q "^${farm_names[$i]} " "$known" || echo "${farm_names[$i]} ${farm_keys[$i]}" >>"$known"
    echo "  Node ${farm_names[$i]} (${farm_addresses[$i]}, port ${farm_ports[$i]}): host key $(ssh-keygen -lf <(echo "${farm_names[$i]} ${farm_keys[$i]}") | cut -d' ' -f2) pinned;"
    echo "    compare it with what the node says: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"
    nodes+=("{\"name\": \"${farm_names[$i]}\", \"address\": \"${farm_addresses[$i]}\", \"port\": ${farm_ports[$i]}}")
  done
  "$php" -r '$c = json_decode(file_get_contents($argv[1]), true);
    $c["farm"] = ["account" => $argv[2], "identityFile" => $argv[3], "knownHostsFile" => $argv[4], "nodes" => json_decode($argv[5], true)];
    file_put_contents($argv[1] . ".new", json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");' \
    "$site_config" "$farm_account" "$key" "$known" "[$(IFS=,; echo "${nodes[*]}")]"
  chmod --reference="$site_config" "$site_config.new"
  mv "$site_config.new" "$site_config"
  farm_text="On each node (${farm_names[*]}), once moodle-delivery is set up there for this site:
    moodle-delivery-setup --moodle DIR --site $site --farm-coordinator-key '$(cat "$key.pub")'
Then check the channel from here: deliveryctl farm check --site $site"
}

# farm_check_key KEY: a public key line without options, checked before anything changes.
farm_check_key() {
  if [[ ! $1 =~ ^ssh-ed25519\ [A-Za-z0-9+/]+={0,2}(\ [[:print:]]*)?$ || $1 == *'"'* ]]; then
    echo "install: --farm-coordinator-key takes the coordinator's public key line ('ssh-ed25519 AAAA… comment', from its farm_ed25519.pub), without options; nothing was changed" >&2
    exit 64
  fi
}

# The farm socket of this site's helper on a node, and the key follow signs with there: the farm
# account's group may use them, the web user may not (deliveryctl follow passes the coordinator's
# requests on through them).
# (Set once site and site_etc are known.)
farm_node_paths() {
  farm_socket=${DELIVERY_RUN:-/run/deliveryd}/$site-farm.sock
  farm_key_file=$site_etc/farm.key
}

# farm_listener: this node's helper gets a farm socket (`farm` in deliveryd.json) with a key of its
# own; run before the helper (re)starts.
farm_listener() {
  farm_node_paths
  ensure_farm_account
  if [[ ! -s $farm_key_file ]]; then
    (umask 027 && head -c 48 /dev/urandom | base64 -w0 >"$farm_key_file")
  fi
  chown "root:$farm_account" "$farm_key_file"
  chmod 0640 "$farm_key_file"
  "$php" -r '$c = json_decode(file_get_contents($argv[1]), true);
    $c["farm"] = ["socketPath" => $argv[2], "socketGroup" => $argv[3], "allowedUids" => [(int) $argv[4]], "keyFile" => $argv[5]];
    file_put_contents($argv[1], json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");' \
    "$server_config" "$farm_socket" "$farm_account" "$(id -u "$farm_account")" "$farm_key_file"
  say "The helper of site '$site' takes the coordinator's requests on $farm_socket ($farm_account's group only)"
}

# farm_follower KEY: this node accepts the coordinator's KEY for this site's forced command only
# (its line replaces this site's earlier one; other sites' lines stay).
farm_follower() {
  local key=$1 line
  farm_check_key "$key"
  farm_node_paths
  ensure_farm_account
  line="restrict,command=\"$bindir/deliveryctl follow --site $site --farm-socket $farm_socket --farm-key $farm_key_file\" $key"
  {
    grep -vF -- "follow --site $site " "$farm_authorized" 2>/dev/null || true
    echo "$line"
  } >"$farm_authorized.new"
  chmod 0644 "$farm_authorized.new"
  mv "$farm_authorized.new" "$farm_authorized"
  say "The coordinator's key is accepted for site '$site' as $farm_account, for deliveryctl follow only ($farm_authorized)"
}

# farm_forget: --uninstall removes this site's line from the farm account's keys and the site's farm files.
farm_forget() {
  farm_node_paths
  if [[ -f $farm_authorized ]] && grep -qF -- "follow --site $site " "$farm_authorized"; then
    grep -vF -- "follow --site $site " "$farm_authorized" >"$farm_authorized.new" || true
    chmod 0644 "$farm_authorized.new"
    mv "$farm_authorized.new" "$farm_authorized"
  fi
  rm -f "$site_etc/farm_ed25519" "$site_etc/farm_ed25519.pub" "$site_etc/farm_known_hosts" "$farm_key_file"
}
