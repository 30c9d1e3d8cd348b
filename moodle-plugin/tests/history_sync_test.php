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

namespace tool_delivery;

use tool_delivery\local\history_sync;

/**
 * The helper's audit log into Moodle's logs: each operation once, as its events.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\history_sync
 * @covers     \tool_delivery\event\delivery_event
 */
final class history_sync_test extends \advanced_testcase {
    /** @var array[] The helper's audit log, newest first, as GET /history answers. */
    private array $log = [];

    /**
     * A synchroniser reading $this->log instead of a helper.
     *
     * @return history_sync The synchroniser.
     */
    private function sync(): history_sync {
        return new history_sync(fn(int $limit, int $offset): array => array_slice($this->log, $offset, $limit));
    }

    /**
     * Writes one record into the fake audit log, as the helper does when an operation ends.
     *
     * @param string $id The job id.
     * @param string $operation The operation.
     * @param string $result succeeded, failed or refused.
     * @param array $extra More members (actor, databaseRestored, errorCode…).
     */
    private function record(string $id, string $operation, string $result, array $extra = []): void {
        array_unshift($this->log, array_merge([
            'id' => $id, 'operation' => $operation, 'result' => $result,
            'time' => gmdate('Y-m-d\TH:i:s\Z'), 'phaseAfter' => 'idle',
            'actor' => ['name' => 'root', 'source' => 'cli', 'peerUid' => 0],
        ], $extra));
    }

    /**
     * Each record becomes its event once; operations from the server carry no Moodle user, those
     * from Moodle carry the administrator's id; a rollback that restored the database adds its event.
     */
    public function test_each_operation_once(): void {
        $this->resetAfterTest();
        set_config('historysince', time() - 60, 'tool_delivery');
        $admin = get_admin();
        $this->record('job-1', 'run-all', 'succeeded');
        $this->record('job-2', 'restore', 'failed', ['errorCode' => 'upgrade_failed', 'databaseRestored' => true,
            'actor' => ['name' => fullname($admin), 'source' => 'moodle', 'moodleUserId' => (int) $admin->id]]);
        $sink = $this->redirectEvents();
        $this->assertSame(2, $this->sync()->run());
        $events = $sink->get_events();
        $this->assertCount(3, $events);
        $this->assertInstanceOf(event\step_finished::class, $events[0]);
        $this->assertSame(0, (int) $events[0]->userid);
        $this->assertSame(['run-all', 'job-1', 'cli'], [$events[0]->other['operation'], $events[0]->other['job'],
            $events[0]->other['source']]);
        $this->assertInstanceOf(event\step_failed::class, $events[1]);
        $this->assertSame((int) $admin->id, (int) $events[1]->userid);
        $this->assertSame('upgrade_failed', $events[1]->other['errorcode']);
        $this->assertInstanceOf(event\database_restored::class, $events[2]);
        $this->assertSame(\context_system::instance()->id, $events[2]->get_context()->id);
        $sink->clear();

        $this->assertSame(0, $this->sync()->run(), 'nothing new: nothing logged again');
        $this->record('job-3', 'rollback', 'succeeded');
        $this->assertSame(1, $this->sync()->run());
        $this->assertInstanceOf(event\rolled_back::class, $sink->get_events()[0]);
        $this->assertNotEmpty($sink->get_events()[0]->get_description());
        $sink->close();
    }

    /**
     * A database restore takes the plugin's record of what it logged back with Moodle's logs: the
     * operations since are logged again, into the database where they are missing.
     */
    public function test_logged_again_after_a_database_restore(): void {
        $this->resetAfterTest();
        set_config('historysince', time() - 60, 'tool_delivery');
        $this->record('job-1', 'secure', 'succeeded');
        $this->assertSame(1, $this->sync()->run());
        $before = get_config('tool_delivery', 'historylastid');
        $this->record('job-2', 'restore', 'succeeded');
        $this->record('job-3', 'rollback', 'succeeded', ['databaseRestored' => true]);
        $this->assertSame(2, $this->sync()->run());
        set_config('historylastid', $before, 'tool_delivery');
        $sink = $this->redirectEvents();
        $this->assertSame(2, $this->sync()->run());
        $this->assertSame(['job-2', 'job-3', 'job-3'], array_map(fn($event) => $event->other['job'], $sink->get_events()));
        $sink->close();
    }

    /**
     * Before logging starts (install or upgrade), nothing older is logged; without a start, the
     * first run starts it now.
     */
    public function test_starts_from_install(): void {
        $this->resetAfterTest();
        unset_config('historysince', 'tool_delivery');
        $this->record('old', 'secure', 'succeeded', ['time' => '2020-01-01T00:00:00Z']);
        $this->assertSame(0, $this->sync()->run());
        $this->assertGreaterThan(time() - 60, (int) get_config('tool_delivery', 'historysince'));
        $this->record('new', 'switch', 'succeeded');
        $this->assertSame(1, $this->sync()->run());
        $this->assertSame('new', get_config('tool_delivery', 'historylastid'));
    }

    /**
     * The scheduled task runs the synchronisation, and says so when the helper does not answer.
     */
    public function test_task_with_the_helper_down(): void {
        $this->resetAfterTest();
        set_config('socketpath', make_request_directory() . '/none.sock', 'tool_delivery');
        $keyfile = make_request_directory() . '/key';
        file_put_contents($keyfile, str_repeat('k', 48));
        set_config('keyfile', $keyfile, 'tool_delivery');
        $this->expectOutputRegex('/the helper did not answer/');
        (new task\sync_history())->execute();
    }
}
