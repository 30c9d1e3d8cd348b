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
 * The delivery reports kept in Moodle's database (table tool_delivery_report).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The delivery reports kept in Moodle's database (table tool_delivery_report): one row per
 * delivery, keyed by its delivery id, holding the helper's DeliveryReport as JSON with who started
 * it (the Moodle user, 0 from the server's command line), its outcome and when it started. The
 * history synchronisation refreshes a delivery's row as its records arrive; the task
 * cleanup_reports deletes the rows older than the retention setting.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class report_store {
    /** @var string The table. */
    public const TABLE = 'tool_delivery_report';

    /**
     * Whether a delivery id can be kept (a job id, at most 40 characters).
     *
     * @param string $deliveryid The id.
     * @return bool True when it can.
     */
    public static function is_delivery_id(string $deliveryid): bool {
        return strlen($deliveryid) <= 40 && helper_client::is_job_id($deliveryid);
    }

    /**
     * Whether a report of the delivery is kept.
     *
     * @param string $deliveryid The delivery id.
     * @return bool True when it is.
     */
    public function exists(string $deliveryid): bool {
        global $DB;
        return $DB->record_exists(self::TABLE, ['deliveryid' => $deliveryid]);
    }

    /**
     * Keeps a delivery's report, replacing the one kept.
     *
     * @param array $report The helper's DeliveryReport (`deliveryId`, `actor`, `outcome`, `startedAt`…).
     */
    public function save(array $report): void {
        global $DB;
        $deliveryid = (string) ($report['deliveryId'] ?? '');
        if (!self::is_delivery_id($deliveryid)) {
            return;
        }
        $started = strtotime((string) ($report['startedAt'] ?? ''));
        $row = (object) [
            'deliveryid' => $deliveryid,
            'userid' => (int) ($report['actor']['moodleUserId'] ?? 0),
            'outcome' => substr((string) ($report['outcome'] ?? 'in_progress'), 0, 20),
            'timestarted' => $started === false ? time() : $started,
            'timemodified' => time(),
            'report' => json_encode($report, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE),
        ];
        $existing = $DB->get_record(self::TABLE, ['deliveryid' => $deliveryid], 'id');
        if ($existing) {
            $row->id = $existing->id;
            $DB->update_record(self::TABLE, $row);
        } else {
            $DB->insert_record(self::TABLE, $row);
        }
    }

    /**
     * A delivery's report as kept.
     *
     * @param string $deliveryid The delivery id.
     * @return array|null The DeliveryReport, or null when none is kept.
     */
    public function get(string $deliveryid): ?array {
        global $DB;
        $row = $DB->get_record(self::TABLE, ['deliveryid' => $deliveryid]);
        $report = $row ? json_decode((string) $row->report, true) : null;
        return is_array($report) ? $report : null;
    }

    /**
     * Deletes the reports of deliveries started before a time.
     *
     * @param int $before The Unix time.
     */
    public function delete_older_than(int $before): void {
        global $DB;
        $DB->delete_records_select(self::TABLE, 'timestarted < :before', ['before' => $before]);
    }
}
