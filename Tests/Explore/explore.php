<?php
// The exploration walk of Tests/Explore/explore (which makes the site and the database first).
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
$dir = getenv('SITE_DIR');
$dbname = getenv('DBNAME');
$dbuser = getenv('DBUSER');
@mkdir($work, 0700, true);

require_once(__DIR__ . '/../Support/invariants.php');

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
            $before = before_operation();
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
            $effective = $step;
            if ($step['kill'] !== null && !$interrupted) {
                // The kill point was never reached: it ran as the plain operation.
                $effective['operation'] = $step['arguments'][0];
            }
            $found = violations($effective['operation'], $before, $after, $status, $output);
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
