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
 * Tests of the request signer (plain PHPUnit, no Moodle).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;

/**
 * Tests of the request signer.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\request_signer
 */
final class RequestSignerTest extends \PHPUnit\Framework\TestCase {
    /** @var string The protocol's test vector key. */
    private const KEY = '0123456789abcdef0123456789abcdef';

    /**
     * The test vector of docs/protocol.md gives its signature.
     */
    public function test_protocol_vector(): void {
        $body = '{"operation":"secure","securePath":"mod/forum"}';
        $this->assertSame('b5ab292609d5568953e92c5357094dd2791da689ad56ab81b23f61e7bb7459f6', hash('sha256', $body));
        $signer = new request_signer(self::KEY);
        $canonical = request_signer::canonical_string('POST', '/operations', '', '1764084704',
            '3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f', '2', 'Ada%20Lovelace', $body);
        $this->assertSame("DELIVERYD-HMAC-SHA256\nPOST\n/operations\n\n1764084704\n3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f\n2\n"
            . "Ada%20Lovelace\nb5ab292609d5568953e92c5357094dd2791da689ad56ab81b23f61e7bb7459f6", $canonical);
        $this->assertSame('8c4bf2a464705877ac84790776e767bc369fa42f9651b2b2329a789bcb350ddd', $signer->sign($canonical));
        $params = $signer->parameters('POST', '/operations', '', $body, 2, 'Ada Lovelace', 1764084704,
            '3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f');
        $this->assertSame([
            'HTTP_X_DELIVERY_TIMESTAMP' => '1764084704',
            'HTTP_X_DELIVERY_NONCE' => '3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f',
            'HTTP_X_DELIVERY_USER_ID' => '2',
            'HTTP_X_DELIVERY_USER_NAME' => 'Ada%20Lovelace',
            'HTTP_X_DELIVERY_SIGNATURE' => '8c4bf2a464705877ac84790776e767bc369fa42f9651b2b2329a789bcb350ddd',
        ], $params);
    }

    /**
     * Fresh parameters carry the time, a new 32-hex-digit nonce each time, and a valid signature.
     */
    public function test_fresh_parameters(): void {
        $signer = new request_signer(self::KEY);
        $first = $signer->parameters('GET', '/status', '', '', 7, 'Grace Hopper');
        $second = $signer->parameters('GET', '/status', '', '', 7, 'Grace Hopper');
        $this->assertMatchesRegularExpression('/^[0-9a-f]{32}$/', $first['HTTP_X_DELIVERY_NONCE']);
        $this->assertNotSame($first['HTTP_X_DELIVERY_NONCE'], $second['HTTP_X_DELIVERY_NONCE']);
        $this->assertEqualsWithDelta(time(), (int) $first['HTTP_X_DELIVERY_TIMESTAMP'], 2);
        $canonical = request_signer::canonical_string('GET', '/status', '', $first['HTTP_X_DELIVERY_TIMESTAMP'],
            $first['HTTP_X_DELIVERY_NONCE'], '7', 'Grace%20Hopper', '');
        $this->assertStringEndsWith('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', $canonical);
        $this->assertSame(hash_hmac('sha256', $canonical, self::KEY), $first['HTTP_X_DELIVERY_SIGNATURE']);
    }

    /**
     * Names are percent-encoded as rawurlencode does, cleaned of control characters and bounded.
     */
    public function test_name_encoding(): void {
        $this->assertSame('Ada%20Lovelace', request_signer::encode_name('Ada Lovelace', 2));
        $this->assertSame('Z%C3%A9lie%20d%27Arc-%C3%89t%C3%A9_~.', request_signer::encode_name("Zélie d'Arc-Été_~.", 2));
        $this->assertSame('a%20b', request_signer::encode_name("a\nb", 2));
        $this->assertSame('user%203', request_signer::encode_name(" \t", 3));
        $long = request_signer::encode_name(str_repeat('é', 300), 2);
        $this->assertSame(200, mb_strlen(rawurldecode($long)));
    }

    /**
     * A key file loses its trailing white space; short or missing keys are refused with a code.
     */
    public function test_key_file(): void {
        $path = tempnam(sys_get_temp_dir(), 'tool-delivery-key');
        try {
            file_put_contents($path, self::KEY . " \r\n");
            $signer = request_signer::from_key_file($path);
            $this->assertSame(hash_hmac('sha256', 'x', self::KEY), $signer->sign('x'));
            file_put_contents($path, "short\n");
            try {
                request_signer::from_key_file($path);
                $this->fail('a short key was accepted');
            } catch (helper_exception $error) {
                $this->assertSame('key_short', $error->errorcode);
                $this->assertSame('error:keyshort', $error->get_string_key());
            }
        } finally {
            unlink($path);
        }
        try {
            request_signer::from_key_file($path);
            $this->fail('a missing key file was accepted');
        } catch (helper_exception $error) {
            $this->assertSame('key_unreadable', $error->errorcode);
        }
    }
}
