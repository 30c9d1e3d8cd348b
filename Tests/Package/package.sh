#!/usr/bin/env bash
# The Debian package: scripts/package builds it (and a second build of the same code, a later
# version); lintian checks it; then it is installed into a clean Debian 12 made by debootstrap (a
# chroot of its own: no Swift toolchain, PHP and git from Debian), where a Moodle-shaped FIXTURE
# site is adopted with moodle-delivery-setup and delivered (run-all); the second build is installed
# over the running helper (refused while an operation runs with no time to wait, waiting for it
# otherwise), then the package is removed and purged: the site keeps serving, its state and
# configuration stay, nothing under its site root changes. As root, with a Debian mirror reachable
# (the one the machine's apt uses). Ends with "package: N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
source "$project/scripts/lib/common.sh"
work=$(mktemp -d /var/tmp/delivery-package-XXXXXX)  # KEEP=1: left for a look afterwards
chmod 755 "$work"
chroot_dir=$work/debian
log=$work/commands.log
passed=0
failed=0
check() {
  local what=$1
  shift
  echo "--- $what" >>"$log"
  if "$@" >>"$log" 2>&1; then passed=$((passed + 1)); echo "ok: $what"; else failed=$((failed + 1)); echo "FAILED: $what"; fi
}
# in_debian COMMAND…: runs a command inside the chroot, as root, with a plain environment.
in_debian() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
export -f in_debian
export chroot_dir
# The processes whose root is the chroot (the helper, its request side, a web server of the test).
chroot_processes() {
  local proc
  for proc in /proc/[0-9]*; do
    [[ $(readlink "$proc/root" 2>/dev/null) == "$chroot_dir" ]] && echo "${proc#/proc/}"
  done
  return 0
}
cleanup() {
  local pids
  pids=$(chroot_processes)
  [[ -n $pids ]] && kill $pids 2>/dev/null && sleep 1
  pids=$(chroot_processes)
  [[ -n $pids ]] && kill -9 $pids 2>/dev/null
  for mount in proc dev; do mountpoint -q "$chroot_dir/$mount" && umount -l "$chroot_dir/$mount"; done
  ((failed)) && tail -60 "$log"
  # Never remove through a mount that is still there.
  if [[ -n ${KEEP:-} ]]; then echo "(left in $work)"; elif [[ -z $(findmnt -rn -o TARGET | grep -F "$chroot_dir/") ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
: >"$log"

install_packages debootstrap lintian dpkg-dev binutils

# --- The package ------------------------------------------------------------------------------
check "scripts/package builds the package" bash -c "'$project/scripts/package' --out '$work/dist' >'$work/package.log' 2>&1"
check "… and a later build of the same code (+ci2)" \
  bash -c "'$project/scripts/package' --out '$work/dist' --build-suffix ci2 >'$work/package2.log' 2>&1"
version=$(product_version)
deb=$work/dist/moodle-delivery_${version}_amd64.deb
deb2=$work/dist/moodle-delivery_${version}+ci2_amd64.deb
[[ -f $deb && -f $deb2 ]] || { echo "package: $passed passed, $((failed + 1)) failed"; exit 1; }
echo "  $(tail -1 "$work/package.log")"
field() { dpkg-deb -f "$deb" "$1"; }
check "its name, version and architecture" test "$(field Package) $(field Version) $(field Architecture)" = "moodle-delivery $version amd64"
check "it depends on libfcgi (from the programs' links), git, php-cli and curl" \
  bash -c "grep -q 'libfcgi0ldbl' <<<'$(field Depends)' && grep -q 'libc6 (>= ' <<<'$(field Depends)' && grep -qE '(^|, )git(,|$)' <<<'$(field Depends)' && grep -q 'php-cli' <<<'$(field Depends)' && grep -q 'curl' <<<'$(field Depends)'"
check "it recommends a database client and suggests subversion and cvs" \
  bash -c "grep -q 'postgresql-client | mariadb-client' <<<'$(field Recommends)' && grep -q 'subversion' <<<'$(field Suggests)' && grep -q 'cvs' <<<'$(field Suggests)'"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$work/contents.txt"
for path in /usr/bin/deliveryd /usr/bin/deliveryctl /usr/bin/delivery-copy /usr/sbin/moodle-delivery-setup \
  /usr/share/moodle-delivery/moodle-plugin/version.php /usr/share/moodle-delivery/deploy/deliveryd.service \
  /usr/share/man/man8/deliveryctl.8.gz /usr/share/man/man8/deliveryd.8.gz /usr/share/man/man8/moodle-delivery-setup.8.gz \
  /usr/share/doc/moodle-delivery/copyright /usr/share/doc/moodle-delivery/changelog.gz /etc/moodle-delivery/nginx-console.conf; do
  check "it holds $path" grep -qxF "$path" "$work/contents.txt"
done
check "nothing in /usr/local, /opt or /srv" bash -c "! grep -qE '^/(usr/local|opt|srv)/' '$work/contents.txt'"
check "the console snippets are conffiles" \
  bash -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | sort | tr '\n' ' ' | grep -qx '/etc/moodle-delivery/apache-console.conf /etc/moodle-delivery/nginx-console.conf '"
check "the man page of deliveryctl is generated from its help: it lists run-all" \
  bash -c "dpkg-deb --fsys-tarfile '$deb' | tar -xO ./usr/share/man/man8/deliveryctl.8.gz | gunzip | grep -q 'run-all'"

# lintian: no error and no warning; the tags the package overrides say why, in the package.
lintian --fail-on error,warning --display-level '>=warning' "$deb" >"$work/lintian.log" 2>&1
status=$?
check "lintian finds no error and no warning ($(grep -c . "$work/lintian.log") lines)" test "$status" = 0
sed 's/^/  lintian: /' "$work/lintian.log" | head -20

# --- A clean Debian 12, without the toolchain ---------------------------------------------------
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[[ -n $mirror ]] || mirror=$(sed -n 's/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
started=$SECONDS
check "debootstrap makes a clean Debian 12 (minbase, from $mirror)" \
  bash -c "debootstrap --variant=minbase bookworm '$chroot_dir' '$mirror' >'$work/debootstrap.log' 2>&1"
echo "  (debootstrap: $((SECONDS - started)) s)"
[[ -x $chroot_dir/usr/bin/apt-get ]] || { echo "package: $passed passed, $((failed + 1)) failed"; exit 1; }
mountpoint -q "$chroot_dir/proc" || mount -t proc proc "$chroot_dir/proc"
mount --bind /dev "$chroot_dir/dev"
# No service starts while packages install there (none of ours is a service; PHP's may be).
printf '#!/bin/sh\nexit 101\n' >"$chroot_dir/usr/sbin/policy-rc.d"
chmod 755 "$chroot_dir/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null || true
check "no Swift there" bash -c "! in_debian sh -c 'command -v swift' && [[ ! -e $chroot_dir/opt/swift ]]"
cp "$deb" "$deb2" "$chroot_dir/tmp/"
in_debian apt-get update -qq >>"$log" 2>&1
started=$SECONDS
check "apt install ./moodle-delivery_${version}_amd64.deb (its dependencies from Debian)" \
  bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '/tmp/$(basename "$deb")' >'$work/install.log' 2>&1"
echo "  (install with its dependencies: $((SECONDS - started)) s)"
check "dpkg knows its files: dpkg -S /usr/bin/deliveryd" bash -c "in_debian dpkg -S /usr/bin/deliveryd | grep -q '^moodle-delivery: '"
check "deliveryd --version prints $version" test "$(in_debian deliveryd --version)" = "$version"
check "deliveryctl --help answers" bash -c "in_debian deliveryctl --help | grep -q 'USAGE: deliveryctl'"
check "postinst made the request user and nothing site-specific" \
  bash -c "in_debian id moodle-delivery && [[ ! -e $chroot_dir/etc/moodle-delivery/sites ]] && [[ -z \$(ls -A $chroot_dir/var/lib/moodle-delivery) ]]"

# --- A fixture site adopted and delivered -------------------------------------------------------
mkdir -p "$chroot_dir/opt/fixture"
cp "$project/Tests/Fixture/make-site" "$chroot_dir/opt/fixture/"
# The fixture's upstream is root's and the code owner reads it: a test chroot lets git read any
# repository (a real site gives the code owner its own read access, as setup's warning says).
in_debian git config --system --add safe.directory '*'
check "a fixture site (git) in the chroot" in_debian bash /opt/fixture/make-site --vcs git --dir /srv/fx
in_debian chown -R www-data: /srv/fx/moodledata
chmod 2770 "$chroot_dir/srv/fx/moodledata"
in_debian chown root:www-data /srv/fx/moodle/config.php
chmod 0640 "$chroot_dir/srv/fx/moodle/config.php"
check "moodle-delivery-setup --moodle /srv/fx/moodle --site school adopts it" \
  bash -c "in_debian moodle-delivery-setup --moodle /srv/fx/moodle --site school --no-database-snapshot --health-check off >'$work/setup.log' 2>&1"
check "… and says what to change in the web server" grep -q 'The one web server change to make' "$work/setup.log"
helper=$(tr -cd '0-9' <"$chroot_dir/run/deliveryd/school/deliveryd.pid" 2>/dev/null)
check "its helper runs (pid ${helper:-none}), /usr/bin/deliveryd, with its socket" \
  bash -c "[[ -n '$helper' && \$(readlink /proc/$helper/exe) == $chroot_dir/usr/bin/deliveryd && -S $chroot_dir/run/deliveryd/school/deliveryd.sock ]]"
check "the plugin is in production, from /usr/share/moodle-delivery" \
  cmp "$chroot_dir/usr/share/moodle-delivery/moodle-plugin/version.php" "$chroot_dir/srv/fx/moodle-delivery/releases/production/admin/tool/delivery/version.php"

# The systemd units the setup writes where systemd runs (for this site, this package's programs).
if command -v systemd-analyze >/dev/null; then
  source "$project/scripts/lib/helpers.sh"
  mkdir -p "$work/units"
  (bindir=$chroot_dir/usr/bin project_root=$chroot_dir/usr/share/moodle-delivery
    write_units "$work/units" deliveryd-school school /srv/fx/moodle-delivery /var/lib/moodle-delivery /srv/fx/moodledata \
      /etc/moodle-delivery/sites/school/deliveryd.json /run/deliveryd/school/deliveryd.sock www-data)
  check "systemd-analyze verify accepts the site's units as the setup writes them" \
    systemd-analyze verify "$work/units/deliveryd-school.socket" "$work/units/deliveryd-school.service"
else
  echo "  (no systemd-analyze on this machine: the units are not verified)"
fi

# serves: what the site's front page answers through PHP's web server, run as www-data in the chroot.
port=$((20000 + RANDOM % 20000))
serves() {
  in_debian setpriv --reuid=www-data --regid=www-data --init-groups php -S "127.0.0.1:$port" -t /srv/fx/moodle >/dev/null 2>&1 &
  local server=$! answer=
  for _ in $(seq 50); do answer=$(curl -s "http://127.0.0.1:$port/index.php") && [[ -n $answer ]] && break; sleep 0.1; done
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  echo "the site answered: $answer" >>"$log"
  echo "$answer"
}
check "the site serves revision 1 from production" test "$(serves)" = "fixture-site version=2024100700 tree=production"
check "revision 2 published upstream" in_debian bash /srv/fx/revision2
check "deliveryctl run-all --site school delivers it" bash -c "in_debian deliveryctl run-all --site school >'$work/run-all.log' 2>&1"
check "… the site serves revision 2 from production" test "$(serves)" = "fixture-site version=2024100800 tree=production"

# --- Upgrade over a running helper --------------------------------------------------------------
# An operation under way (Moodle's upgrade made slow by the fixture): an upgrade that may not wait
# is refused, changing nothing; one that may waits for it, then restarts the helper.
check "revision 3 published upstream (a new core version: Moodle's upgrade runs)" \
  in_debian bash -c "cd /srv/fx/author && sed -i 's/2024100800.00/2024100900.00/' version.php && git -c user.name=fixture -c user.email=fixture@example.invalid commit -qam 'revision 3' && git push -q origin main"
echo 12 >"$chroot_dir/srv/fx/moodledata/fixture-slow-upgrade"
in_debian deliveryctl run-all --site school >"$work/run-all-3.log" 2>&1 &
delivering=$!
running=no
for _ in $(seq 200); do
  if in_debian deliveryctl status --site school --json 2>/dev/null | grep -q '"running"'; then running=yes; break; fi
  sleep 0.1
done
check "a run-all of revision 3 is under way" test "$running" = yes
check "apt install of the later build, with no time to wait, is refused" \
  bash -c "! in_debian env DEBIAN_FRONTEND=noninteractive MOODLE_DELIVERY_WAIT=0 apt-get install -y -qq /tmp/$(basename "$deb2") >'$work/refused.log' 2>&1 && grep -q 'an operation is under way on site(s) school' '$work/refused.log'"
check "… changing nothing: the package is still $version, the same helper runs" \
  bash -c "[[ \$(in_debian dpkg-query -W -f='\${Version}' moodle-delivery) == '$version' && \$(tr -cd '0-9' <$chroot_dir/run/deliveryd/school/deliveryd.pid) == '$helper' ]] && kill -0 $helper"
started=$SECONDS
check "apt install of the later build waits for the operation, then upgrades" \
  bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/$(basename "$deb2") >'$work/upgrade.log' 2>&1"
echo "  (the upgrade took $((SECONDS - started)) s, waiting for the delivery)"
check "… it ended after the delivery had ended" bash -c "! kill -0 $delivering 2>/dev/null"
wait "$delivering"
check "… the delivery it waited for completed" test "$?" = 0
rm -f "$chroot_dir/srv/fx/moodledata/fixture-slow-upgrade"
check "the package is now ${version}+ci2" test "$(in_debian dpkg-query -W -f='${Version}' moodle-delivery)" = "${version}+ci2"
new_helper=$(tr -cd '0-9' <"$chroot_dir/run/deliveryd/school/deliveryd.pid" 2>/dev/null)
check "the helper was restarted on the new programs (pid $helper → ${new_helper:-none})" \
  bash -c "[[ -n '$new_helper' && '$new_helper' != '$helper' && \$(readlink /proc/$new_helper/exe) == $chroot_dir/usr/bin/deliveryd ]] && ! kill -0 $helper 2>/dev/null"
check "the state survived: the audit log holds both deliveries" \
  bash -c "[[ \$(in_debian deliveryctl log --site school --json --limit 50 | grep -o '\"operation\" *: *\"run-all\"' | wc -l) -ge 2 ]]"
check "the site serves revision 3 from production" test "$(serves)" = "fixture-site version=2024100900 tree=production"

# --- Removal and purge ---------------------------------------------------------------------------
site_files() { (cd "$chroot_dir/srv/fx" && find moodle moodle-delivery -printf '%p %u %g %m %s %l\n' | sort); }
export -f site_files
site_files >"$work/site-before.txt"
check "apt remove moodle-delivery" bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq moodle-delivery >'$work/remove.log' 2>&1"
check "… its helper stopped, its programs are gone" \
  bash -c "! kill -0 $new_helper 2>/dev/null && [[ ! -e $chroot_dir/usr/bin/deliveryd ]]"
check "… the site's configuration stays" test -f "$chroot_dir/etc/moodle-delivery/sites/school/site.json"
check "… the site still serves revision 3" test "$(serves)" = "fixture-site version=2024100900 tree=production"
check "installing the package again starts the helper its removal stopped" \
  bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/$(basename "$deb2") >'$work/reinstall.log' 2>&1"
again=$(tr -cd '0-9' <"$chroot_dir/run/deliveryd/school/deliveryd.pid" 2>/dev/null)
check "… (pid ${again:-none}, /usr/bin/deliveryd)" \
  bash -c "[[ -n '$again' && '$again' != '$new_helper' && \$(readlink /proc/$again/exe) == $chroot_dir/usr/bin/deliveryd ]]"
check "apt remove moodle-delivery again" \
  bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq moodle-delivery >>'$work/remove.log' 2>&1 && ! kill -0 $again 2>/dev/null"
check "apt purge moodle-delivery says what it leaves of the site" \
  bash -c "in_debian env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq moodle-delivery >'$work/purge.log' 2>&1 && grep -q 'the site adopted from /srv/fx/moodle is left as it is' '$work/purge.log' && grep -q 'remove /srv/fx/moodle-delivery (the backup and security copies)' '$work/purge.log'"
check "… nothing under the site root changed through remove and purge" bash -c "diff <(site_files) '$work/site-before.txt'"
check "… its state and configuration stay; the package's conffiles are gone" \
  bash -c "[[ -f $chroot_dir/etc/moodle-delivery/sites/school/site.json && -d $chroot_dir/var/lib/moodle-delivery/school && ! -e $chroot_dir/etc/moodle-delivery/nginx-console.conf ]]"
check "… the site still serves revision 3" test "$(serves)" = "fixture-site version=2024100900 tree=production"

echo "package: $passed passed, $failed failed"
((failed == 0))
