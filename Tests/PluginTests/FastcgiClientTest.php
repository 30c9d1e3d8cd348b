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
 * Tests of the FastCGI client and signing against the real deliveryd (plain PHPUnit, no Moodle).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use tool_delivery\local\fastcgi_client;
use tool_delivery\local\fastcgi_response;
use tool_delivery\local\request_signer;
use tool_delivery\local\transport_exception;

/**
 * Tests of the FastCGI client and signing against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\fastcgi_client
 * @covers     \tool_delivery\local\fastcgi_response
 */
final class FastcgiClientTest extends \PHPUnit\Framework\TestCase {
    /** @var deliveryd_server|null The helper shared by the tests of this class. */
    private static ?deliveryd_server $server = null;

    /**
     * Starts the helper once.
     */
    public static function setUpBeforeClass(): void {
        if (deliveryd_server::binary() !== null) {
            self::$server = new deliveryd_server();
            self::$server->start();
        }
    }

    /**
     * Stops it.
     */
    public static function tearDownAfterClass(): void {
        self::$server = null;
    }

    /**
     * Skips when deliveryd is not built.
     */
    protected function setUp(): void {
        if (self::$server === null) {
            $this->markTestSkipped('deliveryd is not built');
        }
    }

    /**
     * Sends a raw request with the given signing parameters.
     *
     * @param string $method The method.
     * @param string $route The route.
     * @param string $body The body.
     * @param array $signing The HTTP_X_DELIVERY_* parameters.
     * @param string $query The query string.
     * @return fastcgi_response The answer.
     */
    private function raw(string $method, string $route, string $body, array $signing, string $query = ''): fastcgi_response {
        $client = new fastcgi_client(self::$server->socketpath, 2, 10);
        return $client->request([
            'REQUEST_METHOD' => $method, 'SCRIPT_NAME' => $route, 'PATH_INFO' => '', 'QUERY_STRING' => $query,
            'CONTENT_LENGTH' => (string) strlen($body), 'CONTENT_TYPE' => 'application/json',
        ] + $signing, $body);
    }

    /**
     * The signing parameters with the server's key.
     *
     * @param string $method The method.
     * @param string $route The route.
     * @param string $body The body.
     * @param string|null $nonce The nonce, fresh when null.
     * @param int|null $timestamp The timestamp, now when null.
     * @param string $query The query string.
     * @return array The parameters.
     */
    private function signing(string $method, string $route, string $body, ?string $nonce = null,
            ?int $timestamp = null, string $query = ''): array {
        $signer = new request_signer(self::$server->key);
        return $signer->parameters($method, $route, $query, $body, 2, 'Ada Lovelace', $timestamp, $nonce);
    }

    /**
     * The error code of a JSON error answer.
     *
     * @param fastcgi_response $response The answer.
     * @return string|null The code.
     */
    private static function code(fastcgi_response $response): ?string {
        return json_decode($response->body, true)['error']['code'] ?? null;
    }

    /**
     * A signed status request is accepted, with the protocol's headers and JSON.
     */
    public function test_signed_request_is_accepted(): void {
        $response = $this->raw('GET', '/status', '', $this->signing('GET', '/status', ''));
        $this->assertSame(200, $response->status, $response->body);
        $this->assertSame('application/json', $response->header('Content-Type'));
        $this->assertSame('no-store', $response->header('cache-control'));
        $this->assertSame((string) strlen($response->body), $response->header('Content-Length'));
        $status = json_decode($response->body, true);
        $this->assertSame('idle', $status['site']['phase']);
        $this->assertSame(0, $response->appstatus);
    }

    /**
     * A body changed after signing is refused with bad_signature.
     */
    public function test_tampered_body_is_refused(): void {
        $signed = '{"operation":"secure"}';
        $response = $this->raw('POST', '/operations', '{"operation":"switch"}', $this->signing('POST', '/operations', $signed));
        $this->assertSame(401, $response->status);
        $this->assertSame('bad_signature', self::code($response));
    }

    /**
     * A route or user changed after signing is refused with bad_signature.
     */
    public function test_tampered_route_and_user_are_refused(): void {
        $response = $this->raw('GET', '/history', '', $this->signing('GET', '/status', ''));
        $this->assertSame('bad_signature', self::code($response));
        $signing = $this->signing('GET', '/status', '');
        $signing['HTTP_X_DELIVERY_USER_ID'] = '3';
        $this->assertSame('bad_signature', self::code($this->raw('GET', '/status', '', $signing)));
    }

    /**
     * A nonce accepted once is refused the second time with replayed_nonce.
     */
    public function test_replayed_nonce_is_refused(): void {
        $signing = $this->signing('GET', '/status', '');
        $this->assertSame(200, $this->raw('GET', '/status', '', $signing)->status);
        $again = $this->raw('GET', '/status', '', $signing);
        $this->assertSame(401, $again->status);
        $this->assertSame('replayed_nonce', self::code($again));
    }

    /**
     * A timestamp outside the window is refused with stale_request, missing signing with unauthenticated.
     */
    public function test_stale_and_unsigned_requests_are_refused(): void {
        $stale = $this->raw('GET', '/status', '', $this->signing('GET', '/status', '', null, time() - 3600));
        $this->assertSame(401, $stale->status);
        $this->assertSame('stale_request', self::code($stale));
        $unsigned = $this->raw('GET', '/status', '', []);
        $this->assertSame(401, $unsigned->status);
        $this->assertSame('unauthenticated', self::code($unsigned));
    }

    /**
     * A body of several FCGI_STDIN records arrives whole (the signature over it matches).
     */
    public function test_body_spanning_records(): void {
        $body = '{"operation":"format-disk"' . str_repeat(' ', 65000) . '}';
        $response = $this->raw('POST', '/operations', $body, $this->signing('POST', '/operations', $body));
        $this->assertSame(400, $response->status, $response->body);
        $this->assertSame('bad_request', self::code($response));
        $large = str_repeat(' ', 70000);
        $toolarge = $this->raw('POST', '/operations', $large, $this->signing('POST', '/operations', $large));
        $this->assertSame(413, $toolarge->status);
        $this->assertSame('body_too_large', self::code($toolarge));
    }

    /**
     * A missing socket gives helper_missing.
     */
    public function test_missing_socket(): void {
        $client = new fastcgi_client(self::$server->directory . '/run/none.sock', 1, 2);
        try {
            $client->request(['REQUEST_METHOD' => 'GET']);
            $this->fail('no error');
        } catch (transport_exception $error) {
            $this->assertSame(transport_exception::MISSING, $error->errorcode);
            $this->assertTrue($error->is_down());
            $this->assertStringContainsString('none.sock', $error->getMessage());
        }
    }

    /**
     * A socket nobody listens on gives helper_refused.
     */
    public function test_refused_socket(): void {
        $path = self::$server->directory . '/run/dead.sock';
        $socket = socket_create(AF_UNIX, SOCK_STREAM, 0);
        socket_bind($socket, $path);
        try {
            (new fastcgi_client($path, 1, 2))->request(['REQUEST_METHOD' => 'GET']);
            $this->fail('no error');
        } catch (transport_exception $error) {
            $this->assertSame(transport_exception::REFUSED, $error->errorcode);
        } finally {
            socket_close($socket);
            @unlink($path);
        }
    }

    /**
     * A responder that never answers gives helper_timeout within the time allowed.
     */
    public function test_silent_socket_times_out(): void {
        $path = self::$server->directory . '/run/silent.sock';
        $server = stream_socket_server('unix://' . $path);
        $started = microtime(true);
        try {
            (new fastcgi_client($path, 1, 1.0))->request(['REQUEST_METHOD' => 'GET']);
            $this->fail('no error');
        } catch (transport_exception $error) {
            $this->assertSame(transport_exception::TIMEOUT, $error->errorcode);
            $this->assertLessThan(3, microtime(true) - $started);
        } finally {
            fclose($server);
            @unlink($path);
        }
    }

    /**
     * A CGI answer is split into status, headers and body.
     */
    public function test_response_parsing(): void {
        $response = fastcgi_response::parse("Status: 409 Conflict\r\nContent-Type: application/json\r\n\r\n{\"a\":1}");
        $this->assertSame(409, $response->status);
        $this->assertSame('{"a":1}', $response->body);
        $this->assertSame(200, fastcgi_response::parse("Content-Type: text/plain\n\nok")->status);
        $this->expectException(transport_exception::class);
        fastcgi_response::parse('no headers at all');
    }
}
