#!/usr/bin/env bash
# Installs (or re-installs after a change) the tool_delivery plugin into a live Moodle's
# production tree as an admin would, then registers it and purges the caches.
#
# Usage (as root): Tests/EndToEnd/install_plugin.sh [PRODUCTION_TREE] [CODE_OWNER] [WEB_USER]
#   PRODUCTION_TREE  default /srv/moodle-real/moodle-delivery/releases/production
#   CODE_OWNER       default moodlecode (owns the code; the web user only reads it)
#   WEB_USER         default www-data (runs Moodle's CLI scripts)
# Environment: SOCKET=/run/moodle-delivery/deliveryd.sock KEYFILE=/etc/moodle-delivery/deliveryd.key
#   set the plugin's settings when given; NO_UPGRADE=1 skips upgrade.php (purges caches only).
#
# The plugin is copied to admin/tool/delivery (public/admin/tool/delivery on Moodle 5.1+), left
# untracked by git (listed in the working copy's .git/info/exclude), owned by the code owner,
# files 0644 and folders 0755.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=$(cd "$here/../../moodle-plugin" && pwd)
tree=${1:-/srv/moodle-real/moodle-delivery/releases/production}
owner=${2:-moodlecode}
web=${3:-www-data}

as() { local user=$1; shift; setpriv --reuid="$user" --regid="$user" --init-groups env HOME=/tmp "$@"; }

prefix=
[[ -f $tree/public/version.php ]] && prefix=public/
target=$tree/${prefix}admin/tool/delivery
install -d -o "$owner" -g "$owner" -m 0755 "$target"
rsync -rlt --delete --chown="$owner:$owner" --chmod=D0755,F0644 "$plugin/" "$target/"
if [[ -d $tree/.git ]]; then
  exclude=$tree/.git/info/exclude
  line="${prefix}admin/tool/delivery/"
  grep -qxF "$line" "$exclude" 2>/dev/null || echo "$line" >>"$exclude"
fi
echo "copied $plugin -> $target"

cd "$tree"
cli=${prefix}admin/cli
if [[ -z ${NO_UPGRADE:-} ]]; then
  as "$web" php "$cli/upgrade.php" --non-interactive
fi
[[ -n ${SOCKET:-} ]] && as "$web" php "$cli/cfg.php" --component=tool_delivery --name=socketpath --set="$SOCKET"
[[ -n ${KEYFILE:-} ]] && as "$web" php "$cli/cfg.php" --component=tool_delivery --name=keyfile --set="$KEYFILE"
as "$web" php "$cli/purge_caches.php"
echo "installed; caches purged"
