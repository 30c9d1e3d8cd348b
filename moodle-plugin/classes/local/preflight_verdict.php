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
 * What in a preflight report stops Restore production: the helper's rule, for the plugin to show.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

defined('MOODLE_INTERNAL') || defined('TOOL_DELIVERY_STANDALONE') || die();

/**
 * What in a preflight report stops Restore production: the helper's rule, for the plugin to show.
 *
 * The helper computes `blocking` itself but does not send it (docs/protocol.md, `GET /preflight`):
 * a report blocks when it has PHP syntax errors, conflict markers, a version going backwards,
 * tracked files missing, a blocking inconsistent component, a PHP version below the new code's
 * minimum, or too little room for the database snapshot. Each reason comes back with the data
 * its sentence needs; the screen words it ({@see \tool_delivery\output\preflight}). It has no
 * Moodle dependency.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class preflight_verdict {
    /**
     * The reasons a report blocks, in the helper's order; none when production can be served.
     *
     * @param array $report The helper's preflight report.
     * @return array[] Each with `reason` (`lint`, `conflicts`, `backwards`, `missing`,
     *         `inconsistent`, `php`, `space`) and its data: `count` (lint, conflicts, missing),
     *         `component`, `before`, `after` (backwards), `component`, `detail` (inconsistent),
     *         `current`, `required` (php), `directory`, `available`, `database` (space, in bytes).
     */
    public static function reasons(array $report): array {
        $reasons = [];
        $lint = self::items($report, 'lintErrors');
        if ($lint) {
            $reasons[] = ['reason' => 'lint', 'count' => count($lint)];
        }
        $markers = is_array($report['conflictMarkers'] ?? null) ? $report['conflictMarkers'] : [];
        if ($markers) {
            $reasons[] = ['reason' => 'conflicts', 'count' => count($markers)];
        }
        foreach (self::items($report, 'versionChanges') as $change) {
            if (!empty($change['backwards'])) {
                $reasons[] = ['reason' => 'backwards', 'component' => (string) ($change['component'] ?? ''),
                    'before' => (string) ($change['before'] ?? ''), 'after' => (string) ($change['after'] ?? '')];
            }
        }
        $missing = self::items($report, 'missingFiles');
        if ($missing) {
            $reasons[] = ['reason' => 'missing', 'count' => count($missing)];
        }
        foreach (self::items($report, 'inconsistentComponents') as $problem) {
            if (!empty($problem['blocking'])) {
                $reasons[] = ['reason' => 'inconsistent', 'component' => (string) ($problem['component'] ?? ''),
                    'detail' => (string) ($problem['reason'] ?? '')];
            }
        }
        $php = $report['phpVersion'] ?? null;
        if (is_array($php) && array_key_exists('satisfied', $php) && $php['satisfied'] === false) {
            $reasons[] = ['reason' => 'php', 'current' => (string) ($php['current'] ?? ''),
                'required' => (string) ($php['required'] ?? '')];
        }
        $space = $report['snapshotSpace'] ?? null;
        if (is_array($space) && array_key_exists('enough', $space) && $space['enough'] === false) {
            $reasons[] = ['reason' => 'space', 'directory' => (string) ($space['directory'] ?? ''),
                'available' => (int) ($space['availableBytes'] ?? 0), 'database' => (int) ($space['databaseBytes'] ?? 0)];
        }
        return $reasons;
    }

    /**
     * Whether the report stops Restore production.
     *
     * @param array $report The helper's preflight report.
     * @return bool True when it blocks.
     */
    public static function blocking(array $report): bool {
        return self::reasons($report) !== [];
    }

    /**
     * A list member of the report ([] when absent or not a list).
     *
     * @param array $report The report.
     * @param string $name The member.
     * @return array The list.
     */
    private static function items(array $report, string $name): array {
        $value = $report[$name] ?? [];
        return is_array($value) ? array_values($value) : [];
    }
}
