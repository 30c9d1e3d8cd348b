# Shared by the scripts (scripts/, bench/explore, Tests/Explore/explore). Source it; do not run it.

project_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Swift lives in /opt/swift on these machines; make sure it is on PATH.
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH=/opt/swift/usr/bin:$PATH
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# help_if_asked "$@": with -h or --help, prints the calling script's header comment (its usage)
# and exits 0 before the script does anything.
help_if_asked() {
  [[ ${1:-} == --help || ${1:-} == -h ]] || return 0
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
}

# install_packages PKG...: installs the Debian packages that are missing (as root, non-interactively).
install_packages() {
  local missing=()
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  if ((EUID != 0)); then
    echo "These Debian packages are missing: ${missing[*]}; run this script as root (or install them)." >&2
    exit 1
  fi
  say "Installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# install_server_packages PKG...: installs missing Debian packages that bring services (nginx,
# Apache, PHP-FPM) without starting them: the suites start their own, on their own ports. A
# policy-rc.d keeps the services from starting while apt runs, unless the machine has one already.
install_server_packages() {
  local package missing=0 policy=
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing=1
  done
  ((missing)) || return 0
  if ((EUID == 0)) && [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# moodle-delivery tests: no service starts while they install packages\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
  fi
  local status=0
  (install_packages "$@") || status=$?
  [[ -z $policy ]] || rm -f "$policy"
  return "$status"
}

# The packages the engine and its tests use: PHP CLI (Moodle's scripts), the three VCS, rsync (the
# copy benchmark and test reference), libfcgi (deliveryd), util-linux (setpriv).
engine_packages=(php-cli git subversion cvs rsync libfcgi-dev libfcgi-bin util-linux ca-certificates curl)

# The packages of the database tests: the servers that Tests/Database/servers starts (throwaway
# PostgreSQL and MariaDB, never the machine's own), their clients, and PHP's PDO drivers for the
# fixture site's database mode (php-pgsql, php-mysql: PHP's default version, 8.2 on Debian 12).
database_packages=(postgresql postgresql-client mariadb-server mariadb-client php-pgsql php-mysql)

# build_release: builds deliveryd, deliveryctl and delivery-copy from this project (release, the
# Swift runtime linked in) and sets release_bin to the folder that holds them. A static Swift
# runtime: no libswift*.so to keep in step with the programs, a faster start and about 4 MiB less
# resident memory. lld comes with the toolchain (the system's gold prints warnings about glibc
# calls inside the static Foundation library). Linked with full RELRO (-z relro -z now): the
# tables of functions to call are read-only once the program has started.
build_release() {
  require_swift
  say "Building deliveryd, deliveryctl and delivery-copy (release, the Swift runtime linked in)"
  local flags=(-c release --static-swift-stdlib -Xswiftc -use-ld=lld -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now) product
  # The copies are made by delivery-copy, run as the code owner; it must sit beside the other two.
  for product in deliveryd deliveryctl delivery-copy; do
    (cd "$project_root" && swift build "${flags[@]}" --product "$product" 2>&1) | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
  done
  release_bin=$(cd "$project_root" && swift build "${flags[@]}" --show-bin-path)
}

# product_version: the programs' version (ProductVersion.number), the package's too.
product_version() {
  sed -n 's/^ *public static let number = "\([0-9.]*\)".*/\1/p' "$project_root/Sources/DeliveryCore/ProductVersion.swift"
}

require_swift() {
  command -v swift >/dev/null 2>&1 || {
    echo "Swift 6 is needed (swift not found on PATH nor in /opt/swift)." >&2
    exit 1
  }
}
