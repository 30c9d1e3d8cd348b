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
 * The report of the Check button: the preflight of production, with a verdict.
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
use tool_delivery\local\helper_exception;
use tool_delivery\local\notices;
use tool_delivery\local\preflight_verdict;

/**
 * The report of the Check button: the preflight of production, with a verdict.
 *
 * The verdict comes first: ready, or blocked with each reason (the helper's rule,
 * {@see preflight_verdict}); or, when the site's state does not allow Restore production (no
 * delivery under way), that there is nothing to restore now, with what would block it. Then
 * what the update brought (counts, and the files), the lint errors, conflict markers, version
 * changes, local modifications, untracked and missing files, inconsistent components, the upgrade
 * to come, maintenance mode, room for the database snapshot, the PHP version and the warnings.
 * Long lists show their first {@see self::LIST_LIMIT} entries and how many more there are. Paths,
 * PHP's messages and the helper's sentences are shown as the helper sends them.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class preflight implements renderable, templatable {
    /** @var int The most entries shown of a list. */
    public const LIST_LIMIT = 20;

    /** @var array|null The helper's report, or null when the check failed. */
    private ?array $report;

    /** @var helper_exception|null Why the check could not run. */
    private ?helper_exception $error;

    /** @var int When the check ran (Unix time). */
    private int $time;

    /** @var bool Whether the site's state allows Restore production now. */
    private bool $restorable;

    /**
     * Makes the report.
     *
     * @param array|null $report The helper's preflight report, or null when the check failed.
     * @param helper_exception|null $error Why the check could not run.
     * @param int|null $time When it ran (now when null).
     * @param array|null $allowed The operations the site's state allows (`site.allowed` of the
     *        status); without `restore`, there is nothing to restore now. Null when unknown.
     */
    public function __construct(?array $report, ?helper_exception $error = null, ?int $time = null, ?array $allowed = null) {
        $this->report = $report;
        $this->error = $error;
        $this->time = $time ?? time();
        $this->restorable = $allowed === null || in_array('restore', array_map('strval', $allowed), true);
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        if ($this->report === null) {
            $error = $this->error ?? new helper_exception('internal', 'no report');
            return [
                'failed' => [
                    'message' => delivery_actions::error_message($error),
                    'detail' => notices::say($error->details['notices'] ?? null),
                ],
                'report' => false,
            ];
        }
        $report = $this->report;
        $reasons = array_map(fn(array $reason) => ['text' => self::reason($reason)], preflight_verdict::reasons($report));
        $warnings = array_map(fn($warning) => ['text' => notices::sentence((array) $warning)], $report['warningNotices'] ?? []);
        return [
            'failed' => false,
            'report' => [
                // The verdict: ready, blocked, or nothing to restore now (the site's state does not
                // allow Restore production; the report compares production with the backup copy all the same).
                'ready' => $this->restorable && !$reasons,
                'blocked' => $this->restorable && $reasons,
                'norestore' => !$this->restorable,
                'reasons' => $reasons,
                'hasreasons' => !empty($reasons),
                'checkedat' => userdate($this->time, get_string('strftimedatetimeshort', 'langconfig')),
                'counts' => get_string('preflight:counts', 'tool_delivery', (object) [
                    'added' => count($report['added'] ?? []),
                    'changed' => count($report['changed'] ?? []),
                    'removed' => count($report['removed'] ?? []),
                ]),
                'sections' => $this->sections($report),
                'facts' => $this->facts($report, $this->restorable && $reasons),
                'warnings' => $warnings,
                'haswarnings' => !empty($warnings),
            ],
        ];
    }

    /**
     * One reason the report blocks, in a sentence.
     *
     * @param array $reason A reason of {@see preflight_verdict::reasons()}.
     * @return string The sentence.
     */
    public static function reason(array $reason): string {
        switch ($reason['reason']) {
            case 'backwards':
                return get_string('preflight:reason:backwards', 'tool_delivery', (object) [
                    'component' => self::component($reason['component']),
                    'before' => $reason['before'] === '' ? '?' : $reason['before'],
                    'after' => $reason['after'] === '' ? '?' : $reason['after'],
                ]);
            case 'inconsistent':
                return get_string('preflight:reason:inconsistent', 'tool_delivery', (object) [
                    'component' => self::component($reason['component']),
                    'detail' => $reason['detail'],
                ]);
            case 'php':
                return get_string('preflight:php:tooold', 'tool_delivery', (object) [
                    'current' => $reason['current'],
                    'required' => $reason['required'] === '' ? '?' : $reason['required'],
                ]);
            case 'space':
                return get_string('preflight:reason:space', 'tool_delivery', (object) [
                    'directory' => $reason['directory'],
                    'available' => delivery_actions::format_size($reason['available']),
                    'database' => delivery_actions::format_size($reason['database']),
                ]);
            case 'unknown':
                return get_string('preflight:reason:unknown', 'tool_delivery', $reason['code']);
            default:
                // Lint errors, conflict markers, missing files: a count.
                return get_string('preflight:reason:' . $reason['reason'], 'tool_delivery', $reason['count'] ?? 0);
        }
    }

    /**
     * A component's name for people: its folder, or "Moodle core" for the root.
     *
     * @param string $component The folder (empty for core).
     * @return string The name.
     */
    private static function component(string $component): string {
        return $component === '' ? get_string('preflight:core', 'tool_delivery') : $component;
    }

    /**
     * The lists of the report, each with its entries (at most {@see self::LIST_LIMIT}); empty lists are left out.
     *
     * @param array $report The report.
     * @return array[] Sections: title, count, colour, collapsed, items (code, text, flag, flagcolour), more.
     */
    private function sections(array $report): array {
        $sections = [];
        $sections[] = self::section('lint', 'danger', array_map(fn($error) => [
            'code' => (string) ($error['file'] ?? '') . (isset($error['line']) ? ':' . (int) $error['line'] : ''),
            'text' => (string) ($error['message'] ?? ''),
        ], $report['lintErrors'] ?? []));
        $markers = [];
        foreach ($report['conflictMarkers'] ?? [] as $path => $line) {
            $markers[] = ['code' => (string) $path, 'text' => get_string('preflight:line', 'tool_delivery', (int) $line)];
        }
        usort($markers, fn($one, $other) => strcmp($one['code'], $other['code']));
        $sections[] = self::section('conflicts', 'danger', $markers);
        $sections[] = self::section('versions', 'info', array_map(fn($change) => [
            'code' => self::component((string) ($change['component'] ?? '')),
            'text' => get_string('preflight:versionchange', 'tool_delivery', (object) [
                'before' => isset($change['before']) ? (string) $change['before']
                    : get_string('preflight:version:none', 'tool_delivery'),
                'after' => isset($change['after']) ? (string) $change['after']
                    : get_string('preflight:version:removed', 'tool_delivery'),
            ]),
            'flag' => empty($change['backwards']) ? '' : get_string('preflight:backwards', 'tool_delivery'),
            'flagcolour' => 'danger',
        ], $report['versionChanges'] ?? []));
        $sections[] = self::section('missing', 'danger', self::paths($report['missingFiles'] ?? []));
        $sections[] = self::section('inconsistent', 'warning', array_map(fn($problem) => [
            'code' => self::component((string) ($problem['component'] ?? '')),
            'text' => notices::say(isset($problem['notice']) ? [$problem['notice']] : null),
            'flag' => empty($problem['blocking']) ? '' : get_string('preflight:blocking', 'tool_delivery'),
            'flagcolour' => 'danger',
        ], $report['inconsistentComponents'] ?? []));
        $sections[] = self::section('localmodifications', 'warning', self::paths($report['localModifications'] ?? []));
        $sections[] = self::section('untracked', 'warning', self::paths($report['untrackedFiles'] ?? []));
        foreach (['added', 'changed', 'removed'] as $name) {
            $sections[] = self::section($name, 'secondary', self::paths($report[$name] ?? []), true);
        }
        return array_values(array_filter($sections));
    }

    /**
     * One list, cut at {@see self::LIST_LIMIT} entries.
     *
     * @param string $name The list's name in the language strings (`preflight:section:<name>`).
     * @param string $colour The Bootstrap colour of its count.
     * @param array $items Its entries: code, text, flag, flagcolour.
     * @param bool $collapsed Whether it is folded until opened.
     * @return array|null The section, or null when the list is empty.
     */
    private static function section(string $name, string $colour, array $items, bool $collapsed = false): ?array {
        if (!$items) {
            return null;
        }
        $shown = array_map(
            fn(array $item) => $item + ['text' => '', 'flag' => '', 'flagcolour' => 'secondary'],
            array_slice($items, 0, self::LIST_LIMIT)
        );
        $hidden = count($items) - count($shown);
        return [
            'name' => $name,
            'title' => get_string('preflight:section:' . $name, 'tool_delivery'),
            'count' => count($items),
            'colour' => $colour,
            'collapsed' => $collapsed,
            'items' => $shown,
            'more' => $hidden > 0 ? get_string('preflight:more', 'tool_delivery', $hidden) : '',
        ];
    }

    /**
     * Paths as list entries.
     *
     * @param array $paths The paths (or VCS status lines).
     * @return array[] The entries.
     */
    private static function paths(array $paths): array {
        return array_map(fn($path) => ['code' => trim((string) $path)], $paths);
    }

    /**
     * What Restore production will do about a pending upgrade. With a snapshot, the helper turns
     * maintenance mode on for the snapshot and the upgrade, whatever Moodle requires; without one,
     * maintenance mode is on only when Moodle requires it.
     *
     * @param array $upgrade The report's `upgrade` (pending).
     * @param bool $blocked Whether the report blocks Restore production (nothing runs until fixed).
     * @return string The sentences.
     */
    private static function upgrade_forecast(array $upgrade, bool $blocked): string {
        $sentences = [get_string($blocked ? 'preflight:upgrade:pendingblocked' : 'preflight:upgrade:pending', 'tool_delivery')];
        if (!empty($upgrade['snapshot'])) {
            $sentences[] = get_string('preflight:upgrade:snapshot', 'tool_delivery');
            $sentences[] = get_string('preflight:upgrade:snapshotmaintenance', 'tool_delivery');
        } else {
            $sentences[] = get_string(empty($upgrade['maintenanceRequired']) ? 'preflight:upgrade:nomaintenance'
                : 'preflight:upgrade:maintenance', 'tool_delivery');
            $sentences[] = get_string('preflight:upgrade:nosnapshot', 'tool_delivery');
        }
        return implode(' ', $sentences);
    }

    /**
     * The single facts: the upgrade to come, maintenance mode, room for the snapshot, PHP.
     *
     * @param array $report The report.
     * @param bool $blocked Whether the report blocks Restore production.
     * @return array[] Facts: text, colour.
     */
    private function facts(array $report, bool $blocked): array {
        $facts = [];
        $upgrade = $report['upgrade'] ?? null;
        if (!is_array($upgrade)) {
            $facts[] = ['text' => get_string('preflight:upgrade:unknown', 'tool_delivery'), 'colour' => 'warning'];
        } else if (empty($upgrade['pending'])) {
            $facts[] = ['text' => get_string('preflight:upgrade:none', 'tool_delivery'), 'colour' => 'success'];
        } else {
            $facts[] = ['text' => self::upgrade_forecast($upgrade, $blocked),
                'colour' => empty($upgrade['snapshot']) ? 'warning' : 'info'];
        }
        if (!empty($report['maintenanceModeOn'])) {
            $facts[] = ['text' => get_string('preflight:maintenanceon', 'tool_delivery'), 'colour' => 'warning'];
        }
        $space = $report['snapshotSpace'] ?? null;
        if (is_array($space) && !empty($space['serverCopyOf'])) {
            $facts[] = [
                'text' => get_string('preflight:servercopy', 'tool_delivery', (object) [
                    'name' => (string) $space['serverCopyOf'],
                    'database' => delivery_actions::format_size((int) ($space['databaseBytes'] ?? 0)),
                ]),
                'colour' => 'success',
            ];
        } else if (is_array($space)) {
            $enough = ($space['enough'] ?? true) !== false;
            $facts[] = [
                'text' => get_string($enough ? 'preflight:space' : 'preflight:reason:space', 'tool_delivery', (object) [
                    'directory' => (string) ($space['directory'] ?? ''),
                    'available' => delivery_actions::format_size((int) ($space['availableBytes'] ?? 0)),
                    'database' => delivery_actions::format_size((int) ($space['databaseBytes'] ?? 0)),
                ]),
                'colour' => $enough ? 'success' : 'danger',
            ];
        }
        $php = $report['phpVersion'] ?? null;
        if (is_array($php)) {
            $satisfied = ($php['satisfied'] ?? true) !== false;
            $required = (string) ($php['required'] ?? '');
            $key = !$satisfied ? 'preflight:php:tooold' : ($required === '' ? 'preflight:php:norequirement' : 'preflight:php:ok');
            $facts[] = [
                'text' => get_string($key, 'tool_delivery', (object) [
                    'current' => (string) ($php['current'] ?? '?'),
                    'required' => $required === '' ? '?' : $required,
                ]),
                'colour' => $satisfied ? 'success' : 'danger',
            ];
        }
        return $facts;
    }
}
