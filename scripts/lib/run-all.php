<?php
// Runs a whole delivery (run all, with the security copy) through deliveryd with the Moodle
// plugin's own client code, as the plugin does, and prints its progress as it comes.
// Usage (as the web user): php run-all.php SOCKET KEYFILE
require_once(dirname(__DIR__, 2) . '/Tests/PluginTests/standalone_client.php');

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

[, $socket, $keyfile] = $argv + [null, null, null];
$client = new helper_client(new fastcgi_client($socket, 3.0, 20.0), request_signer::from_key_file($keyfile), 2,
    'Demo Admin');
try {
    $job = $client->start_operation('run-all', ['securityCopy' => true, 'comment' => 'demo delivery: revision 2']);
    echo "    job {$job['job']} started\n";
    $offset = 0;
    $shown = [];
    do {
        usleep(200000);
        $view = $client->job($job['job'], $offset);
        foreach ($view['lines'] as $line) {
            echo "    | {$line}\n";
        }
        $offset = $view['nextOffset'];
        foreach ($view['steps'] ?? [] as $step) {
            $percent = (int) round(100 * ($step['fraction'] ?? 0));
            if (($shown[$step['operation']] ?? -1) < $percent && $percent % 25 === 0) {
                $shown[$step['operation']] = $percent;
                echo "    [{$step['operation']}] {$percent} %\n";
            }
        }
    } while ($view['state'] === 'running' || $offset < $view['totalLines']);
    if ($view['state'] !== 'succeeded') {
        fwrite(STDERR, "    FAILED: " . ($view['error']['message'] ?? 'unknown error') . "\n");
        exit(1);
    }
    echo "    done: {$view['result']['message']}\n";
} catch (helper_exception $error) {
    fwrite(STDERR, "    the helper refused: {$error->getMessage()}\n");
    exit(1);
}
