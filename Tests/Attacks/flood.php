<?php
// The web user's denial of service against the live helper (run as www-data by attacks.sh): more
// stalled connections than the helper has workers (half send nothing, half part of a request),
// then a status asked through the plugin's own client while they stall, then twenty rollbacks at
// once (one job must run them all: the others are answered with it). Prints "ok - …" lines.
//
// Usage: php flood.php CONFIG.json STALLED

require_once(dirname(__DIR__, 2) . '/Tests/PluginTests/standalone_client.php');

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

$config = json_decode(file_get_contents($argv[1]), true, 8, JSON_THROW_ON_ERROR);
$count = (int) ($argv[2] ?? 8);
$failures = 0;

function ok(bool $condition, string $description, string $detail = ''): void {
    global $failures;
    if (!$condition) {
        $failures++;
    }
    echo ($condition ? 'ok' : 'not ok') . " - {$description}" . ($detail === '' ? '' : ": {$detail}") . "\n";
}

function client(): helper_client {
    global $config;
    return new helper_client(new fastcgi_client($config['socket'], 3.0, 20.0),
        request_signer::from_key_file($config['key']), 2, 'Flood Attacker');
}

// The stalled connections, from as many processes (the bound per process does not save the helper
// here: these are separate peers). Each reports when the helper cut it (at its read timeout).
$children = [];
for ($i = 0; $i < $count; $i++) {
    $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
    $pid = pcntl_fork();
    if ($pid === 0) {
        fclose($pair[0]);
        $socket = stream_socket_client('unix://' . $config['socket'], $errno, $error, 3);
        if ($i % 2 === 1 && $socket) {
            fwrite($socket, "\x01\x01\x00\x01\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x04\x00\x01");
        }
        $read = [$socket];
        $none = null;
        $cut = stream_select($read, $none, $none, 15) ? microtime(true) : 0;
        fwrite($pair[1], (string) $cut);
        exit(0);
    }
    fclose($pair[1]);
    $children[$pid] = $pair[0];
}
usleep(300000);

$answered = 0;
$slowest = 0;
for ($i = 0; $i < 5; $i++) {
    $started = microtime(true);
    try {
        client()->status();
        $answered++;
    } catch (Throwable $e) {
        echo "    status failed: " . $e->getMessage() . "\n";
    }
    $slowest = max($slowest, (microtime(true) - $started) * 1000);
}
$statusesdone = microtime(true);
$cuts = [];
foreach ($children as $pid => $pipe) {
    $cuts[] = (float) stream_get_contents($pipe);
    pcntl_waitpid($pid, $status);
}
$firstcut = min(array_map(fn($t) => $t ?: INF, $cuts));
ok($answered === 5 && $statusesdone < $firstcut,
    "status answered 5 of 5 times while {$count} connections stalled, before the helper cut any of them " .
    sprintf('(slowest %.1f ms; first cut %.1f s later)', $slowest, $firstcut - $statusesdone));

// Twenty rollbacks at once, from as many processes.
$results = [];
$pipes = [];
for ($i = 0; $i < 20; $i++) {
    $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
    $pid = pcntl_fork();
    if ($pid === 0) {
        fclose($pair[0]);
        try {
            $answer = client()->start_operation('rollback');
            fwrite($pair[1], json_encode(['started' => $answer['job']]));
        } catch (helper_exception $e) {
            fwrite($pair[1], json_encode(['refused' => $e->errorcode, 'details' => $e->details]));
        } catch (Throwable $e) {
            fwrite($pair[1], json_encode(['error' => $e->getMessage()]));
        }
        exit(0);
    }
    fclose($pair[1]);
    $pipes[$pid] = $pair[0];
}
foreach ($pipes as $pid => $pipe) {
    $results[] = json_decode(stream_get_contents($pipe), true) ?? ['error' => 'no answer'];
    pcntl_waitpid($pid, $status);
}
$started = array_unique(array_filter(array_column($results, 'started')));
$refused = array_filter($results, fn($r) => ($r['refused'] ?? '') === 'lock_held');
$errors = array_filter($results, fn($r) => isset($r['error']));
ok(count($errors) === 0, 'every one of 20 concurrent rollbacks was answered', json_encode(array_values($errors)));
ok(count($started) >= 1 && count($started) < 20 && count($started) + count($refused) === 20,
    count($started) . ' rollback job(s) ran 20 requests; the others were answered with the running one');
foreach ($started as $job) {
    for ($i = 0; $i < 600; $i++) {
        if ((client()->job($job)['state'] ?? '') !== 'running') {
            break;
        }
        usleep(100000);
    }
}
exit($failures === 0 ? 0 : 1);
