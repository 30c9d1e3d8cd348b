<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Signs requests to the delivery helper (DELIVERYD-HMAC-SHA256, docs/protocol.md).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Signs requests to the delivery helper (DELIVERYD-HMAC-SHA256, docs/protocol.md).
 *
 * The canonical string is nine lines joined by LF, without a final newline: the scheme, the
 * method, the route (SCRIPT_NAME followed by PATH_INFO), the query string, the timestamp, the
 * nonce, the Moodle user id, the percent-encoded user name and the lowercase hex SHA-256 of the
 * body. The signature is the lowercase hex HMAC-SHA256 of it with the shared key. It has no
 * Moodle dependency.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class request_signer {
    /** @var string The first line of the canonical string. */
    public const SCHEME = 'DELIVERYD-HMAC-SHA256';

    /** @var int The fewest key bytes the helper accepts. */
    public const MIN_KEY_BYTES = 32;

    /** @var int The most characters of a user name, once decoded. */
    public const MAX_NAME_CHARS = 200;

    /** @var string Error code: the key file cannot be read. */
    public const KEY_UNREADABLE = 'key_unreadable';

    /** @var string Error code: the key is shorter than 32 bytes. */
    public const KEY_SHORT = 'key_short';

    /** @var string The shared key. */
    private string $key;

    /**
     * Makes a signer with a key.
     *
     * @param string $key The shared key (at least 32 bytes).
     * @throws helper_exception With `key_short` when the key is too short.
     */
    public function __construct(string $key) {
        if (strlen($key) < self::MIN_KEY_BYTES) {
            throw new helper_exception(self::KEY_SHORT, 'the helper key holds fewer than 32 bytes');
        }
        $this->key = $key;
    }

    /**
     * Makes a signer from a key file: its content less trailing white space.
     *
     * @param string $path The key file.
     * @return self The signer.
     * @throws helper_exception With `key_unreadable` or `key_short`.
     */
    public static function from_key_file(string $path): self {
        if ($path === '' || !is_file($path) || !is_readable($path)) {
            throw new helper_exception(self::KEY_UNREADABLE, "the helper key file {$path} cannot be read");
        }
        $content = @file_get_contents($path, false, null, 0, 4096);
        if ($content === false) {
            throw new helper_exception(self::KEY_UNREADABLE, "the helper key file {$path} cannot be read");
        }
        return new self(rtrim($content, "\r\n\t "));
    }

    /**
     * The canonical string of a request.
     *
     * @param string $method `GET`, `POST`, `PUT` or `DELETE`.
     * @param string $route The route, such as `/jobs/20261125T153144Z-f5d54a88`.
     * @param string $query The query string, or ''.
     * @param string $timestamp The timestamp, as sent.
     * @param string $nonce The nonce, as sent.
     * @param string $userid The Moodle user id, as sent.
     * @param string $username The percent-encoded user name, as sent.
     * @param string $body The body bytes.
     * @return string The nine lines.
     */
    public static function canonical_string(
        string $method,
        string $route,
        string $query,
        string $timestamp,
        string $nonce,
        string $userid,
        string $username,
        string $body
    ): string {
        return implode("\n", [self::SCHEME, $method, $route, $query, $timestamp, $nonce, $userid, $username,
            hash('sha256', $body)]);
    }

    /**
     * The signature of a canonical string.
     *
     * @param string $canonical The canonical string.
     * @return string 64 lowercase hex digits.
     */
    public function sign(string $canonical): string {
        return hash_hmac('sha256', $canonical, $this->key);
    }

    /**
     * The signing parameters of a request, as FastCGI parameters (`HTTP_X_DELIVERY_*`).
     *
     * @param string $method `GET`, `POST`, `PUT` or `DELETE`.
     * @param string $route The route.
     * @param string $query The query string, or ''.
     * @param string $body The body bytes.
     * @param int $userid The Moodle user id.
     * @param string $fullname The user's full name (plain UTF-8; encoded here).
     * @param int|null $timestamp The Unix time to send (now when null).
     * @param string|null $nonce The nonce to send (32 random hex digits when null).
     * @return array Parameter name => value.
     */
    public function parameters(
        string $method,
        string $route,
        string $query,
        string $body,
        int $userid,
        string $fullname,
        ?int $timestamp = null,
        ?string $nonce = null
    ): array {
        $timestamp = (string) ($timestamp ?? time());
        $nonce = $nonce ?? self::new_nonce();
        $username = self::encode_name($fullname, $userid);
        $canonical = self::canonical_string(
            $method,
            $route,
            $query,
            $timestamp,
            $nonce,
            (string) $userid,
            $username,
            $body
        );
        return [
            'HTTP_X_DELIVERY_TIMESTAMP' => $timestamp,
            'HTTP_X_DELIVERY_NONCE' => $nonce,
            'HTTP_X_DELIVERY_USER_ID' => (string) $userid,
            'HTTP_X_DELIVERY_USER_NAME' => $username,
            'HTTP_X_DELIVERY_SIGNATURE' => $this->sign($canonical),
        ];
    }

    /**
     * A fresh nonce: 32 hex digits of 16 random bytes.
     *
     * @return string The nonce.
     */
    public static function new_nonce(): string {
        return bin2hex(random_bytes(16));
    }

    /**
     * A user name as the helper takes it: control characters replaced by spaces, at most 200
     * characters, never empty, percent-encoded as `rawurlencode` does.
     *
     * @param string $fullname The name, UTF-8.
     * @param int $userid The user id (names an otherwise empty name).
     * @return string The encoded name.
     */
    public static function encode_name(string $fullname, int $userid): string {
        if (!mb_check_encoding($fullname, 'UTF-8')) {
            $fullname = mb_convert_encoding($fullname, 'UTF-8', 'UTF-8');
        }
        $name = trim(preg_replace('/[\x{0}-\x{1F}\x{7F}-\x{9F}]/u', ' ', $fullname) ?? '');
        if ($name === '') {
            $name = 'user ' . $userid;
        }
        return rawurlencode(mb_substr($name, 0, self::MAX_NAME_CHARS, 'UTF-8'));
    }
}
