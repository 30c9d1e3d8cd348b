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
 * The history of deliveries, from the helper's audit log.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

use renderable;
use renderer_base;
use templatable;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\notices;
use tool_delivery\local\report_store;

/**
 * The history of deliveries, from the helper's audit log: each operation, a schedule set or
 * cancelled, a Run all the helper started at its scheduled time; each row links to its delivery's report.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class history implements renderable, templatable {
    /** @var array Result => Bootstrap colour of its badge. */
    private const RESULT_COLOURS = ['succeeded' => 'success', 'failed' => 'danger', 'refused' => 'warning',
        'scheduled' => 'info', 'unscheduled' => 'secondary'];

    /** @var string[] The results this page has words for (a newer helper's other result is shown as it comes). */
    private const RESULTS = ['succeeded', 'failed', 'refused', 'running', 'scheduled', 'unscheduled'];

    /** @var array The audit records, newest first. */
    private array $records;

    /**
     * Makes the history.
     *
     * @param array $records The helper's audit records.
     */
    public function __construct(array $records) {
        $this->records = $records;
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $rows = [];
        foreach ($this->records as $record) {
            $operation = (string) ($record['operation'] ?? '');
            $result = (string) ($record['result'] ?? '');
            $paths = array_filter([(string) ($record['securePath'] ?? ''), (string) ($record['updatePath'] ?? '')]);
            $actor = $record['actor'] ?? [];
            $deliveryid = (string) ($record['deliveryId'] ?? '');
            // A schedule set or cancelled names the revision it is for.
            $scheduled = (string) ($record['schedule']['revision']['label'] ?? '');
            $rows[] = [
                'date' => delivery_actions::format_date($record['time'] ?? null),
                'who' => (string) ($actor['name'] ?? ''),
                'source' => get_string(
                    ($actor['source'] ?? '') === 'moodle' ? 'history:moodle' : 'history:cli',
                    'tool_delivery'
                ),
                'operation' => get_string(delivery_actions::operation_key($operation), 'tool_delivery'),
                'paths' => implode(', ', $paths),
                'before' => (string) ($record['revisionBefore']['label'] ?? $scheduled),
                'after' => (string) ($record['revisionAfter']['label'] ?? ''),
                'result' => in_array($result, self::RESULTS, true) ? get_string('result:' . $result, 'tool_delivery') : $result,
                'scheduled' => !empty($record['scheduled']),
                'resultcolour' => self::RESULT_COLOURS[$result] ?? 'secondary',
                'comment' => (string) ($record['comment'] ?? ''),
                'message' => notices::say($record['notices'] ?? null),
                'duration' => self::duration((float) ($record['durationSeconds'] ?? 0)),
                'reporturl' => report_store::is_delivery_id($deliveryid)
                    ? (new \moodle_url('/admin/tool/delivery/report.php', ['id' => $deliveryid]))->out(false) : '',
            ];
        }
        return ['rows' => $rows, 'hasrows' => !empty($rows)];
    }

    /**
     * How long an operation took, for people ("less than a second" rather than Moodle's "now").
     *
     * @param float $seconds The duration.
     * @return string The duration.
     */
    private static function duration(float $seconds): string {
        if ($seconds < 1) {
            return get_string('history:lessthanasecond', 'tool_delivery');
        }
        return get_string('history:took', 'tool_delivery', format_time((int) round($seconds)));
    }
}
