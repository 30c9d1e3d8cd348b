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
use tool_delivery\local\preflight_verdict;
use tool_delivery\local\transport_exception;

/**
 * Tests of the helper client against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\helper_client
 * @covers     \tool_delivery\local\preflight_verdict
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
     * A site of one node: its status names no farm, and the helper's farm lists no node.
     */
    public function test_farm_of_one_node(): void {
        $client = $this->server->client();
        $this->assertEmpty($client->status()['site']['farmNodes'] ?? null);
        $this->assertSame([], $client->farm());
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
        // The name and id are what the request claims; the peer's uid is what the kernel says.
        $this->assertSame(['claimed' => true, 'moodleUserId' => 5, 'name' => 'Zélie Admin',
            'peerUid' => posix_getuid(), 'source' => 'moodle'], $job['actor']);
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
     * Secures the site (both copies) and switches to delivery, as the screen's steps 1 and 2 do.
     *
     * @param helper_client $client The client.
     */
    private static function secure_and_switch(helper_client $client): void {
        foreach ([['secure', ['securityCopy' => true]], ['switch', []]] as [$operation, $options]) {
            [$job] = self::follow($client, $client->start_operation($operation, $options)['job']);
            if ($job['state'] !== 'succeeded') {
                throw new RuntimeException("{$operation} failed: " . json_encode($job));
            }
        }
    }

    /**
     * The Check button before anything is secured: the helper has nothing to compare with.
     */
    public function test_preflight_without_a_copy(): void {
        try {
            $this->server->client()->preflight();
            $this->fail('a preflight ran without a backup copy');
        } catch (helper_exception $error) {
            $this->assertSame('copy_missing', $error->errorcode);
            $this->assertSame(409, $error->status);
            $this->assertSame('error:copymissing', $error->get_string_key());
        }
    }

    /**
     * A clean delivery: nothing changed, nothing blocks; every list is there, empty.
     */
    public function test_preflight_ready(): void {
        $client = $this->server->client();
        self::secure_and_switch($client);
        $report = $client->preflight();
        foreach (['added', 'changed', 'removed', 'lintErrors', 'versionChanges', 'localModifications', 'untrackedFiles',
                'missingFiles', 'inconsistentComponents', 'conflictMarkers'] as $name) {
            $this->assertSame([], $report[$name], $name);
        }
        $this->assertIsArray($report['warnings']);
        $this->assertSame([false, []], [$report['blocking'], $report['blockers']], 'the helper says nothing blocks');
        $this->assertTrue($report['phpVersion']['satisfied']);
        $this->assertSame([], preflight_verdict::reasons($report));
        $this->assertFalse(preflight_verdict::blocking($report));
        // The check changes nothing.
        $this->assertSame('delivering', $client->status()['site']['phase']);
    }

    /**
     * A broken update: a syntax error with a conflict marker, a version going backwards, a tracked
     * file missing and a file not under version control. The report names each, and blocks.
     */
    public function test_preflight_blocked(): void {
        $client = $this->server->client();
        self::secure_and_switch($client);
        $production = $this->server->production();
        file_put_contents($production . '/mod/forum/lib.php', "<?php\n<<<<<<< HEAD\nforum(\n");
        file_put_contents($production . '/mod/forum/version.php', "<?php\n\$plugin->version = 2020010100;\n");
        file_put_contents($production . '/mod/forum/locallib.php', "<?php // forgotten in a commit\n");
        // Same size, older content: the version goes backwards.
        file_put_contents($production . '/version.php', "<?php\n\$version = 2024100600;\n");
        unlink($production . '/mod/forum/version.php');
        $report = $client->preflight();

        $this->assertSame(['mod/forum/locallib.php'], $report['added']);
        $this->assertContains('mod/forum/lib.php', $report['changed']);
        $this->assertContains('version.php', $report['changed']);
        $this->assertSame(['mod/forum/version.php'], $report['removed']);
        $this->assertSame(['mod/forum/lib.php' => 2], $report['conflictMarkers']);
        $this->assertCount(1, $report['lintErrors']);
        $this->assertSame('mod/forum/lib.php', $report['lintErrors'][0]['file']);
        $this->assertSame(2, $report['lintErrors'][0]['line']);
        $this->assertStringNotContainsString($production, $report['lintErrors'][0]['message']);
        $core = array_values(array_filter($report['versionChanges'], fn($change) => $change['component'] === ''));
        $this->assertSame([['after' => '2024100600', 'backwards' => true, 'before' => '2024100700', 'component' => '']],
            $core);
        $this->assertSame(['mod/forum/version.php'], $report['missingFiles']);
        $this->assertSame(['mod/forum/locallib.php'], $report['untrackedFiles']);
        $this->assertNotEmpty($report['localModifications']);

        $this->assertTrue($report['blocking'], 'the helper says it blocks');
        $this->assertSame(['lint', 'conflicts', 'backwards', 'missing'], array_column($report['blockers'], 'code'));
        $this->assertTrue(preflight_verdict::blocking($report));
        $reasons = preflight_verdict::reasons($report);
        $this->assertSame(['lint', 'conflicts', 'backwards', 'missing'], array_column($reasons, 'reason'));
        $this->assertSame(1, $reasons[0]['count']);
        $this->assertSame(['reason' => 'backwards', 'component' => '', 'before' => '2024100700', 'after' => '2024100600'],
            $reasons[2]);

        // Restore production refuses it with the code the screen words.
        [$job] = self::follow($client, $client->start_operation('restore')['job']);
        $this->assertSame('failed', $job['state']);
        $this->assertSame('preflight_failed', $job['error']['code']);
    }

    /**
     * The status carries the rollback plan: code only while no upgrade changed the database, and
     * no snapshot, health check or open window yet.
     */
    public function test_status_rollback_plan(): void {
        $client = $this->server->client();
        $site = $client->status()['site'];
        $this->assertSame('unavailable', $site['rollback']['kind']);
        $this->assertFalse($site['rollback']['needsConfirmation']);
        $this->assertNotSame('', $site['rollback']['explanation']);
        $this->assertFalse($site['deliveryWindowOpen']);
        $this->assertArrayNotHasKey('snapshot', $site);
        $this->assertArrayNotHasKey('lastHealthCheck', $site);

        self::secure_and_switch($client);
        $plan = $client->status()['site']['rollback'];
        $this->assertSame('code', $plan['kind']);
        $this->assertSame('security', $plan['target']);
        $this->assertFalse($plan['needsConfirmation']);
        $this->assertArrayNotHasKey('snapshot', $plan);
    }

    /**
     * Once the upgrade changed the database and the site was open since the snapshot, the plan is
     * code and database and needs the confirmation: a rollback without it is refused with
     * confirmation_required, one with it goes on (and fails further, on this site without Moodle).
     */
    public function test_rollback_needs_the_confirmation(): void {
        $client = $this->server->client(7, 'Margaret Hamilton');
        self::secure_and_switch($client);
        $dump = $this->server->directory . '/snapshot.sql';
        file_put_contents($dump, "-- a dump\n");
        $takenat = gmdate('Y-m-d\\TH:i:s.000\\Z', time() - 7500);
        $checkedat = gmdate('Y-m-d\\TH:i:s.000\\Z', time() - 60);
        $this->server->change_state(function(stdClass $state) use ($dump, $takenat, $checkedat): void {
            $state->databaseAhead = true;
            $state->deliveryWindowOpen = false;
            $state->snapshot = (object) ['id' => $state->deliveryId, 'file' => $dump, 'databaseType' => 'pgsql',
                'database' => 'moodle', 'tableCount' => 412, 'takenAt' => $takenat, 'sizeBytes' => 41100000,
                'seconds' => 12.5, 'codeRevision' => $state->copies->security->revision];
            $state->lastHealthCheck = (object) ['passed' => false, 'checkedAt' => $checkedat,
                'results' => ['login page: HTTP 500'], 'failures' => ['the login page answered HTTP 500']];
        });

        $site = $client->status()['site'];
        $plan = $site['rollback'];
        $this->assertSame('code_and_database', $plan['kind']);
        $this->assertTrue($plan['needsConfirmation']);
        $this->assertSame('security', $plan['target']);
        $this->assertEqualsWithDelta(7500, $plan['snapshotAgeSeconds'], 30);
        $this->assertSame(41100000, $plan['snapshot']['sizeBytes']);
        $this->assertSame(412, $site['snapshot']['tableCount']);
        $this->assertSame('moodle', $site['snapshot']['database']);
        $this->assertSame('pgsql', $site['snapshot']['databaseType']);
        $this->assertSame(12.5, $site['snapshot']['seconds']);
        $this->assertSame(strtotime($takenat), strtotime($site['snapshot']['takenAt']));
        $this->assertFalse($site['deliveryWindowOpen']);
        $this->assertFalse($site['lastHealthCheck']['passed']);
        $this->assertSame(['the login page answered HTTP 500'], $site['lastHealthCheck']['failures']);
        $this->assertSame(['login page: HTTP 500'], $site['lastHealthCheck']['results']);

        [$job] = self::follow($client, $client->start_operation('rollback')['job']);
        $this->assertSame('failed', $job['state']);
        $this->assertSame('confirmation_required', $job['error']['code']);
        $this->assertSame('delivering', $client->status()['site']['phase'], 'a refused rollback changes nothing');
        $this->assertSame('confirmation_required', $client->history(1)[0]['errorCode']);
        $this->assertSame(7, $client->history(1)[0]['actor']['moodleUserId']);

        // Confirmed with the plugin's key alone, the restore needs the administrator's second factor.
        [$job] = self::follow($client, $client->start_operation('rollback', ['confirmDatabaseRestore' => true])['job']);
        $this->assertSame('second_factor_required', $job['error']['code'] ?? '', json_encode($job));
        $this->assertSame('delivering', $client->status()['site']['phase'], 'a refused rollback changes nothing');
        $secret = $this->server->enrol(7);
        $this->assertSame([7], $client->status()['site']['secondFactorEnrolled']);
        [$job] = self::follow($client, $client->start_operation('rollback', ['confirmDatabaseRestore' => true,
            'secondFactorCode' => deliveryd_server::totp($secret, -3600)])['job']);
        $this->assertSame('second_factor_refused', $job['error']['code'] ?? '', json_encode($job));
        $this->assertSame('second_factor_refused', $client->history(1)[0]['errorCode']);
        [$job, $lines] = self::follow($client, $client->start_operation('rollback', ['confirmDatabaseRestore' => true,
            'secondFactorCode' => deliveryd_server::totp($secret)])['job']);
        $this->assertStringNotContainsString('second_factor', $job['error']['code'] ?? '', json_encode($job));
        $this->assertStringContainsString('snapshot', implode("\n", $lines));
    }

    /**
     * confirmDatabaseRestore is sent as a JSON boolean (the helper refuses any other type).
     */
    public function test_confirmation_is_a_boolean(): void {
        $client = $this->server->client();
        self::secure_and_switch($client);
        [$job] = self::follow($client, $client->start_operation('rollback', ['confirmDatabaseRestore' => '1'])['job']);
        $this->assertSame('succeeded', $job['state'], json_encode($job));
        $this->assertSame('security', $client->status()['site']['served']);
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
        try {
            $client->start_operation('switch', ['comment' => 'not taken']);
            $this->fail('an option switch does not take was sent');
        } catch (helper_exception $error) {
            $this->assertSame('bad_request', $error->errorcode);
            $this->assertStringContainsString("'switch' takes no option 'comment'", $error->getMessage());
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
