<?php
// The exploration walk of tests/explore/explore (which makes the site and the database first).
//
// Breadth first from the fixture site's first state: every operation (and every interruption:
// kill -9 of deliveryctl at a step boundary or inside a step, then `recover`) is tried from every
// state seen, on real files, real git and the real PostgreSQL database; a state already seen is
// not explored again. The world (the site's folder and its database) is saved once per new state
// and put back before each try. After every try the invariants are checked; a violation is
// printed with the shortest sequence that leads to it.
//
// State = phase, tree served, production's revision, the served tree's revision, the database
// version, the copies (complete, revision), an interrupted operation, maintenance mode.

$options = getopt('', ['work:', 'depth:', 'no-interruptions']);
$depth = (int) ($options['depth'] ?? 2);
$work = $options['work'] ?? exit("--work is needed\n");
$interruptions = !isset($options['no-interruptions']);
$ctl = getenv('DELIVERYCTL');
$webuser = getenv('WEB_USER');
$dir = getenv('SITE_DIR');
$admin = getenv('ADMIN_CMD');
$dbname = getenv('DBNAME');
$dbuser = getenv('DBUSER');
$readme = getenv('README');
@mkdir($work, 0700, true);

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
    global $admin;
    $command = $database === null ? [$admin, $query] : [$admin, '--database', $database, $query];
    $output = run($command, [], $status);
    if ($status !== 0) {
        throw new RuntimeException("SQL failed ($query): $output");
    }
    return trim($output);
}

/** Whether Moodle says the code of $tree is ahead of the database (upgrade.php --is-pending). */
function pending(string $tree): ?bool {
    global $webuser;
    if (!is_file("$tree/admin/cli/upgrade.php")) {
        return null;
    }
    global $lastpending;
    $lastpending = run(['setpriv', "--reuid=$webuser", "--regid=$webuser", '--init-groups', 'php',
        "$tree/admin/cli/upgrade.php", '--is-pending'], [], $status);
    $lastpending = "exit $status: " . trim($lastpending);
    return $status === 2 ? true : ($status === 0 ? false : null);
}

/** The revision of a tree's git working copy, or null. */
function head(string $tree): ?string {
    $output = run(['git', '-C', $tree, 'rev-parse', '--short', 'HEAD'], [], $status);
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

/** What is on disk and in the database that a refused operation must leave alone. */
function world_digest(): string {
    global $dir;
    clearstatcache(true);
    $parts = tree_digest("$dir/site", ['*/.git/index', '*/.git/*.lock']);
    $parts += array_combine(
        array_map(fn($k) => "state/$k", array_keys($state = tree_digest("$dir/state", ['audit.log', 'delivery.lock']))),
        $state);
    $parts['database'] = sql("SELECT value FROM mdl_config WHERE name = 'version'") . ' ' .
        sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'");
    return md5(json_encode($parts));
}

/** What the walk looks at after each step. */
function observe(): array {
    global $ctl, $dir;
    $json = run([$ctl, 'status', '--json'], [], $status);
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

/** The state's key: what makes two states the same for the walk. */
function state_key(array $o): string {
    $site = $o['site'];
    $copies = [];
    foreach ($site['copies'] ?? [] as $tree => $copy) {
        $copies[$tree] = ($copy['complete'] ?? false) ? substr($copy['revision']['id'] ?? '?', 0, 7) : '-';
    }
    ksort($copies);
    return json_encode([
        $site['phase'] ?? '?', $site['served'] ?? '?', $o['productionHead'], $o['servedHead'], $o['database'],
        $copies, isset($site['interrupted']), $site['maintenanceEnabled'] ?? false,
    ]);
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

/** Saves the world as state $id. */
function save(int $id): void {
    global $dir, $work, $dbname;
    $output = run(['cp', '-a', $dir, "$work/s$id"], [], $status);
    if ($status !== 0) {
        throw new RuntimeException("cannot save state $id: $output");
    }
    sql("CREATE DATABASE walk_s$id TEMPLATE $dbname", 'postgres');
}

/** Puts the world of state $id back (stray children of a killed helper stopped first). */
function load(int $id): void {
    global $dir, $work, $dbname, $dbuser;
    run(['pkill', '-9', '-f', '--', "$dir/site"]);
    run(['rm', '-rf', $dir]);
    $output = run(['cp', '-a', "$work/s$id", $dir], [], $status);
    if ($status !== 0) {
        throw new RuntimeException("cannot load state $id: $output");
    }
    sql("DROP DATABASE $dbname WITH (FORCE)", 'postgres');
    sql("CREATE DATABASE $dbname TEMPLATE walk_s$id OWNER $dbuser", 'postgres');
}

/** The invariants after one step; each violation one sentence. */
function violations(string $name, array $step, array $before, array $after, int $status, string $output,
        array $leaves, bool $refusalUnchanged): array {
    global $dir;
    $found = [];
    $site = $after['site'];
    $phase = $site['phase'] ?? null;
    $operation = $step['operation'];
    if (!$after['statusOk']) {
        $found[] = 'status --json failed afterwards';
        return $found;
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
    if ($status === 0 && isset($leaves[$operation][$before['site']['phase'] ?? ''])
            && $leaves[$operation][$before['site']['phase']] !== $phase) {
        $found[] = "succeeded from '" . $before['site']['phase'] . "' but left '$phase', not '" .
            $leaves[$operation][$before['site']['phase']] . "' as the state machine says";
    }
    // A refusal changes nothing.
    if ($status === 2 && !$refusalUnchanged) {
        $found[] = 'refused (exit 2) but changed the site, the state or the database';
    }
    // Cancel returns to the pre-delivery code, exactly.
    if ($operation === 'cancel' && $status === 0) {
        $wanted = substr($before['site']['revisionBeforeDelivery']['id'] ?? '', 0, 7);
        if ($served !== 'production') {
            $found[] = "cancel succeeded but serves $served";
        }
        if ($wanted !== '' && $after['productionHead'] !== $wanted && $after['productionHead'] !== ($before['servedHead'] ?? null)) {
            $found[] = "cancel left production at {$after['productionHead']}, not the pre-delivery $wanted";
        }
        // Byte for byte the copy it went back to (the backup, when at that revision).
        clearstatcache(true);
        $backup = realpath("$dir/site/releases/backup");
        $backupRevision = substr($after['site']['copies']['backup']['revision']['id'] ?? '', 0, 7);
        if ($backup && $backupRevision === $after['productionHead']) {
            $skip = ['.git', '.git/*'];
            $differ = array_keys(array_diff_assoc(
                tree_digest("$dir/site/releases/production", $skip), tree_digest($backup, $skip)) +
                array_diff_assoc(tree_digest($backup, $skip), tree_digest("$dir/site/releases/production", $skip)));
            if ($differ) {
                $found[] = 'cancel left production different from the backup copy of the same revision: ' .
                    implode(', ', array_slice($differ, 0, 5));
            }
        }
        $dirty = trim(run(['git', '-C', "$dir/site/releases/production", 'status', '--porcelain', '--untracked-files=no']));
        if ($dirty !== '') {
            $found[] = "cancel left production with local changes: $dirty";
        }
    }
    // A rollback target always matches the database (or the rollback restores the snapshot).
    $target = $site['rollback']['target'] ?? null;
    if ($target && ($site['rollback']['kind'] ?? '') === 'code' && !isset($site['running'])) {
        clearstatcache(true);
        $tree = realpath("$dir/site/releases/$target");
        if ($tree && pending($tree) !== false) {
            global $lastpending;
            $found[] = "the rollback target ($target) does not match the database and no snapshot restore is planned (upgrade.php --is-pending in $tree: $lastpending)";
        }
    }
    // What it said is true of the state it left.
    if (stripos($output, 'nothing else to do') !== false && $after['pendingServed'] !== false) {
        $found[] = "said 'nothing else to do' while the served code does not match the database";
    }
    return $found;
}

$plain = [
    'secure' => ['secure'],
    'secure --security' => ['secure', '--security'],
    'secure --path local' => ['secure', '--path', 'local'],
    'switch' => ['switch'],
    'update' => ['update', '--comment', 'walk'],
    'restore' => ['restore'],
    'run-all' => ['run-all', '--comment', 'walk'],
    'cancel' => ['cancel'],
    'rollback' => ['rollback'],
    'rollback --restore-database' => ['rollback', '--restore-database'],
    'recover' => ['recover'],
];
$steps = [];
foreach ($plain as $name => $arguments) {
    $steps[$name] = ['arguments' => $arguments, 'operation' => $arguments[0], 'kill' => null];
}
if ($interruptions) {
    $kills = [
        'run-all' => ['started:switch', 'started:update', 'started:restore', 'finished:restore'],
        'secure --security' => ['line:Copying'],
        'switch' => ['line:Flushed'],
        'update' => ['line:$ '],
        'restore' => ['line:$ '],
        'cancel' => ['line:$ '],
        'rollback --restore-database' => ['line:Flushed', 'line:The site now serves'],
    ];
    foreach ($kills as $name => $points) {
        foreach ($points as $point) {
            $steps["$name, killed at $point, recover"] =
                ['arguments' => $plain[$name], 'operation' => 'recover', 'kill' => $point];
        }
    }
}

$leaves = leaves_table($readme);
$started = microtime(true);
$states = [];        // key => ['id' => int, 'path' => [names]]
$transitions = [];   // "key|step" => to key
$passed = 0;
$failed = 0;
$bugs = [];

$first = observe();
$states[state_key($first)] = ['id' => 0, 'path' => []];
save(0);
$frontier = [state_key($first)];
for ($level = 1; $level <= $depth && $frontier; $level++) {
    $next = [];
    foreach ($frontier as $key) {
        $from = $states[$key];
        foreach ($steps as $name => $step) {
            load($from['id']);
            $before = observe();
            $digest = world_digest();
            $env = $step['kill'] ? ['DELIVERYCTL_TEST_KILL_AT' => $step['kill']] : [];
            $output = run(array_merge([$ctl], $step['arguments']), $env, $status);
            $interrupted = false;
            $recoverFailed = false;
            if ($step['kill'] !== null) {
                $interrupted = $status === 137 || $status === 9;
                if ($interrupted) {
                    // The helper died. Recover follows when the journal holds the dead operation (an
                    // emergency rollback takes no lock and leaves none: then there is nothing to
                    // recover, and the next step goes on from what the rollback did).
                    $dead = observe()['site'];
                    if (in_array('recover', $dead['allowed'] ?? [], true)) {
                        $output .= run([$ctl, 'recover'], [], $status);
                        if ($status !== 0) {
                            $output .= "\n(recover failed after the interruption, exit $status)";
                            $recoverFailed = true;
                            $status = 1;
                        }
                    } else {
                        $output .= "\n(nothing to recover: the killed operation left no journal entry)";
                        $status = 0;
                    }
                }
            }
            $after = observe();
            $unchanged = $status !== 2 || world_digest() === $digest;
            $effective = $step;
            if ($step['kill'] !== null && !$interrupted) {
                // The kill point was never reached: it ran as the plain operation.
                $effective['operation'] = $step['arguments'][0];
            }
            $found = violations($name, $effective, $before, $after, $status, $output, $leaves, $unchanged);
            if ($recoverFailed) {
                $found[] = 'recover failed after the interruption';
            }
            $sequence = implode('; ', array_merge($from['path'], [$name]));
            if ($found) {
                $failed++;
                foreach ($found as $violation) {
                    echo "not ok - $sequence: $violation\n";
                }
                $tail = implode("\n#   ", array_slice(explode("\n", trim($output)), -6));
                echo "#   (exit $status) $tail\n";
                $bugs[] = $sequence;
            } else {
                $passed++;
            }
            $to = state_key($after);
            $transitions["$key|$name"] = $to;
            if (!isset($states[$to])) {
                $id = count($states);
                $states[$to] = ['id' => $id, 'path' => array_merge($from['path'], [$name])];
                save($id);
                $next[] = $to;
            }
        }
    }
    printf("# depth %d: %d states, %d transitions so far (%.0f s)\n", $level, count($states), count($transitions),
        microtime(true) - $started);
    $frontier = $next;
}
load(0);
$distinct = count(array_unique(array_map(fn($k, $v) => explode('|', $k)[0] . '>' . $v,
    array_keys($transitions), $transitions)));
printf("# walked to depth %d: %d distinct states, %d transitions tried (%d distinct moves), %d steps, %.0f s\n",
    $depth, count($states), count($transitions), $distinct, count($steps), microtime(true) - $started);
foreach (array_keys($states) as $index => $key) {
    if ($index < 60) {
        echo "#   state $index: $key  <- ", implode('; ', $states[$key]['path']) ?: '(start)', "\n";
    }
}
echo "explore: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
