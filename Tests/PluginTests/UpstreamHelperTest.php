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
 * Tests of the upstream watch, deliver later and the delivery reports against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_messaging_stubs.php');

use tool_delivery\local\helper_exception;
use tool_delivery\local\upstream_summary;

/**
 * Tests of the upstream watch, deliver later and the delivery reports against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\helper_client
 * @covers     \tool_delivery\local\upstream_summary
 */
final class UpstreamHelperTest extends \PHPUnit\Framework\TestCase {
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
     * Runs a program in a folder; fails the test when it fails.
     *
     * @param string[] $argv The program and its arguments.
     * @param string $directory The folder.
     */
    private function run_program(array $argv, string $directory): void {
        exec('cd ' . escapeshellarg($directory) . ' && ' . implode(' ', array_map('escapeshellarg', $argv)) . ' 2>&1',
            $output, $status);
        $this->assertSame(0, $status, implode("\n", $output));
    }

    /**
     * Someone pushes a commit to the site's upstream.
     */
    private function push_upstream_commit(): void {
        $clone = $this->server->directory . '/pusher';
        $this->run_program(['git', 'clone', '-q', $this->server->directory . '/upstream.git', $clone], $this->server->directory);
        file_put_contents($clone . '/notes.txt', "new\n");
        $this->run_program(['git', 'add', 'notes.txt'], $clone);
        $this->run_program(['git', '-c', 'user.email=ada@example.org', '-c', 'user.name=Ada', 'commit', '-q', '-m',
            'Add notes'], $clone);
        $this->run_program(['git', 'push', '-q', 'origin', 'HEAD:main'], $clone);
    }

    /**
     * The upstream watch sees production current, then a pushed commit waiting; deliver later
     * schedules that revision once, refuses another, and cancels.
     */
    public function test_upstream_and_deliver_later(): void {
        $client = $this->server->client();
        $preview = $client->check_upstream();
        $this->assertFalse($preview['waiting']);
        $this->push_upstream_commit();
        $preview = $client->check_upstream();
        $summary = new upstream_summary($preview);
        $this->assertTrue($summary->waiting());
        $this->assertSame('Ada', $summary->commits()[0]['author']);
        $this->assertSame('Add notes', $summary->commits()[0]['subject']);
        $this->assertStringContainsString('Commits: 1. Files: 1 added', $summary->counts());
        $this->assertSame($preview['upstream']['id'], $client->status()['site']['upstream']['upstream']['id']);

        $at = gmdate('Y-m-d\TH:i:s\Z', time() + 3600);
        try {
            $client->schedule($at, 'not-the-revision', true, false, null);
            $this->fail('another revision was scheduled');
        } catch (helper_exception $error) {
            $this->assertSame('schedule_stale', $error->errorcode);
        }
        $schedule = $client->schedule($at, $summary->revision_id(), true, false, 'tonight');
        $this->assertSame($summary->revision_id(), $schedule['revision']['id']);
        $site = $client->status()['site'];
        $this->assertSame('tonight', $site['schedule']['comment']);
        $this->assertTrue($site['schedule']['onlyIfPreflightPasses']);
        try {
            $client->schedule($at, $summary->revision_id(), true, false, null);
            $this->fail('a second schedule was set');
        } catch (helper_exception $error) {
            $this->assertSame('schedule_exists', $error->errorcode);
        }
        $this->assertSame($schedule['id'], $client->cancel_schedule()['id']);
        $this->assertArrayNotHasKey('schedule', $client->status()['site']);
        try {
            $client->cancel_schedule();
            $this->fail('nothing to cancel was cancelled');
        } catch (helper_exception $error) {
            $this->assertSame(['not_found', 404], [$error->errorcode, $error->status]);
        }
        $results = array_column($client->history(5), 'result');
        $this->assertSame(['unscheduled', 'scheduled'], array_slice($results, 0, 2));
    }

    /**
     * A delivery's report is asked by its id; an unknown id is not found, a malformed one never sent.
     */
    public function test_reports(): void {
        $client = $this->server->client();
        $job = $client->start_operation('secure')['job'];
        $deadline = microtime(true) + 30;
        while ($client->job($job)['state'] === 'running' && microtime(true) < $deadline) {
            usleep(50000);
        }
        $record = $client->history(1)[0];
        $report = $client->report($record['deliveryId']);
        $this->assertSame($record['deliveryId'], $report['deliveryId']);
        $this->assertSame('secure', $report['steps'][0]['operation']);
        foreach (['20200101T000000Z-00000000', '../status'] as $id) {
            try {
                $client->report($id);
                $this->fail("report {$id}");
            } catch (helper_exception $error) {
                $this->assertSame('not_found', $error->errorcode);
            }
        }
    }
}
