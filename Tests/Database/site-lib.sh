# The fixture sites of the database suites (sourced by Tests/Database/database.sh and
# Tests/Explore/explore): a free port, the router of PHP's built-in web server, and `site`, which
# builds a fixture site on a database server started by Tests/Database/servers, adopts it with
# deliveryctl and serves it. Needs: tmp, make_site, deliveryctl, web_user, web_pids (an array).

free_port() {
  php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'
}

# The web server: PHP's built-in one with a router that resolves the adopted symlink at every
# request, so that a switch of `current` shows at once (as nginx's $realpath_root does).
cat > "$tmp/router.php" <<'PHP'
<?php
// Test router: serves the file under FIXTURE_ROOT (a symlink to the served tree) by its real path.
$root = getenv('FIXTURE_ROOT');
// This server lives across switches: forget the symlinks it resolved (PHP caches them for minutes).
clearstatcache(true);
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = realpath($root . $path);
if ($file !== false && is_dir($file)) {
    $file = realpath($file . '/index.php');
}
if ($file === false || substr($file, -4) !== '.php') {
    http_response_code(404);
    echo "not found\n";
    return true;
}
chdir(dirname($file));
$_SERVER['SCRIPT_FILENAME'] = $file;
require $file;
PHP

# site NAME TYPE [deliveryctl init options…]: builds a fixture site on the TYPE server, served on a
# port of its own, adopted by deliveryctl; sets dir, url and exports DELIVERY_CONFIG. The code
# belongs to $CODE_OWNER when it is set (a real site's layout), else to root.
site() {
  local name=$1 type=$2 port
  shift 2
  dir=$tmp/$name
  port=$(free_port)
  url=http://127.0.0.1:$port
  # shellcheck disable=SC1090
  source "$tmp/servers/$type/env"
  bash "$make_site" --vcs git --dir "$dir" --wwwroot "$url" --database "$type" --dbhost "$DBHOST" \
    --dbport "$DBPORT" --dbname "$DBNAME" --dbuser "$DBUSER" --dbpass "$DBPASS" >"$tmp/$name-make.log" 2>&1 ||
    { cat "$tmp/$name-make.log"; return 1; }
  chown -R "$web_user:" "$dir/moodledata"
  [[ -z ${CODE_OWNER:-} ]] || chown -R "$CODE_OWNER:" "$dir/upstream" "$dir/author" "$dir/moodle" "$dir/revision2"
  mkdir -p "$dir/etc"
  "$deliveryctl" init --moodle "$dir/moodle" --site-root "$dir/site" --state-dir "$dir/state" \
    --config "$dir/etc/site.json" --web-user "$web_user" --code-owner "${CODE_OWNER:-root}" \
    --php-fpm-socket "$dir/no-fpm.sock" "$@" >"$tmp/$name-init.log" 2>&1 || { cat "$tmp/$name-init.log"; return 1; }
  export DELIVERY_CONFIG=$dir/etc/site.json
  FIXTURE_ROOT=$dir/moodle setpriv --reuid="$web_user" --regid="$(id -g "$web_user")" --init-groups \
    php -d opcache.enable=0 -S "127.0.0.1:$port" -t "$tmp" "$tmp/router.php" >"$tmp/$name-web.log" 2>&1 &
  web_pids+=($!)
  for _ in $(seq 50); do curl -s -o /dev/null "$url/" && break; sleep 0.1; done
}
