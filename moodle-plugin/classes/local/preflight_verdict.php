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

/**
 * What blocks Restore production, as the helper decides it: the preflight report carries
 * `blocking` and `blockers` (a code and its values each, docs/protocol.md); this class only turns
 * them into the reasons the page words. The rule itself lives in the helper alone.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class preflight_verdict {
    /** @var string[] The blockers' codes this page has words for. */
    public const KNOWN = ['lint', 'conflicts', 'backwards', 'missing', 'inconsistent', 'php', 'space'];

    /**
     * The reasons the report blocks, in the helper's order (empty when it does not).
     *
     * @param array $report The helper's preflight report.
     * @return array[] Each: `reason` (a code of KNOWN, or `unknown` with `code`) and its values.
     */
    public static function reasons(array $report): array {
        $reasons = [];
        $blockers = is_array($report['blockers'] ?? null) ? $report['blockers'] : [];
        foreach ($blockers as $blocker) {
            $code = is_array($blocker) ? (string) ($blocker['code'] ?? '') : '';
            $text = fn(string $name): string => (string) ($blocker[$name] ?? '');
            switch ($code) {
                case 'lint':
                case 'conflicts':
                case 'missing':
                    $reasons[] = ['reason' => $code, 'count' => (int) ($blocker['count'] ?? 0)];
                    break;
                case 'backwards':
                    $reasons[] = ['reason' => $code, 'component' => $text('component'), 'before' => $text('before'),
                        'after' => $text('after')];
                    break;
                case 'inconsistent':
                    $reasons[] = [
                        'reason' => $code,
                        'component' => $text('component'),
                        'detail' => notices::say(isset($blocker['notice']) ? [$blocker['notice']] : null),
                    ];
                    break;
                case 'php':
                    $reasons[] = ['reason' => $code, 'current' => $text('current'), 'required' => $text('required')];
                    break;
                case 'space':
                    $reasons[] = ['reason' => $code, 'directory' => $text('directory'),
                        'available' => (int) ($blocker['availableBytes'] ?? 0),
                        'database' => (int) ($blocker['databaseBytes'] ?? 0)];
                    break;
                default:
                    // A newer helper's reason: said as its code, never dropped.
                    $reasons[] = ['reason' => 'unknown', 'code' => $code];
            }
        }
        return $reasons;
    }

    /**
     * Whether the helper says the report blocks Restore production.
     *
     * @param array $report The helper's preflight report.
     * @return bool True when it blocks.
     */
    public static function blocking(array $report): bool {
        return !empty($report['blocking']) || !empty($report['blockers']);
    }
}
