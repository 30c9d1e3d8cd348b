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
 * The delivery screen's rehearsal: Moodle's upgrade tried on a copy of the database.
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

/**
 * The last rehearsal, from the helper's status (`site.rehearsal`, `site.rehearsalCurrent`): whether
 * it passed, the revision it tried and whether that is still what a delivery would bring, the time
 * Moodle's upgrade took on the copy (the maintenance window to expect), the copy's size, the
 * components upgraded, the schema changes, and where a failed upgrade stopped.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class rehearsal_panel implements renderable, templatable {
    /** @var int The most items listed in each section; the rest is counted. */
    private const LIST_LIMIT = 50;

    /** @var array The helper's `site` status. */
    private array $site;

    /**
     * Makes the panel.
     *
     * @param array $site The helper's `site` status.
     */
    public function __construct(array $site) {
        $this->site = $site;
    }

    /**
     * Whether the site's last rehearsal failed for what a delivery would bring now: the page then
     * offers the confirmation that delivers it anyway.
     *
     * @param array $site The helper's `site` status.
     * @return bool True when a restore or a Run all of that revision is blocked.
     */
    public static function blocks(array $site): bool {
        $rehearsal = $site['rehearsal'] ?? null;
        return is_array($rehearsal) && empty($rehearsal['passed']) && ($site['rehearsalCurrent'] ?? false) === true;
    }

    /**
     * A duration to the tenth of a second under a minute, else as the page says durations.
     *
     * @param mixed $seconds Seconds.
     * @return string The duration.
     */
    private static function seconds(mixed $seconds): string {
        $seconds = max(0.0, (float) $seconds);
        return $seconds < 60 ? get_string('rehearsal:seconds', 'tool_delivery', format_float($seconds, 1))
            : delivery_actions::format_duration($seconds);
    }

    /**
     * A list section: its title and its first items.
     *
     * @param string $key The title's string key.
     * @param array $items The items (text).
     * @return array|null title, items, more; null when empty.
     */
    private static function section(string $key, array $items): ?array {
        if (!$items) {
            return null;
        }
        $more = count($items) - self::LIST_LIMIT;
        return [
            'title' => get_string($key, 'tool_delivery', count($items)),
            'items' => array_map(fn($item) => ['text' => (string) $item], array_slice($items, 0, self::LIST_LIMIT)),
            'more' => $more > 0 ? get_string('rehearsal:more', 'tool_delivery', $more) : '',
        ];
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $rehearsal = $this->site['rehearsal'] ?? null;
        if (!is_array($rehearsal)) {
            return ['has' => false];
        }
        $passed = !empty($rehearsal['passed']);
        // The helper says false only when something newer than the revision rehearsed is to deliver.
        $stale = ($this->site['rehearsalCurrent'] ?? null) === false;
        // Production left the revision the rehearsal started from (another delivery since): the
        // rehearsal no longer applies, and Update brings the upstream's newest revision.
        $production = (string) ($this->site['productionRevision']['id'] ?? '');
        $obsolete = !$stale && $production !== ''
            && !in_array($this->site['phase'] ?? '', ['updated', 'restoring'], true)
            && $production !== (string) ($rehearsal['base']['id'] ?? $production)
            && $production !== (string) ($rehearsal['revision']['id'] ?? '');
        $facts = [];
        if (isset($rehearsal['upgradeSeconds'])) {
            $facts[] = get_string(
                $passed ? 'rehearsal:upgradetime' : 'rehearsal:upgradetimefailed',
                'tool_delivery',
                self::seconds($rehearsal['upgradeSeconds'])
            );
        } else if ($passed) {
            $facts[] = get_string('rehearsal:noupgrade', 'tool_delivery');
        }
        $facts[] = get_string('rehearsal:copy', 'tool_delivery', (object) [
            'size' => delivery_actions::format_size((float) ($rehearsal['databaseCopyBytes'] ?? 0)),
            'time' => self::seconds($rehearsal['databaseCopySeconds'] ?? 0),
            'total' => self::seconds($rehearsal['totalSeconds'] ?? 0),
        ]);
        $upgraded = array_map(
            fn($u) => get_string('rehearsal:component', 'tool_delivery', (object) [
                'component' => (string) ($u['component'] ?? '?'),
                'from' => (string) ($u['from'] ?? get_string('rehearsal:none', 'tool_delivery')),
                'to' => (string) ($u['to'] ?? get_string('rehearsal:none', 'tool_delivery')),
            ]),
            is_array($rehearsal['upgraded'] ?? null) ? $rehearsal['upgraded'] : []
        );
        $schema = is_array($rehearsal['schema'] ?? null) ? $rehearsal['schema'] : [];
        $changed = array_map(
            fn($c) => get_string('rehearsal:columnchange', 'tool_delivery', (object) [
                'column' => (string) ($c['column'] ?? '?'),
                'before' => (string) ($c['before'] ?? ''),
                'after' => (string) ($c['after'] ?? ''),
            ]),
            is_array($schema['changedColumns'] ?? null) ? $schema['changedColumns'] : []
        );
        $sections = array_values(array_filter([
            self::section('rehearsal:upgraded', $upgraded),
            self::section('rehearsal:addedtables', $schema['addedTables'] ?? []),
            self::section('rehearsal:droppedtables', $schema['droppedTables'] ?? []),
            self::section('rehearsal:addedcolumns', $schema['addedColumns'] ?? []),
            self::section('rehearsal:droppedcolumns', $schema['droppedColumns'] ?? []),
            self::section('rehearsal:changedcolumns', $changed),
            self::section('rehearsal:newchecks', $rehearsal['newCriticalChecks'] ?? []),
            self::section('rehearsal:remarks', $rehearsal['remarks'] ?? []),
        ]));
        $failure = is_array($rehearsal['failure'] ?? null) ? $rehearsal['failure'] : null;
        return [
            'has' => true,
            'passed' => $passed,
            'revision' => get_string('rehearsal:revision', 'tool_delivery', (object) [
                'revision' => (string) ($rehearsal['revision']['label'] ?? '?'),
                'when' => delivery_actions::format_date($rehearsal['finishedAt'] ?? null),
            ]),
            'said' => notices::say($rehearsal['notices'] ?? null),
            'stale' => $obsolete ? get_string(
                'rehearsal:obsolete',
                'tool_delivery',
                (string) ($rehearsal['base']['label'] ?? '?')
            ) : (!$stale ? '' : get_string(
                ($this->site['phase'] ?? '') === 'updated' ? 'rehearsal:staleupdated' : 'rehearsal:stale',
                'tool_delivery'
            )),
            'facts' => array_map(fn($text) => ['text' => $text], $facts),
            'sections' => $sections,
            'failure' => $failure === null ? false : get_string('rehearsal:failure', 'tool_delivery', (object) [
                'component' => (string) ($failure['component'] ?? get_string('rehearsal:unknown', 'tool_delivery')),
                'reached' => (string) ($failure['reachedVersion'] ?? get_string('rehearsal:unknown', 'tool_delivery')),
                'message' => (string) ($failure['message'] ?? ''),
            ]),
            'blocks' => self::blocks($this->site),
        ];
    }
}
