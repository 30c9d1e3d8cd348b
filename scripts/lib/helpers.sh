# The sites' helpers, found and restarted: shared by scripts/setup (moodle-delivery-setup) and the
# Debian package's maintainer scripts (through scripts/helpers). Source it after common.sh, with
# etc, bindir and php set (server_config: the site being set up, or empty).

# site_running SITE_JSON: "yes" while an operation runs on the site, "no" between operations,
# "unknown" when its state cannot be read.
site_running() {
  "$bindir/deliveryctl" status --config "$1" --json 2>/dev/null |
    "$php" -r '$s = json_decode(stream_get_contents(STDIN), true); echo is_array($s) ? (isset($s["running"]) ? "yes" : "no") : "unknown";' ||
    echo unknown
}

# site_configs: each site's helper configuration (deliveryd.json), one per line.
site_configs() {
  local config
  for config in "$etc/deliveryd.json" "$etc"/sites/*/deliveryd.json; do [[ -f $config ]] && echo "$config"; done
  return 0
}

# site_name CONFIG: the name of the site a deliveryd.json belongs to.
site_name() { if [[ $1 == "$etc/deliveryd.json" ]]; then echo default; else basename "$(dirname "$1")"; fi; }

# site_configuration_of CONFIG: the site configuration a deliveryd.json names.
site_configuration_of() { "$php" -r 'echo json_decode(file_get_contents($argv[1]), true)["siteConfiguration"] ?? "";' "$1"; }

systemd_running() { [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; }

# This site's helper, found by what it is, never by a number alone: a root process running a
# deliveryd executable (replaced or not) whose command line names this site's configuration, and
# whose parent is not a deliveryd (the monitor; its request side is its child), and whose root
# folder is this system's (not a process of a chroot or a container). Prints the pids.
site_helpers() {
  local pid exe config=${1:-$server_config} ours
  ours=$(stat -L -c %d:%i /proc/self/root)
  for pid in $(pgrep -u 0 -x deliveryd); do
    [[ $(stat -L -c %d:%i "/proc/$pid/root" 2>/dev/null) == "$ours" ]] || continue
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ $(basename "${exe% (deleted)}") == deliveryd ]] || continue
    [[ " $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) " == *" --config $config "* ]] || continue
    [[ $(ps -o comm= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')" 2>/dev/null) == deliveryd ]] && continue
    echo "$pid"
  done
}

# helper_files PID: the pid file a running helper was started with ("-" for none) and the file its
# output goes to, on one line.
helper_files() {
  local pid_file
  pid_file=$(tr '\0' '\n' <"/proc/$1/cmdline" | sed -n '/^--pid-file$/{n;p;}')
  echo "${pid_file:--} $(readlink "/proc/$1/fd/1" 2>/dev/null || echo /dev/null)"
}

# stop_process PID: asks it to stop (it lets requests under way finish) and waits up to 10 s.
stop_process() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  ! kill -0 "$1" 2>/dev/null
}

# start_helper CONFIG PID_FILE LOG_FILE: starts a site's helper by hand (no systemd), in a session
# of its own, and prints its pid once it is this site's helper and wrote its pid file; fails
# otherwise. PID_FILE "-": none.
start_helper() {
  local config=$1 pid_file=$2 log_file=$3 started
  [[ $pid_file == - ]] && pid_file=
  setsid "$bindir/deliveryd" --config "$config" ${pid_file:+--pid-file "$pid_file"} </dev/null >>"$log_file" 2>&1 &
  started=$!
  for _ in $(seq 100); do
    [[ $(site_helpers "$config") == "$started" && ( -z $pid_file || $(tr -cd '0-9' <"$pid_file" 2>/dev/null) == "$started" ) ]] && break
    kill -0 "$started" 2>/dev/null || break
    sleep 0.1
  done
  [[ $(site_helpers "$config") == "$started" ]] && echo "$started"
}

# The other sites' helpers run the programs this install just replaced (the old executable stays
# only as a deleted file): each is restarted on the new one, as it was started, unless an
# operation is under way there (a stopped helper leaves it interrupted); then install says so and
# ends with exit 3 once everything else is done.
others_left=()
restart_other_helpers() {
  local config pid exe pid_file log_file site_json name started
  for config in $(site_configs); do
    [[ $config != "$server_config" ]] || continue
    name=$(site_name "$config")
    site_json=$(site_configuration_of "$config")
    for pid in $(site_helpers "$config"); do
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
      [[ $exe == "$bindir/deliveryd (deleted)" ]] || continue
      if systemd_running && systemctl is-active --quiet "deliveryd-$name.service" 2>/dev/null; then
        say "Restarting site '$name''s helper on the new programs (systemctl restart deliveryd-$name)"
        systemctl restart "deliveryd-$name.service"
        continue
      fi
      if [[ $(site_running "$site_json") != no ]]; then
        others_left+=("site '$name' (helper pid $pid): an operation is under way there (or its state could not be read); once it has ended: kill $pid, then start it as below")
        continue
      fi
      read -r pid_file log_file < <(helper_files "$pid")
      say "Restarting site '$name''s helper (pid $pid) on the new programs"
      if ! stop_process "$pid"; then
        others_left+=("site '$name' (helper pid $pid) did not stop within 10 s")
        continue
      fi
      if started=$(start_helper "$config" "$pid_file" "$log_file"); then
        echo "  site '$name': helper pid $started, on the new programs"
      else
        others_left+=("site '$name': its new helper did not start (see $log_file)")
      fi
    done
  done
}

# write_units FOLDER UNIT SITE SITE_ROOT STATE_PARENT DATAROOT SERVER_CONFIG SOCKET WEB_USER: a site's
# systemd units (UNIT.service, UNIT.socket) in FOLDER, from the templates in deploy/: its programs,
# configuration and socket, and the only folders it may write (the site root, the state, the dataroot).
write_units() {
  local folder=$1 unit=$2 site=$3 site_root=$4 state_parent=$5 dataroot=$6 config=$7 socket=$8 web_user=$9
  sed -e "s#^ReadWritePaths=/srv/moodle\$#ReadWritePaths=$site_root#" \
      -e "s#^ReadWritePaths=/var/lib/moodle-delivery\$#ReadWritePaths=$state_parent#" \
      -e "s#^ReadWritePaths=/var/moodledata\$#ReadWritePaths=$dataroot#" \
      -e "s#/usr/local/bin/deliveryd#$bindir/deliveryd#" \
      -e "s#/etc/moodle-delivery/deliveryd.json#$config#" \
      -e "s#deliveryd\.socket#$unit.socket#g" -e "s#^Description=.*#& ($site)#" \
      "$project_root/deploy/deliveryd.service" >"$folder/$unit.service"
  sed -e "s#^ListenStream=.*#ListenStream=$socket#" -e "s#^SocketGroup=.*#SocketGroup=$web_user#" \
      "$project_root/deploy/deliveryd.socket" >"$folder/$unit.socket"
}
