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
 * What the screen shows of a job and of the site's state, as the external functions answer it and
 * as the page without JavaScript renders it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

use tool_delivery\output\banner;
use tool_delivery\output\rollback_plan;
use tool_delivery\output\screen;

/**
 * What the screen shows of a job and of the site's state, in one place for the external functions
 * (followed by the AMD module) and for the page drawn without JavaScript.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class job_view {
    /**
     * A job's progress from a log offset: steps (name, state, percentage, message), the new log
     * lines, the status line, and, once it has ended, its result ({@see delivery_actions::job_result()}).
     *
     * @param array $job The helper's job.
     * @param array|null $site The helper's `site` status now, when it answered.
     * @param int $offset The offset the lines start at.
     * @return array id, operation, state, steps, lines, nextoffset, totallines, truncated, statusline,
     *         result (false while it runs).
     */
    public static function progress(array $job, ?array $site, int $offset): array {
        $steps = [];
        foreach ($job['steps'] ?? [] as $step) {
            $operation = (string) ($step['operation'] ?? '');
            $state = (string) ($step['state'] ?? 'running');
            $fraction = isset($step['fraction']) ? (float) $step['fraction'] : null;
            if ($state === 'succeeded') {
                $fraction = 1.0;
            }
            $steps[] = [
                'operation' => $operation,
                'name' => get_string(delivery_actions::operation_key($operation), 'tool_delivery'),
                'state' => $state,
                'statename' => get_string('result:' . $state, 'tool_delivery'),
                'percent' => $fraction === null ? null : (int) round(max(0.0, min(1.0, $fraction)) * 100),
                'message' => notices::say($step['notices'] ?? null),
            ];
        }
        $operation = (string) ($job['operation'] ?? '');
        $state = (string) ($job['state'] ?? 'running');
        return [
            'id' => (string) ($job['id'] ?? ''),
            'operation' => $operation,
            'state' => $state,
            'steps' => $steps,
            'lines' => delivery_actions::log_lines($job['lines'] ?? []),
            'nextoffset' => (int) ($job['nextOffset'] ?? $offset),
            'totallines' => (int) ($job['totalLines'] ?? 0),
            'truncated' => !empty($job['truncated']),
            'statusline' => get_string(
                'progress:running',
                'tool_delivery',
                get_string(delivery_actions::operation_key($operation), 'tool_delivery')
            ),
            'result' => $state === 'running' ? false : delivery_actions::job_result($job, $site),
        ];
    }

    /**
     * The site's state as the screen redraws it: the buttons enabled, whether a rollback has a copy
     * to serve, and the contexts of the banner and rollback plan templates (JSON, rendered by
     * core/templates with the same templates the page was drawn with).
     *
     * @param array $status The helper's status (`site`, `job`).
     * @param \renderer_base $output The plugin's renderer.
     * @return array phase, allowed, rollback, bannercontext, rollbackplancontext.
     */
    public static function site(array $status, \renderer_base $output): array {
        $site = $status['site'];
        $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;
        return [
            'phase' => (string) ($site['phase'] ?? ''),
            'allowed' => screen::enabled_operations($status),
            'rollback' => !empty($site['rollbackTarget']),
            'bannercontext' => json_encode((new banner($site, $status['job'] ?? null))->export_for_template($output), $flags),
            'rollbackplancontext' => json_encode((new rollback_plan($site))->export_for_template($output), $flags),
        ];
    }

    /**
     * An error for the screen: its code, the sentence in the user's language, and whether the
     * helper looks down (the page then keeps asking).
     *
     * @param helper_exception $error The error.
     * @return array code, message, down.
     */
    public static function error(helper_exception $error): array {
        return [
            'code' => $error->errorcode,
            'message' => delivery_actions::error_message($error),
            'down' => $error instanceof transport_exception && $error->is_down(),
        ];
    }
}
