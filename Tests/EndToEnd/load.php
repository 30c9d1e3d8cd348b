<?php
// The end-to-end suite's load generator: concurrent GETs on a loopback URL with curl_multi, bounded
// in count and time, until a stop file appears. Each response is written as one JSON line:
// {"s": start time, "e": end time, "c": HTTP status, "b": body (first 200 bytes), "x": curl error,
// "r": the error of a first try retried}. Times are microtime(true), the same clock as the driver's
// switch times. As a browser does (RFC 9112, 9.3.1), a GET sent on a reused keep-alive connection
// that the server closed before answering anything is sent once more on a new connection (Apache's
// graceful reload closes idle keep-alive connections); the line keeps the first error in "r", and
// the suites count those retries. A second failure is the request's result.
//
// Usage: php load.php URL CONCURRENCY MAX_REQUESTS MAX_SECONDS STOP_FILE OUT_FILE

[$url, $concurrency, $maxrequests, $maxseconds, $stopfile, $outfile] = array_slice($argv, 1) + array_fill(0, 6, null);
$host = parse_url((string) $url, PHP_URL_HOST);
if (!in_array($host, ['127.0.0.1', '[::1]', '::1', 'localhost'], true)) {
    fwrite(STDERR, "load.php: loopback URLs only, not {$url}\n");
    exit(64);
}
$concurrency = max(1, min(64, (int) $concurrency));
$maxrequests = max(1, min(500000, (int) $maxrequests));
$maxseconds = max(1.0, min(600.0, (float) $maxseconds));
$deadline = microtime(true) + $maxseconds;

$multi = curl_multi_init();
$handles = [];
$started = [];
$sent = 0;
$out = fopen($outfile, 'w');

$inflight = 0;
$retried = [];
$launch = function ($handle, bool $retry = false) use ($multi, &$started, &$sent, &$inflight) {
    if (!$retry) {
        $started[spl_object_id($handle)] = microtime(true);
        $sent++;
    }
    curl_setopt($handle, CURLOPT_FRESH_CONNECT, $retry);
    $inflight++;
    curl_multi_add_handle($multi, $handle);
};
// A first try that a browser would send again: nothing received, on a connection that was reused.
$closedbeforeanswer = fn($handle, int $result): bool =>
    in_array($result, [CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING], true)
    && curl_getinfo($handle, CURLINFO_NUM_CONNECTS) === 0
    && curl_getinfo($handle, CURLINFO_SIZE_DOWNLOAD) == 0;
for ($i = 0; $i < $concurrency; $i++) {
    $handle = curl_init($url);
    curl_setopt_array($handle, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10,
        CURLOPT_CONNECTTIMEOUT => 5, CURLOPT_HTTPHEADER => ['Cache-Control: no-cache']]);
    $handles[] = $handle;
    $launch($handle);
}
$stopping = false;
$active = 0;
$lastcheck = 0.0;
do {
    curl_multi_exec($multi, $active);
    if (curl_multi_select($multi, 0.05) === -1) {
        usleep(1000);
    }
    curl_multi_exec($multi, $active);
    while (($info = curl_multi_info_read($multi)) !== false) {
        $handle = $info['handle'];
        $id = spl_object_id($handle);
        $end = microtime(true);
        curl_multi_remove_handle($multi, $handle);
        $inflight--;
        if (!isset($retried[$id]) && $closedbeforeanswer($handle, $info['result'])) {
            $retried[$id] = curl_strerror($info['result']);
            $launch($handle, true);
            continue;
        }
        $body = (string) curl_multi_getcontent($handle);
        fwrite($out, json_encode(['s' => $started[$id], 'e' => $end,
            'c' => curl_getinfo($handle, CURLINFO_RESPONSE_CODE), 'b' => substr($body, 0, 200),
            'x' => $info['result'] === CURLE_OK ? '' : curl_strerror($info['result']),
            'r' => $retried[$id] ?? '']) . "\n");
        unset($retried[$id]);
        $now = microtime(true);
        if ($now - $lastcheck > 0.05) {
            $lastcheck = $now;
            clearstatcache(true, $stopfile);
            $stopping = $stopping || file_exists($stopfile);
        }
        if (!$stopping && $sent < $maxrequests && $now < $deadline) {
            $launch($handle);
        }
    }
    if (!$stopping && microtime(true) - $lastcheck > 0.05) {
        $lastcheck = microtime(true);
        clearstatcache(true, $stopfile);
        $stopping = file_exists($stopfile);
    }
} while ($inflight > 0);
fclose($out);
curl_multi_close($multi);
echo json_encode(['sent' => $sent]) . "\n";
