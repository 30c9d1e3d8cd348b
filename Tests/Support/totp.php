<?php
// The code an authenticator app shows (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), for the
// tests that play the administrator: required by the plugin's test harness, or run directly.
//
// Usage: php totp.php SECRET_BASE32 [SECONDS_FROM_NOW]

/**
 * The code of a base-32 secret at a moment.
 *
 * @param string $secret The secret in base 32.
 * @param int $offset Seconds from now.
 * @return string The six digits.
 */
function delivery_test_totp(string $secret, int $offset = 0): string {
    $bits = '';
    foreach (str_split(rtrim(strtoupper($secret), '=')) as $character) {
        $value = strpos('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', $character);
        if ($value === false) {
            throw new InvalidArgumentException("not base 32: {$secret}");
        }
        $bits .= str_pad(decbin($value), 5, '0', STR_PAD_LEFT);
    }
    $key = '';
    foreach (str_split(substr($bits, 0, intdiv(strlen($bits), 8) * 8), 8) as $byte) {
        $key .= chr(bindec($byte));
    }
    $mac = hash_hmac('sha1', pack('J', intdiv(time() + $offset, 30)), $key, true);
    $start = ord($mac[19]) & 0x0f;
    return str_pad((string) ((unpack('N', substr($mac, $start, 4))[1] & 0x7fffffff) % 1000000), 6, '0', STR_PAD_LEFT);
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    echo delivery_test_totp($argv[1] ?? '', (int) ($argv[2] ?? 0)), "\n";
}
