<?php
// The code an authenticator app shows (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), for the
// tests that play the administrator.
//
// Usage: php totp.php SECRET_BASE32 [SECONDS_FROM_NOW]

$secret = rtrim(strtoupper($argv[1] ?? ''), '=');
$bits = '';
foreach (str_split($secret) as $character) {
    $value = strpos('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', $character);
    if ($value === false) {
        fwrite(STDERR, "not base 32: {$secret}\n");
        exit(2);
    }
    $bits .= str_pad(decbin($value), 5, '0', STR_PAD_LEFT);
}
$key = '';
foreach (str_split(substr($bits, 0, intdiv(strlen($bits), 8) * 8), 8) as $byte) {
    $key .= chr(bindec($byte));
}
$mac = hash_hmac('sha1', pack('J', intdiv(time() + (int) ($argv[2] ?? 0), 30)), $key, true);
$start = ord($mac[19]) & 0x0f;
echo str_pad((string) ((unpack('N', substr($mac, $start, 4))[1] & 0x7fffffff) % 1000000), 6, '0', STR_PAD_LEFT), "\n";
