<?php
// The end-to-end suite's driver: every delivery step through the Moodle plugin's own client code
// (moodle-plugin/classes/local: helper_client over fastcgi_client with request_signer), run as the
// web user like the plugin, checking what nginx + PHP-FPM serve after each step.
//
// Usage (as www-data): php driver.php CONFIG.json PHASE
// Phases, in the order Tests/EndToEnd/e2e.sh runs them: initial, steps-1, steps-2, run-all, cancel,
// rollback (its rollback is pressed in the console by console_browser.py), rolled-back, load.
// Prints "ok - …" / "not ok - …" lines (counted by e2e.sh).

require_once(dirname(__DIR__, 2) . '/Tests/PluginTests/standalone_client.php');

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

const V1 = '2024100700';
const V2 = '2024100800';
const V3 = '2024100900';
const V4 = '2024101000';

$config = json_decode(file_get_contents($argv[1]), true, 8, JSON_THROW_ON_ERROR);
$phase = $argv[2] ?? '';
$failures = 0;

/** Prints one result line. */
function ok(bool $condition, string $description, string $detail = ''): bool {
    global $failures;
    if ($condition) {
        echo "ok - {$description}\n";
    } else {
        $failures++;
        echo "not ok - {$description}" . ($detail === '' ? '' : ": {$detail}") . "\n";
    }
    return $condition;
}

/** A note (not a result). */
function note(string $text): void {
    echo "    {$text}\n";
}

/** The client for a Moodle user, as client_factory makes it. */
function client(?string $key = null): helper_client {
    global $config;
    $signer = $key === null ? request_signer::from_key_file($config['key']) : new request_signer($key);
    return new helper_client(new fastcgi_client($config['socket'], 3.0, 20.0), $signer, 2, 'Ada E2E Admin');
}

/** GET over HTTP: [status, body, error]. */
function http(string $path, array $headers = []): array {
    global $config;
    $handle = curl_init($config['url'] . $path);
    curl_setopt_array($handle, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10, CURLOPT_HTTPHEADER => $headers]);
    $body = curl_exec($handle);
    return [(int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE), $body === false ? '' : $body, curl_error($handle)];
}

/** The kind of a served tree: production, backup or security (generations .backup.a… included). */
function kind(string $tree): string {
    if (preg_match('/^\.?(production|backup|security)(\.[A-Za-z0-9-]+)?$/', $tree, $matches)) {
        return $matches[1];
    }
    return $tree;
}

/** What the site serves: [version, tree, raw]. */
function served(): array {
    [$status, $body, $error] = http('/');
    if ($status === 200 && preg_match('/^fixture-site version=(\S+) tree=(\S+)\n?$/', $body, $matches)) {
        return [$matches[1], $matches[2], trim($body)];
    }
    return [null, null, "HTTP {$status} {$error} " . trim(substr($body, 0, 200))];
}

/** The tree behind `current` on disk and the core version its version.php holds: [tree, version]. */
function on_disk(): array {
    global $config;
    clearstatcache(true);
    $real = realpath($config['siteRoot'] . '/current');
    $text = $real === false ? '' : (string) @file_get_contents($real . '/version.php');
    $version = preg_match('/\$version\s*=\s*([0-9]+)(\.[0-9]+)?;/', $text, $matches) ? $matches[1] : null;
    return [$real === false ? null : basename($real), $version];
}

/** Checks over HTTP that the site serves a tree kind at a version (and on disk, to tell why not). */
function expect_served(string $kind, string $version, string $when): bool {
    [$servedversion, $tree, $raw] = served();
    [$disktree, $diskversion] = on_disk();
    $good = $servedversion === $version && $tree !== null && kind($tree) === $kind;
    $detail = "expected {$kind} version={$version}, got '{$raw}'; on disk current -> {$disktree} holding version {$diskversion}";
    if (!$good && $tree === $disktree && $diskversion === $version && $servedversion !== $version) {
        $detail .= ' (STALE COMPILED CODE: the right tree and the right files, but OPcache (validate_timestamps=0)'
            . ' still runs the code it compiled earlier from the same path)';
    }
    return ok($good, "{$when}: the site serves {$kind} version={$version}" . ($good ? " (tree={$tree})" : ''), $good ? '' : $detail);
}

/** With E2E_OPCACHE_RESET=1 only: resets the pool's OPcache (the workaround). */
function opcache_reset_if_asked(): void {
    global $config;
    if (!empty($config['opcacheReset'])) {
        http('/__e2e/opcache.php?reset=1');
    }
}

/** The scripts the PHP-FPM pool's OPcache holds: path => the modification time it compiled. */
function opcache_scripts(): array {
    [$status, $body] = http('/__e2e/opcache.php?scripts=1');
    $answer = json_decode($body, true);
    return $status === 200 && is_array($answer['scripts'] ?? null) ? $answer['scripts'] : [];
}

/** The helper's status (site part). */
function site(): array {
    return client()->status()['site'];
}

/**
 * Runs an operation as the plugin does: start it, follow the job to its end.
 *
 * @return array [job or null, seconds, started-at, finished-at, error code]
 */
function operation(string $operation, array $options = [], float $poll = 0.1, bool $quiet = false): array {
    $client = client();
    $start = microtime(true);
    try {
        $answer = $client->start_operation($operation, $options);
    } catch (helper_exception $error) {
        return [null, microtime(true) - $start, $start, microtime(true), $error->errorcode . ': ' . $error->getMessage()];
    }
    $offset = 0;
    $lines = [];
    $deadline = $start + 300;
    while (true) {
        $job = $client->job($answer['job'], $offset);
        $lines = array_merge($lines, $job['lines'] ?? []);
        $offset = (int) ($job['nextOffset'] ?? $offset);
        if ($job['state'] !== 'running') {
            $end = microtime(true);
            while ($offset < (int) ($job['totalLines'] ?? 0)) {
                $more = $client->job($answer['job'], $offset);
                $lines = array_merge($lines, $more['lines'] ?? []);
                if ((int) ($more['nextOffset'] ?? $offset) === $offset) {
                    break;
                }
                $offset = (int) $more['nextOffset'];
            }
            $job['allLines'] = $lines;
            if ($job['state'] !== 'succeeded' && !$quiet) {
                foreach (array_slice($lines, -15) as $line) {
                    note("| {$line}");
                }
            }
            return [$job, $end - $start, $start, $end, $job['error']['code'] ?? ''];
        }
        if (microtime(true) > $deadline) {
            return [$job, microtime(true) - $start, $start, microtime(true), 'timeout'];
        }
        usleep((int) ($poll * 1e6));
    }
}

/** Runs an operation and checks that it succeeded. */
function step(string $operation, array $options = []): ?array {
    [$job, $seconds, , , $error] = operation($operation, $options);
    $good = $job !== null && $job['state'] === 'succeeded';
    opcache_reset_if_asked();
    $detail = $job === null ? "refused at once ({$error})" : "job {$job['state']}: " . json_encode($job['error'] ?? null);
    ok($good, sprintf("%s%s succeeded through the plugin client (%.2f s, %d log lines)", $operation,
        $options ? ' ' . json_encode($options, JSON_UNESCAPED_SLASHES) : '', $seconds, count($job['allLines'] ?? [])),
        $good ? '' : $detail);
    return $good ? $job : null;
}

/** Checks the helper's phase and served copy. */
function expect_state(string $phase, string $served, string $when): array {
    $site = site();
    ok(($site['phase'] ?? null) === $phase && ($site['served'] ?? null) === $served,
        "{$when}: the helper reports phase {$phase}, served {$served}",
        'got phase ' . ($site['phase'] ?? '?') . ', served ' . ($site['served'] ?? '?'));
    return $site;
}

try {
    switch ($phase) {
        case 'initial':
            ok(posix_geteuid() !== 0 && posix_getpwuid(posix_geteuid())['name'] === 'www-data',
                'the driver runs as www-data (uid ' . posix_geteuid() . '), like the plugin');
            $site = expect_state('idle', 'production', 'before any delivery');
            note('allowed: ' . implode(', ', $site['allowed'] ?? []));
            expect_served('production', V1, 'before any delivery');
            try {
                client(str_repeat('not-the-key-', 4))->status();
                ok(false, 'a request signed with another key is refused');
            } catch (helper_exception $error) {
                ok($error->errorcode === 'bad_signature', 'a request signed with another key is refused (bad_signature)',
                    $error->errorcode);
            }
            [$status, $body] = http('/delivery-console/');
            ok($status === 200 && stripos($body, '<html') !== false,
                'the console page is served through nginx (deploy/nginx-console.conf)', "HTTP {$status}");
            // Its one script must be JavaScript a browser runs: node parses it as served.
            preg_match('~<script>(.*)</script>~s', $body, $match);
            $script = tempnam(sys_get_temp_dir(), 'console') . '.js';
            file_put_contents($script, $match[1] ?? '');
            exec('node --check ' . escapeshellarg($script) . ' 2>&1', $parsed, $parsestatus);
            unlink($script);
            ok(isset($match[1]) && $parsestatus === 0, 'the console page\'s script parses as JavaScript (node --check)',
                implode(' ', array_slice($parsed, 0, 4)));
            [$status] = http('/delivery-console/status');
            ok($status === 401, 'the console status without a token is refused (401)', "HTTP {$status}");
            $token = client()->console_token(600);
            [$status, $body] = http('/delivery-console/status', ['X-Delivery-Console-Token: ' . $token['token']]);
            $console = json_decode($body, true);
            // docs/protocol.md: {"site": <the /status answer>, …}, so the phase is at site.site.phase.
            ok($status === 200 && ($console['site']['site']['phase'] ?? $console['site']['phase'] ?? null) === 'idle',
                'the console status with a token issued through the plugin client answers through nginx',
                "HTTP {$status} " . substr($body, 0, 200));
            // In a real browser (headless Chromium): the page runs its script without an error and
            // fills in the state from the helper.
            $profile = sys_get_temp_dir() . '/console-browser-' . getmypid();
            $command = 'chromium --headless --no-sandbox --disable-gpu --user-data-dir=' . escapeshellarg($profile)
                . ' --enable-logging=stderr --v=0 --virtual-time-budget=8000 --dump-dom '
                . escapeshellarg($config['url'] . '/delivery-console/#token=' . $token['token']) . ' 2>' . escapeshellarg("$profile.log");
            exec($command, $dom, $browserstatus);
            $dom = implode("\n", $dom);
            $log = (string) @file_get_contents("$profile.log");
            exec('rm -rf ' . escapeshellarg($profile) . ' ' . escapeshellarg("$profile.log"));
            preg_match('~<dd id="phase">([^<]*)</dd>~', $dom, $phase);
            preg_match_all('~(Uncaught[^\n]*|SyntaxError[^\n]*)~', $log, $jserrors);
            ok($browserstatus === 0 && ($phase[1] ?? '') === 'idle' && !$jserrors[0],
                'in headless Chromium the console runs its script without an error and shows the state (idle)',
                "exit {$browserstatus}, phase '" . ($phase[1] ?? '?') . "', " . implode(' ', array_slice($jserrors[0], 0, 2)));
            break;

        case 'steps-1':
            step('secure', ['securityCopy' => true]);
            $site = expect_state('secured', 'production', 'after secure');
            ok(!empty($site['copies']['backup']['complete']) && !empty($site['copies']['security']['complete']),
                'after secure: the backup and security copies are complete', json_encode($site['copies'] ?? null));
            expect_served('production', V1, 'after secure');
            step('switch');
            expect_state('delivering', 'backup', 'after switch');
            expect_served('backup', V1, 'after switch');
            break;

        case 'steps-2':
            step('update', ['comment' => 'e2e: revision 2']);
            $site = expect_state('updated', 'backup', 'after update');
            ok(($site['productionRevision']['id'] ?? 'a') !== ($site['revisionBeforeDelivery']['id'] ?? 'a'),
                'after update: production moved to a new revision', json_encode([$site['productionRevision'] ?? null,
                    $site['revisionBeforeDelivery'] ?? null]));
            expect_served('backup', V1, 'after update (the old version is still served)');
            // The test is meaningful only if OPcache holds revision 1 of production's code now.
            $cached = opcache_scripts();
            $version = $config['siteRoot'] . '/releases/production/version.php';
            if (empty($config['opcacheReset'])) {
                ok(isset($cached[$version]), 'before restore: OPcache holds production\'s version.php of revision 1',
                    'cached: ' . implode(', ', array_slice(array_keys($cached), 0, 8)));
            } else {
                note('E2E_OPCACHE_RESET=1: the pool\'s OPcache is reset after every operation');
            }
            step('restore');
            expect_state('idle', 'production', 'after restore');
            expect_served('production', V2, 'after restore (OPcache with validate_timestamps=0 must not keep revision 1)');
            break;

        case 'schedule':
            // The upstream watch as the plugin's hourly task asks it: revision 3 is waiting.
            $client = client();
            $preview = $client->check_upstream();
            $core = array_values(array_filter($preview['versionChanges'] ?? [], fn($c) => ($c['component'] ?? null) === ''));
            ok(($preview['waiting'] ?? false) === true && ($preview['commitCount'] ?? 0) >= 1,
                'the upstream watch sees the waiting revision (' . ($preview['upstream']['label'] ?? '?') . ', '
                . ($preview['commitCount'] ?? 0) . ' commits, ' . ($preview['fileCount'] ?? 0) . ' files)');
            ok(($core[0]['before'] ?? '') === V2 . '.00' && ($core[0]['after'] ?? '') === V3 . '.00'
                && ($preview['upgrade'] ?? '') === 'core' && ($preview['blocking'] ?? true) === false,
                'it says the core goes from ' . V2 . ' to ' . V3 . ' (an upgrade in maintenance mode) and that nothing blocks',
                json_encode([$core, $preview['upgrade'] ?? null, $preview['blockers'] ?? null]));
            expect_served('production', V2, 'after the upstream check (production untouched)');
            $at = gmdate('Y-m-d\TH:i:s\Z', time() + 62);
            $revision = $preview['upstream']['id'];
            $schedule = $client->schedule($at, $revision, true, true, 'e2e: revision 3, delivered later');
            ok(($schedule['revision']['id'] ?? null) === $revision && ($schedule['actor']['moodleUserId'] ?? null) === 2,
                "a Run all of revision 3 is scheduled for {$at}, by Ada E2E Admin");
            try {
                $client->schedule($at, $revision, true, true, null);
                ok(false, 'a second schedule is refused (schedule_exists)');
            } catch (helper_exception $error) {
                ok($error->errorcode === 'schedule_exists', 'a second schedule is refused (schedule_exists)', $error->errorcode);
            }
            $cancelled = $client->cancel_schedule();
            ok(($cancelled['id'] ?? null) === ($schedule['id'] ?? '?') && !isset(site()['schedule']),
                'Cancel removes the schedule');
            $at = gmdate('Y-m-d\TH:i:s\Z', time() + 62);
            $client->schedule($at, $revision, true, true, 'e2e: revision 3, delivered later');
            ok((site()['schedule']['at'] ?? null) !== null, "scheduled again for {$at}; the driver now leaves (no browser, no cron)");
            break;

        case 'scheduled':
            $site = expect_state('idle', 'production', 'after the scheduled time');
            expect_served('production', V3, 'after the scheduled Run all');
            ok(!isset($site['schedule']), 'the schedule is gone once it ran');
            $records = client()->history(5);
            $record = $records[0] ?? [];
            ok(($record['operation'] ?? '') === 'run-all' && ($record['result'] ?? '') === 'succeeded'
                && ($record['scheduled'] ?? false) === true && ($record['actor']['name'] ?? '') === 'Ada E2E Admin',
                'the audit log records a scheduled Run all by Ada E2E Admin that succeeded',
                json_encode(array_intersect_key($record, array_flip(['operation', 'result', 'scheduled', 'errorCode']))));
            $report = client()->report($record['deliveryId'] ?? $record['id'] ?? '');
            $steps = array_map(fn($s) => $s['operation'] . ':' . $s['result'], $report['steps'] ?? []);
            ok($steps === ['secure:succeeded', 'switch:succeeded', 'update:succeeded', 'restore:succeeded'],
                'its report has the four steps', implode(', ', $steps));
            $core = array_values(array_filter($report['versionChanges'] ?? [], fn($c) => ($c['component'] ?? null) === ''));
            ok(($core[0]['after'] ?? '') === V3 . '.00' && ($report['outcome'] ?? '') === 'delivered'
                && ($report['scheduled'] ?? false) === true,
                'its report says delivered, at its scheduled time, core ' . V2 . ' → ' . V3);
            $window = $report['maintenance'] ?? [];
            ok(isset($window['onAt'], $window['offAt']) && ($window['seconds'] ?? 0) > 0,
                sprintf('its report has the maintenance window the helper measured (%.2f s)', $window['seconds'] ?? 0));
            break;

        case 'run-all':
            // Nothing new upstream (the scheduled Run all brought revision 3, and refreshed the
            // security copy with revision 2 before its update): the four steps still run.
            $job = step('run-all', ['comment' => 'e2e: run all again, nothing new upstream']);
            if ($job !== null) {
                $steps = array_map(fn($s) => $s['operation'] . ':' . $s['state'], $job['steps'] ?? []);
                ok($steps === ['secure:succeeded', 'switch:succeeded', 'update:succeeded', 'restore:succeeded'],
                    'run-all ran the four steps', implode(', ', $steps));
            }
            expect_state('idle', 'production', 'after run-all');
            expect_served('production', V3, 'after run-all');
            break;

        case 'cancel':
            $before = site()['productionRevision']['id'] ?? null;
            step('secure');
            step('switch');
            expect_served('backup', V3, 'delivery to be cancelled, after switch');
            step('update', ['comment' => 'e2e: revision 4, to be cancelled']);
            $site = expect_state('updated', 'backup', 'delivery to be cancelled, after update');
            ok(($site['productionRevision']['id'] ?? null) !== $before, 'the update brought revision 4 into production');
            expect_served('backup', V3, 'delivery to be cancelled, after update');
            step('cancel');
            $site = expect_state('idle', 'production', 'after cancel');
            ok(($site['productionRevision']['id'] ?? null) === $before && $before !== null,
                'after cancel: production is back at its pre-delivery revision',
                ($site['productionRevision']['id'] ?? '?') . " vs {$before}");
            expect_served('production', V3, 'after cancel (the pre-delivery version)');
            break;

        case 'rollback':
            $site = site();
            // The security copy holds revision 2 (refreshed by run-all before its update), older than
            // the database since run-all's upgrade: Moodle would refuse it. The backup copy, secured
            // again before the cancelled delivery, holds revision 3, which matches the database.
            ok(($site['rollbackTarget'] ?? null) === 'backup',
                'the rollback target is the copy whose code matches the database (backup, not the older security copy)',
                (string) ($site['rollbackTarget'] ?? 'none') . ': ' . ($site['rollback']['explanation'] ?? ''));
            expect_served('production', V3, 'before the emergency rollback');
            // The rollback itself is pressed in the emergency console, in a real browser
            // (console_browser.py, run by e2e.sh next), with a token issued through the plugin client.
            $token = client()->console_token(600);
            $file = $config['work'] . '/console-token';
            ok(file_put_contents($file, $token['token']) !== false && chmod($file, 0600),
                'a console token for the browser was issued through the plugin client');
            break;

        case 'rolled-back':
            expect_state('rolled_back', 'backup', 'after the emergency rollback from the console');
            expect_served('backup', V3, 'after the emergency rollback from the console (the backup copy)');
            @unlink($config['work'] . '/console-token');
            break;

        case 'load':
            run_load();
            break;

        default:
            fwrite(STDERR, "driver.php: unknown phase '{$phase}'\n");
            exit(64);
    }
} catch (Throwable $error) {
    ok(false, "phase {$phase} stopped", get_class($error) . ': ' . $error->getMessage()
        . ($error instanceof helper_exception ? " [{$error->errorcode}]" : ''));
}
exit($failures === 0 ? 0 : 1);

/** Switches under load: rollback / restore, alternately, while load.php sends concurrent GETs. */
function run_load(): void {
    global $config;
    $wanted = max(1, (int) $config['switches']);
    $site = expect_state('rolled_back', 'backup', 'before the switches under load');
    [, $tree] = served();
    $initialtree = (string) $tree;
    $expected = ['production' => V3, 'backup' => V3];
    $out = $config['work'] . '/load.jsonl';
    $stop = $config['work'] . '/load.stop';
    @unlink($stop);
    @unlink($out);
    $process = proc_open([PHP_BINARY, __DIR__ . '/load.php', $config['url'] . '/', (string) $config['concurrency'],
        '400000', '240', $stop, $out], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    usleep(500000);
    $switches = [];
    $current = kind($initialtree);
    $trees = [$current => $initialtree];
    $problems = [];
    while (count($switches) < $wanted || $current !== 'production') {
        if (count($switches) >= $wanted + 2) {
            break;
        }
        $operation = $current === 'production' ? 'rollback' : 'restore';
        $target = $operation === 'rollback' ? 'backup' : 'production';
        [$job, $seconds, $start, $end, $error] = operation($operation, [], 0.02, true);
        if ($job === null || $job['state'] !== 'succeeded') {
            $problems[] = "{$operation} #" . (count($switches) + 1) . " failed: {$error} " . json_encode($job['error'] ?? null);
            break;
        }
        opcache_reset_if_asked();
        [$version, $tree, $raw] = served();
        if ($tree === null || kind($tree) !== $target) {
            $problems[] = "after {$operation} #" . (count($switches) + 1) . " the site serves '{$raw}'";
        }
        $trees[$target] = $tree ?? $target;
        $switches[] = ['operation' => $operation, 'from' => $trees[$current] ?? $current, 'to' => $trees[$target],
            'start' => $start, 'end' => $end, 'seconds' => $seconds];
        $current = $target;
        usleep(250000);
    }
    usleep(500000);
    touch($stop);
    file_put_contents($config['work'] . '/switches.json', json_encode($switches, JSON_PRETTY_PRINT));
    $loadout = stream_get_contents($pipes[1]);
    $loaderr = stream_get_contents($pipes[2]);
    $loadstatus = proc_close($process);
    ok($loadstatus === 0 && trim($loaderr) === '', 'the load generator ran cleanly', "status {$loadstatus}: " . trim($loaderr));
    ok($problems === [], count($switches) . ' switches done under load (wanted at least ' . $wanted . ')',
        implode('; ', $problems));
    ok(count($switches) >= $wanted, "at least {$wanted} switches", (string) count($switches));

    // Each response: a success from a complete tree (the right version for its tree), and never
    // from the tree switched away from once a switch has completed (by its start time).
    $sent = $failed = $stale = $during = $stalecode = 0;
    $firstnew = [];
    $examples = [];
    $bytree = [];
    foreach (file($out, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $line) {
        $response = json_decode($line, true);
        $sent++;
        // nginx is not reloaded by a switch: a keep-alive connection it closed (load.php sent that
        // request again, as a browser does) counts as a failure here.
        if ($response['c'] !== 200 || ($response['r'] ?? '') !== ''
                || !preg_match('/^fixture-site version=(\S+) tree=(\S+)\n?$/', $response['b'], $m)
                || !isset($expected[kind($m[2])])) {
            $failed++;
            if (count($examples) < 5) {
                $examples[] = 'failed: ' . json_encode($response);
            }
            continue;
        }
        $tree = $m[2];
        // When the site started answering from each switch's target: the first such request after its start.
        foreach ($switches as $index => $switch) {
            if ($tree === $switch['to'] && $response['s'] >= $switch['start'] && $response['s'] <= $switch['end']
                    && $response['s'] < ($firstnew[$index] ?? INF)) {
                $firstnew[$index] = $response['s'];
            }
        }
        $key = "{$tree} version={$m[1]}";
        $bytree[$key] = ($bytree[$key] ?? 0) + 1;
        if ($expected[kind($tree)] !== $m[1]) {
            // A whole tree answered, but with the code OPcache compiled from an earlier content of that path.
            $stalecode++;
        }
        // The last switch completed before this request started, and the next one if it started while
        // the request was still in flight (the web server resolves the tree when it gets the request).
        $allowed = [$initialtree];
        $last = -1;
        foreach ($switches as $index => $switch) {
            if ($switch['end'] <= $response['s']) {
                $last = $index;
            }
        }
        if ($last >= 0) {
            $allowed = [$switches[$last]['to']];
        }
        $next = $switches[$last + 1] ?? null;
        if ($next !== null && $next['start'] <= $response['e']) {
            $allowed[] = $next['to'];
            $during++;
        }
        if (!in_array($tree, $allowed, true)) {
            $stale++;
            if (count($examples) < 10) {
                $examples[] = sprintf('stale: started %.4f ended %.4f served %s, allowed %s (switch #%d %s ended %.4f;'
                    . ' next switch started %s)', $response['s'], $response['e'], $tree, implode('|', $allowed), $last + 1,
                    $last >= 0 ? $switches[$last]['operation'] : '-', $last >= 0 ? $switches[$last]['end'] : 0,
                    $next === null ? '-' : sprintf('%.4f', $next['start']));
            }
        }
    }
    $times = [];
    foreach ($switches as $switch) {
        $times[$switch['operation']][] = $switch['seconds'];
    }
    $figures = [];
    foreach ($times as $operation => $list) {
        sort($list);
        $figures[] = sprintf('%s x%d: mean %.0f ms, median %.0f ms, min %.0f ms, max %.0f ms', $operation, count($list),
            1000 * array_sum($list) / count($list), 1000 * $list[intdiv(count($list), 2)], 1000 * $list[0],
            1000 * end($list));
    }
    $flips = [];
    foreach ($firstnew as $index => $time) {
        $flips[] = $time - $switches[$index]['start'];
    }
    sort($flips);
    if ($flips) {
        $figures[] = sprintf('the site answered from the new tree %.0f ms (median; max %.0f ms) after the request',
            1000 * $flips[intdiv(count($flips), 2)], 1000 * end($flips));
    }
    // Latency of the first request started after each switch ended, against the steady latency
    // (requests that overlap no switch, and start at least 0.5 s after the last one ended).
    $responses = array_map(fn($line) => json_decode($line, true),
        file($out, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: []);
    $firstafter = [];
    $steady = [];
    foreach ($responses as $response) {
        $quiet = true;
        foreach ($switches as $index => $switch) {
            if ($response['s'] >= $switch['end'] && ($firstafter[$index]['s'] ?? INF) > $response['s']) {
                $firstafter[$index] = $response;
            }
            if ($response['e'] >= $switch['start'] - 0.05 && $response['s'] <= $switch['end'] + 0.5) {
                $quiet = false;
            }
        }
        if ($quiet && $response['c'] === 200) {
            $steady[] = $response['e'] - $response['s'];
        }
    }
    $median = function (array $list) {
        sort($list);
        return $list ? $list[intdiv(count($list), 2)] : NAN;
    };
    $firsts = array_map(fn($response) => $response['e'] - $response['s'], array_values($firstafter));
    if ($firsts && $steady) {
        $figures[] = sprintf('first request after a switch %.1f ms (median; max %.1f ms) against %.1f ms steady: %.2f×',
            1000 * $median($firsts), 1000 * max($firsts), 1000 * $median($steady), $median($firsts) / $median($steady));
    }
    $duration = $switches ? end($switches)['end'] - $switches[0]['start'] : 0;
    echo "\n    LOAD FIGURES: requests sent {$sent}, failed {$failed}, stale {$stale}, stale compiled code {$stalecode};"
        . ' switches ' . count($switches)
        . sprintf(' in %.1f s; %d requests started while a switch ran', $duration, $during) . "\n";
    echo '    time per switch: ' . implode('; ', $figures) . "\n";
    echo '    responses per tree: ' . json_encode($bytree) . ', concurrency ' . $config['concurrency'] . "\n\n";
    foreach ($examples as $example) {
        note($example);
    }
    ok($sent > 100, "the load generator sent {$sent} requests");
    ok($failed === 0, "every response was a 200 from a complete tree ({$failed} of {$sent} were not)");
    ok($stale === 0, "no response came from the tree switched away from after its switch completed ({$stale} stale)");
    ok($stalecode === 0, "every response ran its tree's current code (production version " . V3 . ', backup '
        . V3 . ")", "{$stalecode} of {$sent} ran code OPcache compiled from an earlier content of the same path: "
        . json_encode($bytree));
    $final = expect_state('idle', 'production', 'after the switches under load');
    expect_served('production', V3, 'after the switches under load');
    unset($final, $site);
}
