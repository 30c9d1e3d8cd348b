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
 * Brings the helper's audit log into Moodle's logs: one event per operation, exactly once.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

use tool_delivery\event\database_restored;
use tool_delivery\event\rolled_back;
use tool_delivery\event\schedule_cancelled;
use tool_delivery\event\schedule_set;
use tool_delivery\event\step_failed;
use tool_delivery\event\step_finished;

/**
 * Brings the helper's audit log into Moodle's logs: one event per operation, exactly once.
 *
 * Whoever started an operation (the delivery screen, deliveryctl on the server, the emergency
 * console), the helper writes one audit record for it, keyed by its job id. The scheduled task
 * (every minute) and each view of the delivery screen read the records newer than the last one
 * logged, oldest first, and trigger their events. The last logged record (its id and time) is kept
 * in the plugin's configuration (its id), so each record becomes events once; when a rollback restores the
 * database snapshot, that configuration goes back with Moodle's logs, and the records since then
 * are logged again into the restored database, where they are missing. Each new record also keeps
 * its delivery's report and sends its notification ({@see delivery_followup}); the notifications
 * are remembered outside the database, so a record logged again is not notified again.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class history_sync {
    /** @var int Records asked for in one request. */
    private const PAGE = 100;

    /** @var int The most records one run reads (older ones are left: they were logged before). */
    private const MOST = 1000;

    /** @var \Closure Reads one page of the helper's audit log: (int $limit, int $offset): array, newest first. */
    private \Closure $pages;

    /** @var \Closure Receives each new record, oldest first: triggers its events. */
    private \Closure $emit;

    /**
     * Makes the synchroniser.
     *
     * @param helper_client|\Closure $history The helper, or what reads a page of its audit log
     *        (int $limit, int $offset): array, newest first.
     * @param \Closure|null $emit Receives each new record (array), oldest first; default: its Moodle
     *        events, then its delivery's report and notification ({@see delivery_followup}).
     */
    public function __construct(helper_client|\Closure $history, ?\Closure $emit = null) {
        $this->pages = $history instanceof helper_client
            ? fn(int $limit, int $offset): array => $history->history($limit, $offset)
            : $history;
        $client = $history instanceof helper_client ? $history : null;
        $this->emit = $emit ?? function (array $record) use ($client): void {
            self::trigger_events($record);
            delivery_followup::in_moodle($client)->handle($record);
        };
    }

    /**
     * Runs once, under Moodle's lock, so that the task and a page view never log a record twice.
     *
     * @return int The records logged, 0 when another run holds the lock.
     */
    public function run_locked(): int {
        $factory = \core\lock\lock_config::get_lock_factory('tool_delivery');
        $lock = $factory->get_lock('historysync', 5);
        if (!$lock) {
            return 0;
        }
        try {
            return $this->run();
        } finally {
            $lock->release();
        }
    }

    /**
     * Logs the records newer than the last one logged, oldest first (the caller holds the lock).
     *
     * @return int The records logged.
     */
    public function run(): int {
        $since = (int) get_config('tool_delivery', 'historysince');
        if ($since === 0) {
            // Before the first run: only what happens from now on is new.
            $since = time();
            set_config('historysince', $since, 'tool_delivery');
        }
        $lastid = (string) get_config('tool_delivery', 'historylastid');
        $fresh = [];
        for ($offset = 0; $offset < self::MOST; $offset += self::PAGE) {
            $records = ($this->pages)(self::PAGE, $offset);
            [$new, $done] = self::newer($records, $lastid, $since);
            $fresh = array_merge($fresh, $new);
            if ($done || count($records) < self::PAGE) {
                break;
            }
        }
        $logged = 0;
        foreach (array_reverse($fresh) as $record) {
            ($this->emit)($record);
            set_config('historylastid', (string) $record['id'], 'tool_delivery');
            $logged++;
        }
        return $logged;
    }

    /**
     * The records of one page (newest first, as the helper wrote them) that come after the last
     * logged one. The order is the helper's, not the start times' (an emergency rollback can end,
     * and be written, before the restore it took over from).
     *
     * @param array $records The page, newest first.
     * @param string $lastid The last logged record's id ('' when none).
     * @param int $since Records of operations started before this Unix time are not logged.
     * @return array [the new records, newest first; true when the last logged record was reached].
     */
    public static function newer(array $records, string $lastid, int $since): array {
        $new = [];
        foreach ($records as $record) {
            $id = (string) ($record['id'] ?? '');
            if ($lastid !== '' && $id === $lastid) {
                return [$new, true];
            }
            $started = strtotime((string) ($record['time'] ?? ''));
            if ($id !== '' && $started !== false && $started >= $since) {
                $new[] = $record;
            }
        }
        return [$new, false];
    }

    /**
     * Triggers the Moodle events of one audit record: step finished or failed, rolled back, and
     * database restored when the operation put the database back to its snapshot; a schedule set
     * or cancelled (from Moodle or from the server's command line).
     *
     * @param array $record The helper's audit record.
     */
    public static function trigger_events(array $record): void {
        $operation = (string) ($record['operation'] ?? '');
        $result = (string) ($record['result'] ?? '');
        $succeeded = $result === 'succeeded';
        if ($result === 'started') {
            // A delivery's first record, written when it starts (its notification says so); the
            // operation's own record, when it ends, becomes its event.
            return;
        } else if ($result === 'scheduled') {
            schedule_set::create_from_record($record)->trigger();
            return;
        } else if ($result === 'unscheduled') {
            schedule_cancelled::create_from_record($record)->trigger();
            return;
        }
        if ($operation === 'rollback' && $succeeded) {
            rolled_back::create_from_record($record)->trigger();
        } else if ($succeeded) {
            step_finished::create_from_record($record)->trigger();
        } else {
            step_failed::create_from_record($record)->trigger();
        }
        if (!empty($record['databaseRestored'])) {
            database_restored::create_from_record($record)->trigger();
        }
    }
}
