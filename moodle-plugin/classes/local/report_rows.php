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
 * A delivery report as lines (section, item, value): the report page shows them, the download writes them.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * A delivery report (the helper's DeliveryReport) as lines of three columns, section, item and
 * value, in the user's language: the delivery (who, when, outcome, comments), the revisions from →
 * to, the commits, the files, the plugins upgraded, each step (start, duration, outcome and what
 * the helper said), the maintenance window, the database snapshot, the health check and any
 * rollback. The report page groups them by section; the download writes one line each
 * (`\core\dataformat::download_data`).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class report_rows {
    /** @var string[] The download formats offered. */
    public const FORMATS = ['csv', 'ods', 'pdf'];

    /** @var string[] The outcomes this page has words for. */
    private const OUTCOMES = ['delivered', 'failed', 'cancelled', 'rolled_back', 'in_progress'];

    /** @var array[] The lines: section (its key), item, value. */
    private array $rows = [];

    /**
     * The lines of a report.
     *
     * @param array $report The helper's DeliveryReport.
     * @return array[] Each: section (a key of `report:section:<key>`), item, value (plain text).
     */
    public static function of(array $report): array {
        $lines = new self();
        $lines->delivery($report);
        $lines->changes($report);
        foreach ($report['steps'] ?? [] as $step) {
            $lines->step((array) $step);
        }
        $lines->rehearsal($report['rehearsal'] ?? null);
        $lines->maintenance($report['maintenance'] ?? null);
        $lines->snapshot($report['snapshot'] ?? null);
        $lines->health($report['healthCheck'] ?? null);
        $lines->rollback($report['rollback'] ?? null);
        return $lines->rows;
    }

    /**
     * The columns of the download, by their key.
     *
     * @return string[] section, item, value => their names.
     */
    public static function columns(): array {
        return [
            'section' => get_string('report:column:section', 'tool_delivery'),
            'item' => get_string('report:column:item', 'tool_delivery'),
            'value' => get_string('report:column:value', 'tool_delivery'),
        ];
    }

    /**
     * The lines for the download: the section's name rather than its key.
     *
     * @param array $report The helper's DeliveryReport.
     * @return array[] Each: section, item, value.
     */
    public static function for_download(array $report): array {
        return array_map(fn(array $row) => [
            'section' => get_string('report:section:' . $row['section'], 'tool_delivery'),
            'item' => $row['item'],
            'value' => $row['value'],
        ], self::of($report));
    }

    /**
     * The outcome of a delivery for people.
     *
     * @param string $outcome The helper's outcome.
     * @return string The words.
     */
    public static function outcome(string $outcome): string {
        return in_array($outcome, self::OUTCOMES, true)
            ? get_string('report:outcome:' . str_replace('_', '', $outcome), 'tool_delivery') : $outcome;
    }

    /**
     * Adds a line.
     *
     * @param string $section The section's key.
     * @param string $itemkey The item's string key (`report:item:<key>`), or '' when $item is given.
     * @param string $value The value.
     * @param string $item The item as it is (a path, a component, a commit).
     */
    private function add(string $section, string $itemkey, string $value, string $item = ''): void {
        $this->rows[] = [
            'section' => $section,
            'item' => $itemkey === '' ? $item : get_string('report:item:' . $itemkey, 'tool_delivery'),
            'value' => $value,
        ];
    }

    /**
     * Who, when, the outcome, the comments.
     *
     * @param array $report The report.
     */
    private function delivery(array $report): void {
        $actor = is_array($report['actor'] ?? null) ? $report['actor'] : [];
        $source = get_string(($actor['source'] ?? '') === 'moodle' ? 'history:moodle' : 'history:cli', 'tool_delivery');
        $this->add('delivery', 'id', (string) ($report['deliveryId'] ?? ''));
        $this->add('delivery', 'who', trim((string) ($actor['name'] ?? '?')) . " ({$source})");
        $this->add('delivery', 'started', self::moment($report['startedAt'] ?? null));
        $this->add('delivery', 'finished', self::moment($report['finishedAt'] ?? null));
        $this->add('delivery', 'outcome', self::outcome((string) ($report['outcome'] ?? '')));
        if (!empty($report['scheduled'])) {
            $this->add('delivery', 'scheduled', get_string('report:scheduledyes', 'tool_delivery'));
        }
        foreach ($report['comments'] ?? [] as $comment) {
            $this->add('delivery', 'comment', (string) $comment);
        }
    }

    /**
     * The revisions, commits, files and version changes.
     *
     * @param array $report The report.
     */
    private function changes(array $report): void {
        $from = (string) ($report['revisionFrom']['label'] ?? '');
        $to = (string) ($report['revisionTo']['label'] ?? '');
        if ($from !== '' || $to !== '') {
            $this->add('revisions', 'revisions', get_string('preflight:versionchange', 'tool_delivery', (object) [
                'before' => $from === '' ? '?' : $from,
                'after' => $to === '' ? '?' : $to,
            ]));
        }
        foreach ($report['commits'] ?? [] as $commit) {
            $this->add(
                'commits',
                '',
                trim(($commit['author'] ?? '') . ': ' . ($commit['subject'] ?? ''), ': '),
                substr((string) ($commit['id'] ?? ''), 0, 10)
            );
        }
        foreach (['added', 'changed', 'removed'] as $name) {
            foreach ($report[$name] ?? [] as $path) {
                $this->add('files', $name, (string) $path);
            }
        }
        foreach ($report['versionChanges'] ?? [] as $change) {
            $component = (string) ($change['component'] ?? '');
            $this->add(
                'plugins',
                '',
                upstream_summary::version_change((array) $change),
                $component === '' ? get_string('preflight:core', 'tool_delivery') : $component
            );
        }
    }

    /**
     * One step: its operation; when it started, how long it took, its outcome and what the helper said.
     *
     * @param array $step The step.
     */
    private function step(array $step): void {
        $operation = (string) ($step['operation'] ?? '');
        $key = delivery_actions::operation_key($operation);
        $result = (string) ($step['result'] ?? '');
        $value = get_string('report:step', 'tool_delivery', (object) [
            'started' => self::moment($step['startedAt'] ?? null),
            'duration' => self::seconds($step['durationSeconds'] ?? 0),
            'result' => in_array($result, ['succeeded', 'failed', 'refused'], true)
                ? get_string('result:' . $result, 'tool_delivery') : $result,
        ]);
        $said = notices::say($step['notices'] ?? null);
        if ($said === '' && !empty($step['errorCode'])) {
            $said = delivery_actions::error_message(new helper_exception((string) $step['errorCode'], ''));
        }
        $named = get_string_manager()->string_exists($key, 'tool_delivery') ? get_string($key, 'tool_delivery') : $operation;
        $this->add('steps', '', trim($value . ' ' . $said), $named);
    }

    /**
     * A moment to the second (steps and the maintenance window are seconds apart).
     *
     * @param mixed $iso The ISO 8601 time.
     * @return string The date and time in the user's format with seconds, '' when none.
     */
    private static function moment(mixed $iso): string {
        $time = is_string($iso) && $iso !== '' ? strtotime($iso) : false;
        return $time === false ? '' : userdate($time, get_string('strftimedatetimeaccurate', 'langconfig'));
    }

    /**
     * A measured duration to the tenth of a second (a report is where the admin compares them).
     *
     * @param mixed $seconds The seconds.
     * @return string E.g. "12.6 secs".
     */
    private static function seconds(mixed $seconds): string {
        return get_string('numseconds', 'moodle', format_float(max(0.0, (float) $seconds), 1));
    }

    /**
     * The maintenance window: how long, from → to, and what Moodle's upgrade, the database snapshot
     * and the rest took of it.
     *
     * @param mixed $window The report's `maintenance`.
     */
    private function maintenance(mixed $window): void {
        if (!is_array($window)) {
            return;
        }
        $this->add('maintenance', 'window', get_string('report:window', 'tool_delivery', (object) [
            'duration' => isset($window['seconds']) ? self::seconds($window['seconds']) : '?',
            'from' => self::moment($window['onAt'] ?? null) ?: '?',
            'to' => self::moment($window['offAt'] ?? null) ?: '?',
        ]));
        if (isset($window['otherSeconds'])) {
            $this->add('maintenance', 'windowparts', get_string('report:windowparts', 'tool_delivery', (object) [
                'upgrade' => self::seconds($window['upgradeSeconds'] ?? 0),
                'snapshot' => self::seconds($window['snapshotSeconds'] ?? 0),
                'other' => self::seconds($window['otherSeconds']),
            ]));
        }
    }

    /**
     * The rehearsal of the revision delivered: passed or failed, what it predicted, where it stopped.
     *
     * @param mixed $rehearsal The report's `rehearsal`.
     */
    private function rehearsal(mixed $rehearsal): void {
        if (!is_array($rehearsal)) {
            return;
        }
        $passed = !empty($rehearsal['passed']);
        $this->add('rehearsal', 'result', get_string($passed ? 'result:succeeded' : 'result:failed', 'tool_delivery')
            . ' (' . self::moment($rehearsal['finishedAt'] ?? null) . ')');
        if (isset($rehearsal['upgradeSeconds'])) {
            $this->add('rehearsal', 'predicted', self::seconds($rehearsal['upgradeSeconds']));
        }
        foreach ($rehearsal['notices'] ?? [] as $notice) {
            $this->add('rehearsal', 'check', notices::sentence((array) $notice));
        }
    }

    /**
     * The database snapshot: its size, when it was taken, how long it took.
     *
     * @param mixed $snapshot The report's `snapshot`.
     */
    private function snapshot(mixed $snapshot): void {
        if (!is_array($snapshot)) {
            return;
        }
        $key = empty($snapshot['copyDatabase']) ? 'report:snapshot' : 'report:snapshotcopied';
        $this->add('snapshot', 'snapshot', get_string($key, 'tool_delivery', (object) [
            'size' => delivery_actions::format_size((float) ($snapshot['sizeBytes'] ?? 0)),
            'taken' => self::moment($snapshot['takenAt'] ?? null),
            'duration' => self::seconds($snapshot['seconds'] ?? 0),
            'copy' => (string) ($snapshot['copyDatabase'] ?? ''),
        ]));
    }

    /**
     * The health check: passed or failed, and each of its results.
     *
     * @param mixed $health The report's `healthCheck`.
     */
    private function health(mixed $health): void {
        if (!is_array($health)) {
            return;
        }
        $passed = !empty($health['passed']);
        $this->add('healthcheck', 'result', get_string($passed ? 'result:succeeded' : 'result:failed', 'tool_delivery')
            . ' (' . self::moment($health['checkedAt'] ?? null) . ')');
        foreach (array_merge($health['resultNotices'] ?? [], $health['failureNotices'] ?? []) as $notice) {
            $this->add('healthcheck', 'check', notices::sentence((array) $notice));
        }
    }

    /**
     * The rollback: when, the copy it served and its revision, whether the database was restored.
     *
     * @param mixed $rollback The report's `rollback`.
     */
    private function rollback(mixed $rollback): void {
        if (!is_array($rollback)) {
            return;
        }
        $served = (string) ($rollback['served'] ?? '');
        $this->add('rollback', 'at', self::moment($rollback['at'] ?? null));
        $this->add('rollback', 'served', trim((in_array($served, ['production', 'backup', 'security'], true)
            ? get_string('copy:' . $served, 'tool_delivery') : $served) . ' ' . ($rollback['revision']['label'] ?? '')));
        $this->add('rollback', 'database', get_string(empty($rollback['databaseRestored'])
            ? 'report:databasekept' : 'report:databaserestored', 'tool_delivery'));
    }
}
