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
 * What the upstream watch found, in the user's language: the screen's section, the notice and the message.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

use tool_delivery\output\preflight;

/**
 * What the upstream watch found (the helper's UpstreamPreview, `site.upstream` of the status), in
 * the user's language: the revision, the commits, the counts of files, the version changes, whether
 * Moodle's upgrade will run (and with maintenance mode), and whether the preflight would block, with
 * its blockers worded as the Check button's report words them. The helper decides; this only words.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class upstream_summary {
    /** @var int The most commits shown. */
    public const COMMIT_LIMIT = 20;

    /** @var array The helper's UpstreamPreview. */
    private array $preview;

    /**
     * Makes the summary.
     *
     * @param array $preview The helper's UpstreamPreview.
     */
    public function __construct(array $preview) {
        $this->preview = $preview;
    }

    /**
     * Whether the upstream differs from production.
     *
     * @return bool True when a delivery would bring something.
     */
    public function waiting(): bool {
        return !empty($this->preview['waiting']);
    }

    /**
     * The upstream revision's id, as the schedule must name it ('' when unknown).
     *
     * @return string The id.
     */
    public function revision_id(): string {
        return (string) ($this->preview['upstream']['id'] ?? '');
    }

    /**
     * The upstream revision's label for people.
     *
     * @return string The label, or the id.
     */
    public function revision_label(): string {
        return (string) ($this->preview['upstream']['label'] ?? $this->revision_id());
    }

    /**
     * Whether the preflight of the upstream revision would block.
     *
     * @return bool True when it would.
     */
    public function blocking(): bool {
        return preflight_verdict::blocking($this->preview);
    }

    /**
     * Whether a delivery of what waits runs Moodle's upgrade (of plugins or the core).
     *
     * @return bool True when an upgrade would run.
     */
    public function upgrades(): bool {
        return $this->waiting() && in_array((string) ($this->preview['upgrade'] ?? 'none'), ['plugins', 'core'], true);
    }

    /**
     * The sentence of the upgrade to come: none, plugins only, or core (maintenance mode).
     *
     * @return string The sentence.
     */
    public function upgrade(): string {
        $kind = (string) ($this->preview['upgrade'] ?? 'none');
        $kind = in_array($kind, ['none', 'plugins', 'core'], true) ? $kind : 'none';
        if ($kind === 'plugins' && ($this->preview['maintenance'] ?? null) === true) {
            // The site takes a database snapshot first: in maintenance mode, as the helper says.
            $kind = 'pluginsmaintenance';
        }
        return get_string('upstream:upgrade:' . $kind, 'tool_delivery');
    }

    /**
     * The counts: commits, files added, changed and removed, version changes.
     *
     * @return string The sentence.
     */
    public function counts(): string {
        $files = $this->preview['fileCounts'] ?? [];
        return get_string('upstream:counts', 'tool_delivery', (object) [
            'commits' => (int) ($this->preview['commitCount'] ?? count($this->preview['commits'] ?? [])),
            'added' => (int) ($files['added'] ?? count($this->preview['added'] ?? [])),
            'changed' => (int) ($files['changed'] ?? count($this->preview['changed'] ?? [])),
            'removed' => (int) ($files['removed'] ?? count($this->preview['removed'] ?? [])),
            'versions' => count($this->preview['versionChanges'] ?? []),
        ]);
    }

    /**
     * The version changes: component, from → to.
     *
     * @return array[] Each: component, change.
     */
    public function version_changes(): array {
        $changes = [];
        foreach ($this->preview['versionChanges'] ?? [] as $change) {
            $component = (string) ($change['component'] ?? '');
            $changes[] = [
                'component' => $component === '' ? get_string('preflight:core', 'tool_delivery') : $component,
                'change' => self::version_change($change),
            ];
        }
        return $changes;
    }

    /**
     * One version change as "before → after" ("new" or "removed" when absent).
     *
     * @param array $change A VersionChange.
     * @return string The change.
     */
    public static function version_change(array $change): string {
        $before = isset($change['before']) ? (string) $change['before'] : get_string('preflight:version:none', 'tool_delivery');
        $after = isset($change['after']) ? (string) $change['after'] : get_string('preflight:version:removed', 'tool_delivery');
        return get_string('preflight:versionchange', 'tool_delivery', (object) ['before' => $before, 'after' => $after]);
    }

    /**
     * The newest commits: id (short), author, subject.
     *
     * @return array[] Each: id, author, subject.
     */
    public function commits(): array {
        $commits = [];
        foreach (array_slice($this->preview['commits'] ?? [], 0, self::COMMIT_LIMIT) as $commit) {
            $commits[] = [
                'id' => substr((string) ($commit['id'] ?? ''), 0, 10),
                'author' => (string) ($commit['author'] ?? ''),
                'subject' => (string) ($commit['subject'] ?? ''),
            ];
        }
        return $commits;
    }

    /**
     * The blockers, worded as the Check button's report words them.
     *
     * @return string[] The sentences (empty when nothing blocks).
     */
    public function blockers(): array {
        return array_map(fn(array $reason) => preflight::reason($reason), preflight_verdict::reasons($this->preview));
    }

    /**
     * The whole summary as plain text lines (the notification): counts, versions, upgrade, verdict.
     *
     * @return string[] The lines.
     */
    public function lines(): array {
        $lines = [get_string('upstream:revision', 'tool_delivery', $this->revision_label()), $this->counts()];
        foreach ($this->commits() as $commit) {
            $lines[] = "- {$commit['id']} {$commit['author']}: {$commit['subject']}";
        }
        foreach ($this->version_changes() as $change) {
            $lines[] = "- {$change['component']}: {$change['change']}";
        }
        $lines[] = $this->upgrade();
        if ($this->blocking()) {
            $lines[] = get_string('upstream:blocked', 'tool_delivery');
            foreach ($this->blockers() as $blocker) {
                $lines[] = '- ' . $blocker;
            }
        } else {
            $lines[] = get_string('upstream:ready', 'tool_delivery');
        }
        return $lines;
    }

    /**
     * The preview without its long lists (the files become their counts, the commits the newest
     * few), small enough for the plugin's configuration, where the task keeps it for the
     * Notifications page; a summary of it words the same.
     *
     * @return array The reduced preview.
     */
    public function compact(): array {
        $preview = $this->preview;
        $counts = $preview['fileCounts'] ?? [];
        foreach (['added', 'changed', 'removed'] as $name) {
            $counts[$name] = (int) ($counts[$name] ?? count($preview[$name] ?? []));
            unset($preview[$name]);
        }
        $preview['fileCounts'] = $counts;
        $preview['commitCount'] = (int) ($preview['commitCount'] ?? count($preview['commits'] ?? []));
        $preview['commits'] = array_slice($preview['commits'] ?? [], 0, 5);
        unset($preview['lintErrors'], $preview['conflictMarkers'], $preview['componentProblems']);
        return $preview;
    }
}
