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
 * Sizes and durations split into a number and a unit, as the helper words them, for the screen.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Sizes and durations split into a number and a unit, as the helper words them, for the screen.
 *
 * The helper's own sentences (a rollback plan's explanation, a refusal) give sizes in decimal
 * units (41.1 MB is 41,100,000 bytes) and durations as `40 s`, `12 min`, `2 h 5 min`,
 * `3 days 4 h`; the screen uses the same rules so that both agree, in the user's language
 * ({@see delivery_actions::format_size()}, {@see delivery_actions::format_age()}). It has no
 * Moodle dependency.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class human_units {
    /**
     * A size: bytes under 1 kB, whole kB under 1 MB, then MB and GB with one decimal.
     *
     * @param int|float $bytes The size in bytes.
     * @return array `unit` (`b`, `kb`, `mb`, `gb`), `value` (a number) and `decimals` (0 or 1).
     */
    public static function size(int|float $bytes): array {
        $bytes = max(0, (float) $bytes);
        if ($bytes < 1000) {
            return ['unit' => 'b', 'value' => (int) $bytes, 'decimals' => 0];
        }
        if ($bytes < 1000000) {
            return ['unit' => 'kb', 'value' => (int) round($bytes / 1000), 'decimals' => 0];
        }
        if ($bytes < 1000000000) {
            return ['unit' => 'mb', 'value' => round($bytes / 1000000, 1), 'decimals' => 1];
        }
        return ['unit' => 'gb', 'value' => round($bytes / 1000000000, 1), 'decimals' => 1];
    }

    /**
     * A duration: seconds under a minute, minutes under an hour, hours and minutes under a day,
     * then days and hours.
     *
     * @param int|float $seconds The duration.
     * @return array `unit` (`seconds`, `minutes`, `hours`, `days`) and the numbers of its
     *         sentence: `seconds`; `minutes`; `hours` and `minutes`; `days` and `hours`.
     */
    public static function duration(int|float $seconds): array {
        $total = (int) round(max(0, (float) $seconds));
        if ($total < 60) {
            return ['unit' => 'seconds', 'seconds' => $total];
        }
        if ($total < 3600) {
            return ['unit' => 'minutes', 'minutes' => intdiv($total, 60)];
        }
        if ($total < 86400) {
            return ['unit' => 'hours', 'hours' => intdiv($total, 3600), 'minutes' => intdiv($total % 3600, 60)];
        }
        return ['unit' => 'days', 'days' => intdiv($total, 86400), 'hours' => intdiv($total % 86400, 3600)];
    }
}
