<?php
// The invariants of issue 13, in one place: what every operation must leave true, whichever suite
// runs it. Tests/Explore/explore.php requires this file; the other suites run it as a command
// around each deliveryctl call:
//
//   php Tests/Support/invariants.php before FILE                  what the world is before the call
//   php Tests/Support/invariants.php after FILE STATUS OUTPUTFILE ARG…
//                                                                 one line per broken invariant, exit 1
//
// It reads the site from the environment: DELIVERYCTL, WEB_USER, SITE_DIR (the fixture's folder,
// with site/ and state/), ADMIN_CMD (SQL as the database server's superuser, in DBNAME), DBTYPE
// (pgsql or mariadb; pgsql when unset) and README (whose generated States table says what each
// operation leaves).

/**
 * Runs a command (no shell); returns its output (standard output and error) and sets $status.
 */
function run(array $command, array $env = [], ?int &$status = null): string {
    $descriptors = [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]];
    $process = proc_open($command, $descriptors, $pipes, null, $env + getenv());
    if ($process === false) {
        $status = 127;
        return '';
    }
    $output = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    $status = proc_close($process);
    return $output;
}

/** Runs SQL as the server's superuser; in another database with $database. */
function sql(string $query, ?string $database = null): string {
    $admin = getenv('ADMIN_CMD');
    $command = $database === null ? [$admin, $query] : [$admin, '--database', $database, $query];
    $output = run($command, [], $status);
    if ($status !== 0) {
        throw new RuntimeException("SQL failed ($query): $output");
    }
    return trim($output);
}

/** The fixture database's version and its number of tables. */
function database_digest(): string {
    $schema = getenv('DBTYPE') === 'mariadb' ? 'DATABASE()' : 'current_schema()';
    return sql("SELECT value FROM mdl_config WHERE name = 'version'") . ' ' .
        sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = $schema");
}

/** Whether Moodle says the code of $tree is ahead of the database (upgrade.php --is-pending). */
function pending(string $tree): ?bool {
    global $lastpending;
    $webuser = getenv('WEB_USER');
    if (!is_file("$tree/admin/cli/upgrade.php")) {
        return null;
    }
    $lastpending = run(['setpriv', "--reuid=$webuser", "--regid=$webuser", '--init-groups', 'php',
        "$tree/admin/cli/upgrade.php", '--is-pending'], [], $status);
    $lastpending = "exit $status: " . trim($lastpending);
    return $status === 2 ? true : ($status === 0 ? false : null);
}

/** The revision of a tree's git working copy (7 characters), or null. */
function head(string $tree): ?string {
    $output = run(['git', '-C', $tree, 'rev-parse', '--short=7', 'HEAD'], [], $status);
    return $status === 0 ? trim($output) : null;
}

/** A digest of everything below $root: names, kinds, modes, link targets and file contents. */
function tree_digest(string $root, array $skip = []): array {
    $result = [];
    if (!file_exists($root) && !is_link($root)) {
        return $result;
    }
    $iterator = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::SELF_FIRST);
    foreach ($iterator as $path => $info) {
        $relative = substr($path, strlen($root) + 1);
        foreach ($skip as $pattern) {
            if (fnmatch($pattern, $relative)) {
                continue 2;
            }
        }
        if ($info->isLink()) {
            $result[$relative] = 'link ' . readlink($path);
        } else if ($info->isDir()) {
            $result[$relative] = sprintf('dir %o', $info->getPerms() & 07777);
        } else {
            $result[$relative] = sprintf('file %o %s', $info->getPerms() & 07777, md5_file($path));
        }
    }
    ksort($result);
    return $result;
}

/** The names whose entries differ between two tree digests. */
function tree_differences(array $a, array $b): array {
    return array_keys(array_diff_assoc($a, $b) + array_diff_assoc($b, $a));
}

/**
 * What is on disk and in the database that a refused operation must leave alone. Left out: what
 * reading the upstream writes in git's own store (objects, the watch's ref refs/delivery/upstream,
 * FETCH_HEAD), which changes no tree (docs/protocol.md, *Upstream watch*): a refusal may have to
 * fetch to know it must refuse (rehearse: nothing waits upstream).
 */
function world_digest(): string {
    $dir = getenv('SITE_DIR');
    clearstatcache(true);
    $parts = tree_digest("$dir/site", ['*/.git/index', '*/.git/*.lock', '*/.git/objects/*', '*/.git/refs/delivery',
        '*/.git/refs/delivery/*', '*/.git/FETCH_HEAD']);
    $state = tree_digest("$dir/state", ['audit.log', 'delivery.lock']);
    $parts += array_combine(array_map(fn($k) => "state/$k", array_keys($state)), $state);
    $parts['database'] = database_digest();
    return md5(json_encode($parts));
}

/** The copies' bytes (their VCS metadata left out), tree by tree. */
function copies_digest(): array {
    $dir = getenv('SITE_DIR');
    clearstatcache(true);
    $copies = [];
    foreach (['backup', 'security'] as $tree) {
        $path = realpath("$dir/site/releases/$tree");
        $copies[$tree] = $path ? md5(json_encode(tree_digest($path, ['.git', '.git/*', '.svn', '.svn/*', 'CVS']))) : null;
    }
    return $copies;
}

/** What the checks look at around each operation. */
function observe(): array {
    $dir = getenv('SITE_DIR');
    $json = run([getenv('DELIVERYCTL'), 'status', '--json'], [], $status);
    $site = json_decode($json, true);
    // PHP caches what realpath and stat found: the helper has switched links since.
    clearstatcache(true);
    $served = realpath("$dir/site/current") ?: null;
    return [
        'statusOk' => $status === 0 && is_array($site),
        'site' => is_array($site) ? $site : [],
        'servedPath' => $served,
        'productionHead' => head("$dir/site/releases/production"),
        'servedHead' => $served ? head($served) : null,
        'database' => sql("SELECT value FROM mdl_config WHERE name = 'version'"),
        'pendingServed' => $served ? pending($served) : null,
    ];
}

/** The state machine's promised phase after a success, from the README's generated table. */
function leaves_table(string $readme): array {
    $text = file_get_contents($readme);
    $start = strpos($text, '<!-- states:begin');
    $end = strpos($text, '<!-- states:end -->');
    $table = [];
    $phases = ['idle', 'secured', 'delivering', 'updated', 'restoring', 'rolled_back'];
    foreach (explode("\n", substr($text, $start, $end - $start)) as $line) {
        if (!preg_match('/^\| \*\*([a-z-]+)\*\* \| (.*?) \| .*? \| `([a-z_]+)` \|/', $line, $m)) {
            continue;
        }
        $from = $m[2] === 'any' ? $phases : array_map(fn($p) => trim($p, ' `'), explode(',', $m[2]));
        foreach ($from as $phase) {
            $table[$m[1]][$phase] = $m[3];
        }
    }
    return $table;
}

/**
 * The invariants after one operation; each violation one sentence.
 *
 * $before and $after come from observe(), with 'world' (world_digest) and 'copies' (copies_digest)
 * added to $before; $status is the operation's exit status, $output what it printed.
 */
function violations(string $operation, array $before, array $after, int $status, string $output): array {
    global $lastpending;
    $dir = getenv('SITE_DIR');
    static $leaves = null;
    $leaves ??= leaves_table(getenv('README'));
    $found = [];
    $site = $after['site'];
    $phase = $site['phase'] ?? null;
    if (!$after['statusOk']) {
        return ['status --json failed afterwards'];
    }
    if (!in_array($status, [0, 1, 2], true)) {
        $found[] = "exit status $status";
    }
    // The served tree is complete.
    $served = $site['served'] ?? null;
    if ($after['servedPath'] === null || !is_file($after['servedPath'] . '/version.php')) {
        $found[] = 'the served tree is missing or incomplete';
    } else if ($served !== 'production' && !($site['copies'][$served]['complete'] ?? false)) {
        $found[] = "the served copy ($served) is not recorded complete";
    }
    // Outside a delivery, and after a rollback, the served code matches the database, or the site
    // says why: maintenance mode on (a rollback whose database part is still to run, say).
    if (in_array($phase, ['idle', 'secured', 'rolled_back'], true) && !isset($site['running'])
            && $after['pendingServed'] !== false && !($site['maintenanceEnabled'] ?? false)) {
        $found[] = "state '$phase' serves $served, whose code " .
            ($after['pendingServed'] ? 'is ahead of the database (upgrade pending)' : 'cannot say whether it matches the database');
    }
    // The state machine's promise.
    $from = $before['site']['phase'] ?? '';
    if ($status === 0 && isset($leaves[$operation][$from]) && $leaves[$operation][$from] !== $phase) {
        $found[] = "succeeded from '$from' but left '$phase', not '{$leaves[$operation][$from]}' as the state machine says";
    }
    // A refusal changes nothing.
    if ($status === 2 && isset($before['world']) && world_digest() !== $before['world']) {
        $found[] = 'refused (exit 2) but changed the site, the state or the database';
    }
    if ($operation === 'cancel' && $status === 0) {
        $found = array_merge($found, cancel_violations($before, $after));
    }
    // A rollback target always matches the database (or the rollback restores the snapshot).
    $target = $site['rollback']['target'] ?? null;
    if ($target && ($site['rollback']['kind'] ?? '') === 'code' && !isset($site['running'])) {
        clearstatcache(true);
        $tree = realpath("$dir/site/releases/$target");
        if ($tree && pending($tree) !== false) {
            $found[] = "the rollback target ($target) does not match the database and no snapshot restore is planned (upgrade.php --is-pending in $tree: $lastpending)";
        }
    }
    // What it said is true of the state it left.
    if (stripos($output, 'nothing else to do') !== false && $after['pendingServed'] !== false) {
        $found[] = "said 'nothing else to do' while the served code does not match the database";
    }
    return $found;
}

/** Cancel returns production, the served tree and the copies to the pre-delivery revision and bytes. */
function cancel_violations(array $before, array $after): array {
    $dir = getenv('SITE_DIR');
    $found = [];
    $site = $after['site'];
    $wanted = substr($before['site']['revisionBeforeDelivery']['id'] ?? '', 0, 7);
    if (($site['served'] ?? null) !== 'production') {
        $found[] = "cancel succeeded but serves {$site['served']}";
    }
    if ($wanted !== '' && $after['productionHead'] !== $wanted && $after['productionHead'] !== ($before['servedHead'] ?? null)) {
        $found[] = "cancel left production at {$after['productionHead']}, not the pre-delivery $wanted";
    }
    // Byte for byte the copy it went back to (the backup, when at that revision).
    clearstatcache(true);
    $backup = realpath("$dir/site/releases/backup");
    $backupRevision = substr($site['copies']['backup']['revision']['id'] ?? '', 0, 7);
    if ($backup && $backupRevision === $after['productionHead']) {
        $skip = ['.git', '.git/*'];
        $differ = tree_differences(tree_digest("$dir/site/releases/production", $skip), tree_digest($backup, $skip));
        if ($differ) {
            $found[] = 'cancel left production different from the backup copy of the same revision: ' .
                implode(', ', array_slice($differ, 0, 5));
        }
    }
    $dirty = trim(run(['git', '-C', "$dir/site/releases/production", 'status', '--porcelain', '--untracked-files=no']));
    if ($dirty !== '') {
        $found[] = "cancel left production with local changes: $dirty";
    }
    // The copies are the pre-delivery trees: cancel leaves their bytes and revisions as they were.
    if (isset($before['copies'])) {
        foreach (copies_digest() as $tree => $digest) {
            if ($digest !== $before['copies'][$tree]) {
                $found[] = "cancel changed the $tree copy's bytes";
            }
            $was = $before['site']['copies'][$tree]['revision']['id'] ?? null;
            $is = $site['copies'][$tree]['revision']['id'] ?? null;
            if ($was !== $is) {
                $found[] = "cancel changed the $tree copy's recorded revision ($was → $is)";
            }
        }
    }
    return $found;
}

/** What a check needs from before an operation. */
function before_operation(): array {
    return observe() + ['world' => world_digest(), 'copies' => copies_digest()];
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $mode = $argv[1] ?? '';
    if ($mode === 'before' && isset($argv[2])) {
        file_put_contents($argv[2], json_encode(before_operation()));
        exit(0);
    }
    if ($mode === 'after' && isset($argv[5])) {
        $before = json_decode(file_get_contents($argv[2]), true);
        $operation = $argv[5];
        $found = violations($operation, $before, observe(), (int) $argv[3], file_get_contents($argv[4]));
        foreach ($found as $violation) {
            echo "invariant broken after deliveryctl ", implode(' ', array_slice($argv, 5)), ": $violation\n";
        }
        exit($found ? 1 : 0);
    }
    fwrite(STDERR, "usage: invariants.php before FILE | after FILE STATUS OUTPUTFILE OPERATION [ARG…]\n");
    exit(2);
}
