<?php
// What the Moodle page asks on a farm's coordinator, through the plugin's own client code
// (moodle-plugin/classes/local: helper_client over fastcgi_client with request_signer), run as the
// web user like the plugin.
//
// Usage (as www-data): php page_client.php SOCKET KEYFILE farm
//                      php page_client.php SOCKET KEYFILE status
//                      php page_client.php SOCKET KEYFILE OPERATION [OPTIONS-JSON]
//                      php page_client.php SOCKET KEYFILE job-wait '{"id": JOB, "wait": N}'
// Prints one JSON document: the farm's nodes, the status, the operation's finished job, or the job
// asked with `wait` (what a web-user process could ask beyond the plugin: {"state", "seconds"}),
// or the helper's refusal as {"refused": CODE, "message": TEXT}.

require_once(dirname(__DIR__, 2) . '/Tests/PluginTests/standalone_client.php');

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

[, $socket, $keyfile, $what] = $argv;
$options = isset($argv[4]) ? json_decode($argv[4], true, 8, JSON_THROW_ON_ERROR) : [];
/**
 * The plugin's client, with any query on a job.
 */
class job_asking_client extends helper_client {
    /**
     * GET /jobs/{id} with a query of the caller's.
     *
     * @param string $id The job id.
     * @param array $query The query.
     * @return array The decoded job.
     */
    public function job_with(string $id, array $query): array {
        return $this->call('GET', '/jobs/' . $id, $query, '', 200);
    }
}

$client = new job_asking_client(new fastcgi_client($socket, 3.0, 120.0), request_signer::from_key_file($keyfile), 2,
    'Ada Farm Admin');
try {
    if ($what === 'job-wait') {
        $started = microtime(true);
        $job = $client->job_with($options['id'], ['wait' => $options['wait']]);
        $answer = ['state' => $job['state'] ?? null, 'seconds' => round(microtime(true) - $started, 3)];
    } else if ($what === 'farm') {
        $answer = ['nodes' => $client->farm()];
    } else if ($what === 'status') {
        $answer = $client->status();
    } else {
        $id = $client->start_operation($what, $options)['job'];
        $deadline = microtime(true) + 300;
        do {
            usleep(100000);
            $answer = $client->job($id);
        } while (in_array($answer['state'], ['queued', 'running'], true) && microtime(true) < $deadline);
    }
} catch (helper_exception $error) {
    $answer = ['refused' => $error->errorcode, 'message' => $error->getMessage()];
}
echo json_encode($answer, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
