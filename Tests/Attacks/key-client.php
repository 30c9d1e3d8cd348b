<?php
// The web user with the plugin's key (run as www-data by Tests/Attacks/destructive.sh): asks the
// live helper for one operation, perfectly signed, as the Moodle user it chooses to name, waits
// for the job and prints one line: "<job state> <error code or -> <message>", or
// "refused <code> <message>" when the helper refuses at once.
//
// Usage: php key-client.php CONFIG.json OPERATION [OPTIONS.json]
//   CONFIG.json: {"socket": …, "key": …, "userId": 2, "userName": "…"}

require_once(dirname(__DIR__, 2) . '/Tests/PluginTests/standalone_client.php');

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

$config = json_decode(file_get_contents($argv[1]), true, 8, JSON_THROW_ON_ERROR);
$options = isset($argv[3]) ? json_decode($argv[3], true, 8, JSON_THROW_ON_ERROR) : [];
$client = new helper_client(new fastcgi_client($config['socket'], 3.0, 60.0),
    request_signer::from_key_file($config['key']), (int) $config['userId'], (string) $config['userName']);
try {
    $answer = $client->start_operation($argv[2], $options);
} catch (helper_exception $error) {
    echo "refused {$error->errorcode} {$error->getMessage()}\n";
    exit(0);
}
$deadline = microtime(true) + 300;
do {
    usleep(100000);
    $job = $client->job($answer['job']);
} while ($job['state'] === 'running' && microtime(true) < $deadline);
$message = $job['error']['message'] ?? ($job['result']['message'] ?? '');
echo $job['state'], ' ', $job['error']['code'] ?? '-', ' ', str_replace("\n", ' ', $message), "\n";
