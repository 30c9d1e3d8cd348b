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
 * Tests of the helper client against the real deliveryd (plain PHPUnit, no Moodle).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\transport_exception;

/**
 * Tests of the helper client against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\helper_client
 */
final class HelperClientTest extends \PHPUnit\Framework\TestCase {
    /** @var deliveryd_server|null The helper of the current test. */
    private ?deliveryd_server $server = null;

    /**
     * Starts a helper on a fresh site.
     */
    protected function setUp(): void {
        if (deliveryd_server::binary() === null) {
            $this->markTestSkipped('deliveryd is not built');
        }
        $this->server = new deliveryd_server();
        $this->server->start();
    }

    /**
     * Stops it.
     */
    protected function tearDown(): void {
        $this->server = null;
    }

    /**
     * Follows a job as the plugin's progress endpoint does, until it ends and every line is read.
     *
     * @param helper_client $client The client.
     * @param string $id The job id.
     * @return array The last view and all the lines.
     */
    private static function follow(helper_client $client, string $id): array {
        $lines = [];
        $offset = 0;
        $deadline = microtime(true) + 60;
        while (microtime(true) < $deadline) {
            $job = $client->job($id, $offset);
            $lines = array_merge($lines, $job['lines']);
            $offset = $job['nextOffset'];
            if ($job['state'] !== 'running' && $job['nextOffset'] >= $job['totalLines']) {
                return [$job, $lines];
            }
            usleep(100000);
        }
        throw new RuntimeException("job {$id} did not finish");
    }

    /**
     * The status of a new site: idle, production served, secure allowed.
     */
    public function test_status(): void {
        $status = $this->server->client()->status();
        $this->assertSame('idle', $status['site']['phase']);
        $this->assertSame('production', $status['site']['served']);
        $this->assertContains('secure', $status['site']['allowed']);
        $this->assertNotContains('restore', $status['site']['allowed']);
        $this->assertArrayNotHasKey('job', $status);
    }

    /**
     * A console token is issued to the administrator; the console answers with it, not without.
     */
    public function test_console_token(): void {
        $token = $this->server->client(5, 'Zélie Admin')->console_token(600);
        $this->assertMatchesRegularExpression('/^[0-9a-f]{64}$/', $token['token']);
        $this->assertSame('/delivery-console/', $token['path']);
        $this->assertGreaterThan(time() + 500, strtotime($token['expiresAt']));
        $this->assertLessThan(time() + 700, strtotime($token['expiresAt']));
    }

    /**
     * A secure job is started, followed to its end, changes the status and is in the history.
     */
    public function test_job_followed_to_its_end(): void {
        $client = $this->server->client(5, 'Zélie Admin');
        $started = $client->start_operation('secure', ['securityCopy' => true, 'securePath' => '', 'comment' => null]);
        $this->assertSame('secure', $started['operation']);
        [$job, $lines] = self::follow($client, $started['job']);
        $this->assertSame('succeeded', $job['state'], json_encode($job));
        $this->assertSame(['moodleUserId' => 5, 'name' => 'Zélie Admin', 'source' => 'moodle'], $job['actor']);
        $this->assertSame('secure', $job['steps'][0]['operation']);
        $this->assertSame('succeeded', $job['steps'][0]['state']);
        $this->assertSame(count($lines), $job['totalLines']);
        $this->assertSame('secured', $job['result']['phase']);

        $site = $client->status()['site'];
        $this->assertSame('secured', $site['phase']);
        $this->assertTrue($site['copies']['backup']['complete']);
        $this->assertTrue($site['copies']['security']['complete']);
        $this->assertContains('switch', $site['allowed']);

        $switch = $client->start_operation('switch');
        [$job] = self::follow($client, $switch['job']);
        $this->assertSame('succeeded', $job['state'], json_encode($job));
        $this->assertSame('backup', $client->status()['site']['served']);

        $history = $client->history(10);
        $this->assertSame('switch', $history[0]['operation']);
        $this->assertSame('secure', $history[1]['operation']);
        $this->assertSame('succeeded', $history[1]['result']);
        $this->assertSame(5, $history[1]['actor']['moodleUserId']);
        $this->assertCount(1, $client->history(1));
    }

    /**
     * A refusal of the engine ends the job as failed with the engine's code.
     */
    public function test_refused_operation_fails_the_job(): void {
        $client = $this->server->client();
        $started = $client->start_operation('restore');
        [$job] = self::follow($client, $started['job']);
        $this->assertSame('failed', $job['state']);
        $this->assertSame('wrong_state', $job['error']['code']);
        $this->assertSame('refused', $client->history(1)[0]['result']);
    }

    /**
     * Errors answered at once carry the helper's code and status.
     */
    public function test_errors_carry_the_code(): void {
        $client = $this->server->client();
        try {
            $client->start_operation('secure', ['securePath' => '../etc']);
            $this->fail('a bad path was accepted');
        } catch (helper_exception $error) {
            $this->assertSame('bad_path', $error->errorcode);
            $this->assertSame(400, $error->status);
            $this->assertNotInstanceOf(transport_exception::class, $error);
        }
        try {
            $client->job('20991231T000000Z-00000000');
            $this->fail('an unknown job was found');
        } catch (helper_exception $error) {
            $this->assertSame('not_found', $error->errorcode);
            $this->assertSame(404, $error->status);
        }
        $this->expectException(helper_exception::class);
        $client->start_operation('format-disk');
    }

    /**
     * A second operation while a job runs is refused with lock_held and the holder.
     */
    public function test_lock_held_names_the_holder(): void {
        $client = $this->server->client(9, 'Grace Hopper');
        $first = $client->start_operation('secure', ['securityCopy' => true]);
        try {
            $client->start_operation('secure');
            // The first job may already be over on a fast machine: then the second one simply ran.
            self::follow($client, $first['job']);
            $this->addToAssertionCount(1);
        } catch (helper_exception $error) {
            $this->assertSame('lock_held', $error->errorcode);
            $this->assertSame(409, $error->status);
            $this->assertSame('Grace Hopper', $error->get_holder()['name']);
            $this->assertSame($first['job'], $error->get_holder()['job']);
            self::follow($client, $first['job']);
        }
    }

    /**
     * A client with the wrong key is refused with bad_signature.
     */
    public function test_wrong_key(): void {
        $client = new helper_client(new \tool_delivery\local\fastcgi_client($this->server->socketpath),
            new \tool_delivery\local\request_signer(str_repeat('k', 48)), 2, 'Mallory');
        try {
            $client->status();
            $this->fail('a wrong key was accepted');
        } catch (helper_exception $error) {
            $this->assertSame('bad_signature', $error->errorcode);
            $this->assertSame(401, $error->status);
        }
    }

    /**
     * A helper that is down gives a clear transport error.
     */
    public function test_helper_down(): void {
        $client = $this->server->client();
        $this->server->stop();
        try {
            $client->status();
            $this->fail('a stopped helper answered');
        } catch (transport_exception $error) {
            $this->assertTrue($error->is_down(), $error->errorcode);
            $this->assertStringContainsString($this->server->socketpath, $error->getMessage());
        }
    }
}
