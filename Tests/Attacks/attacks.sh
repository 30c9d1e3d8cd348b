# Attacks on the live helper by the web user (and the code owner), replayed in the end-to-end
# suite: sourced by Tests/EndToEnd/e2e.sh, whose stack (deliveryd, PHP-FPM, nginx), fixture site,
# accounts and helpers (ok, not_ok, check, check_fails, as, section) it uses. Each attack is a real
# process of the attacker's uid working against the helper while deliveries run; each check
# fails if the attack worked. See docs/SECURITY.md.
#
#   attacks_begin           the decoy (a root-only folder the attacks aim at) and the web user's
#                           watcher, which swaps anything it finds in the helper's scratch folders
#                           for symlinks into the decoy, as fast as it can
#   attacks_trace_start     strace on deliveryd (its own threads, and each child until it runs its
#   attacks_trace_check       program), checked by trace-check.php
#   attacks_check_caches    every tree's component cache was made by the code owner, nothing of the
#                           decoy landed anywhere, the watcher found no scratch folder
#   attacks_terminal        a child of deliveryctl on the admin's terminal tries TIOCSTI
#   attacks_code_owner      the code owner tries to plant symlinks where the helper works by path
#   attacks_flood           stalled connections and twenty rollbacks at once, by the web user
#   attacks_request_side    what a process of deliveryd's request user (another site's request
#                           side taken over, say) can reach: none of the site, not the monitor

attacks=$tmp/attacks
attack_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

attacks_begin() {
  section "Attacks: the web user's watcher and the decoy"
  mkdir -p "$attacks/decoy/victims"
  head -c 32 /dev/urandom | base64 >"$attacks/decoy/secret"
  echo "root-only victim" >"$attacks/decoy/victims/file"
  chmod 0600 "$attacks/decoy/secret" "$attacks/decoy/victims/file"
  chmod 0700 "$attacks/decoy/victims"
  chmod 0755 "$attacks/decoy" "$attacks"
  decoy_before=$(cd "$attacks/decoy" && find . -printf '%p %m %u %s\n' | sort && cat secret victims/file | sha256sum)
  : >"$work/attack-watch.log"
  chown "$web_user:" "$work/attack-watch.log"
  # The watcher: every scratch folder of the helper that the web user owns (where the helper used
  # to have Moodle write a component cache or the database password) gets its files and folders
  # swapped for symlinks into the decoy.
  as "$web_user" bash -c '
    log=$1 decoy=$2 stop=$3
    while [[ ! -e $stop ]]; do
      for folder in /tmp/moodle-delivery-*; do
        [[ -d $folder && -O $folder ]] || continue
        grep -qxF "found $folder" "$log" || echo "found $folder" >>"$log"
        for entry in "$folder"/* "$folder/cache.php"; do
          ln -sfn "$decoy/secret" "$entry.swap" 2>/dev/null && mv -fT "$entry.swap" "$entry" 2>/dev/null
        done
        ln -sfn "$decoy/victims" "$folder/sub" 2>/dev/null
      done
      sleep 0.002
    done' watcher "$work/attack-watch.log" "$attacks/decoy" "$work/attack-stop" &
  attack_watcher=$!
  pids+=("$attack_watcher")
  ok "the web user's watcher runs (pid $attack_watcher) against a root-only decoy"
}

attacks_trace_start() {
  local pid
  # The monitor (root): the engine and its children are there; the request side does no file work.
  pid=$(pgrep -u 0 -f -x "$deliveryd --config $tmp/deliveryd.json" | head -1)
  if [[ -z $pid ]]; then
    not_ok "deliveryd's pid not found for strace"
    return
  fi
  strace -f -y -qq -b execve -o "$attacks/trace.log" \
    -e trace=open,openat,openat2,unlink,unlinkat,rmdir,rename,renameat,renameat2,mkdir,mkdirat,chmod,fchmodat,chown,lchown,fchownat,symlink,symlinkat,link,linkat,utimensat,truncate \
    -p "$pid" 2>"$attacks/strace.err" &
  attack_strace=$!
  sleep 0.5
  ok "strace follows deliveryd (pid $pid) and its children until each runs its program"
}

attacks_trace_check() {
  section "Attacks: the paths the helper resolved (strace)"
  [[ -n ${attack_strace:-} ]] || return
  kill -INT "$attack_strace" 2>/dev/null
  wait "$attack_strace" 2>/dev/null
  local lines
  lines=$(wc -l <"$attacks/trace.log")
  if ((lines < 50)); then
    not_ok "the trace holds only $lines lines: it did not see the delivery"
    return
  fi
  local output status
  output=$(php "$attack_here/trace-check.php" "$attacks/trace.log" "$web_uid" "$dir/site/releases")
  status=$?
  echo "$output"
  passed=$((passed + $(grep -c '^ok - ' <<<"$output")))
  failed=$((failed + $(grep -c '^not ok - ' <<<"$output")))
  if ((status != 0)) && ! grep -q '^not ok - ' <<<"$output"; then not_ok "trace-check.php failed"; fi
}

attacks_check_caches() {
  section "Attacks: component caches and scratch folders"
  touch "$work/attack-stop"
  wait "$attack_watcher" 2>/dev/null
  local found
  found=$(grep -c '^found ' "$work/attack-watch.log" || true)
  if ((found == 0)); then
    ok "the web user's watcher found no folder of its own that the helper works in (0 in /tmp)"
  else
    not_ok "the web user's watcher found $found folders of its own that the helper works in: $(head -3 "$work/attack-watch.log" | tr '\n' ' ')"
  fi
  local secret tree cache count=0
  secret=$(cat "$attacks/decoy/secret")
  for tree in "$dir/site/releases/production" "$dir/site/releases"/.backup.? "$dir/site/releases"/.security.?; do
    cache=$tree/.delivery-component-cache.php
    [[ -e $cache ]] || continue
    count=$((count + 1))
    if [[ -f $cache && ! -L $cache ]] && grep -q "'uid' => $owner_uid," "$cache" && ! grep -qF "$secret" "$cache"; then
      ok "${tree#"$dir"/site/}: its component cache was built by the code owner (uid $owner_uid) and holds nothing of the decoy"
    else
      not_ok "${tree#"$dir"/site/}: its component cache was not built by the code owner or holds the decoy: $(head -c 300 "$cache")"
    fi
  done
  ((count >= 3)) && ok "$count trees carry a component cache" || not_ok "only $count trees carry a component cache"
  if grep -rqsF "$secret" "$dir/site/releases" "$dir/moodledata" "$dir/state" "$work"; then
    not_ok "the decoy's secret was copied somewhere the web user or the site can read"
  else
    ok "the decoy's secret is nowhere in the trees, the dataroot, the state or the web user's files"
  fi
  local decoy_after
  decoy_after=$(cd "$attacks/decoy" && find . -printf '%p %m %u %s\n' | sort && cat secret victims/file | sha256sum)
  check "the decoy folder is byte-identical afterwards" test "$decoy_before" = "$decoy_after"
}

attacks_terminal() {
  section "Attacks: a child of deliveryctl on root's terminal tries TIOCSTI"
  local hook=$dir/moodledata/muc/config.php log=$dir/moodledata/attack-tiocsti.log
  as "$web_user" mkdir -p "$dir/moodledata/muc"
  # The web user's PHP in the dataroot, run by every full bootstrap of Moodle's CLI: it pushes a
  # command into the terminal (TIOCSTI), through /dev/tty and through each standard descriptor.
  as "$web_user" tee "$hook" >/dev/null <<'PHP'
<?php
$perl = <<<'PERL'
for my $target ("/dev/tty", 0, 1, 2) {
    my $fh;
    if ($target eq "/dev/tty") { open($fh, "+<", "/dev/tty") or do { print "$target: $!\n"; next }; }
    else { open($fh, "+<&=", $target) or do { print "fd $target: $!\n"; next }; }
    my $done = 1;
    for my $c (split //, "touch /tmp/delivery-tiocsti-pwned\n") { ioctl($fh, 0x5412, $c) or do { $done = 0; print "$target: $!\n"; last }; }
    print "$target: INJECTED\n" if $done;
}
PERL;
file_put_contents(__DIR__ . '/../attack-tiocsti.log', shell_exec('perl -e ' . escapeshellarg($perl) . ' 2>&1') ?? "no perl\n", FILE_APPEND);
PHP
  rm -f /tmp/delivery-tiocsti-pwned
  # deliveryctl with a real terminal (script(1) gives it a pty), as an admin would run it: a restore
  # (after the flood's rollback) runs Moodle's CLI as the web user several times.
  script -qec "$deliveryctl restore --config $dir/etc/site.json" /dev/null >"$logs/attack-tiocsti-deliveryctl.log" 2>&1 </dev/null
  rm -f "$hook"
  if [[ ! -s $log ]]; then
    not_ok "the web user's PHP did not run under deliveryctl (no $log): the attack was not tried: $(tail -5 "$logs/attack-tiocsti-deliveryctl.log")"
  elif grep -q INJECTED "$log"; then
    not_ok "a child of deliveryctl pushed input into root's terminal: $(tr '\n' ' ' <"$log")"
  else
    ok "no child of deliveryctl can push input into root's terminal ($(sort -u "$log" | tr '\n' ';'))"
  fi
  check_fails "nothing typed into root's terminal ran" test -e /tmp/delivery-tiocsti-pwned
  rm -f "$log"
}

attacks_code_owner() {
  section "Attacks: the code owner plants symlinks where the helper works by path"
  local site=$dir/site
  check_fails "$code_owner cannot create .delivery-opcache in the site root" \
    as "$code_owner" ln -s "$attacks/decoy" "$site/.delivery-opcache-attack"
  check_fails "$code_owner cannot replace the OPcache folder by a symlink" \
    as "$code_owner" mv -T "$site/.delivery-opcache" "$site/.delivery-opcache-moved"
  check_fails "$code_owner cannot add an entry to releases/" as "$code_owner" ln -s "$attacks/decoy" "$site/releases/.staging-attack"
  check_fails "$code_owner cannot swap a copy generation" \
    as "$code_owner" mv -T "$site/releases/.backup.a" "$site/releases/.backup.x"
  check "the site root and releases/ are root's, writable by nobody else" \
    test "$(stat -c '%U %a' "$site" "$site/releases" | sort -u)" = "root 755"
}

attacks_flood() {
  section "Attacks: stalled connections and a flood of rollbacks (as $web_user)"
  local log=$logs/attack-flood.log
  (cd "$attack_here" && as "$web_user" php "$attack_here/flood.php" "$tmp/e2e.json" 8) 2>&1 | tee "$log"
  passed=$((passed + $(grep -c '^ok - ' "$log")))
  failed=$((failed + $(grep -c '^not ok - ' "$log")))
  grep -q '^ok - \|^not ok - ' "$log" || not_ok "flood.php printed no result"
}

attacks_request_side() {
  section "Attacks: a process of deliveryd's request user ($request_user) against the site and the monitor"
  local front production=$dir/site/releases/production
  front=$(pgrep -P "$monitor_pid" | head -1)
  check "the request side is not dumpable (its /proc entries are root's, not $request_user's)" \
    test "$(stat -c %U "/proc/$front/environ")" = root
  check_fails "$request_user cannot read the request side's memory map (the key is in its memory)" \
    as "$request_user" cat "/proc/$front/maps"
  check_fails "$request_user cannot read the request side's environment" as "$request_user" cat "/proc/$front/environ"
  check_fails "$request_user cannot read the audit log" as "$request_user" cat "$dir/state/audit.log"
  check_fails "$request_user cannot read the key file" as "$request_user" cat "$key"
  check_fails "$request_user cannot list the state directory" as "$request_user" ls "$dir/state"
  check_fails "$request_user cannot write into production" as "$request_user" touch "$production/attack.php"
  check_fails "$request_user cannot signal the monitor" as "$request_user" kill -0 "$monitor_pid"
  check "the monitor still runs, as root" test "$(stat -c %U "/proc/$monitor_pid")" = root
}
