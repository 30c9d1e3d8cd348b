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
 * The banner of the delivery page: state, served copy, copies, lock holder, database snapshot, health check.
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
 * The banner of the delivery page: state, served copy, copies, lock holder, database snapshot, health check.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class banner implements renderable, templatable {
    /** @var array Phase => Bootstrap colour of its badge. */
    private const PHASE_COLOURS = [
        'idle' => 'success',
        'secured' => 'info',
        'delivering' => 'warning',
        'updated' => 'warning',
        'restoring' => 'danger',
        'rolled_back' => 'danger',
    ];

    /** @var array The helper's `site` status. */
    private array $site;

    /** @var array|null The helper's running job. */
    private ?array $job;

    /**
     * Makes the banner.
     *
     * @param array $site The helper's `site` status.
     * @param array|null $job The helper's running job, if any.
     */
    public function __construct(array $site, ?array $job = null) {
        $this->site = $site;
        $this->job = $job;
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $site = $this->site;
        $phase = (string) ($site['phase'] ?? 'idle');
        $copies = [];
        foreach (['backup', 'security'] as $name) {
            $copy = $site['copies'][$name] ?? [];
            $copies[] = [
                'name' => get_string('copy:' . $name, 'tool_delivery'),
                'exists' => !empty($copy['exists']),
                'complete' => !empty($copy['complete']),
                'revision' => (string) ($copy['revision']['label'] ?? ''),
                'date' => delivery_actions::format_date($copy['copiedAt'] ?? null),
                'paths' => array_map(fn($path) => ['path' => (string) $path], $copy['refreshedPaths'] ?? []),
            ];
        }
        $served = (string) ($site['served'] ?? '');
        return [
            'phase' => $phase,
            'phasename' => get_string('phase:' . str_replace('_', '', $phase), 'tool_delivery'),
            'phasecolour' => self::PHASE_COLOURS[$phase] ?? 'secondary',
            'served' => $served === '' ? get_string('copy:unknown', 'tool_delivery') : get_string(
                'copy:' . $served,
                'tool_delivery'
            ),
            'wwwroot' => (string) ($site['wwwroot'] ?? ''),
            'vcs' => (string) ($site['vcs'] ?? ''),
            'production' => (string) ($site['productionRevision']['label'] ?? ''),
            // Before the first Secure the helper has not read production's revision (its status runs
            // no program): say which working copy it is and when it is read.
            'productionunread' => isset($site['productionRevision']['label']) ? ''
                : get_string('banner:unknown', 'tool_delivery', (string) ($site['vcs'] ?? '')),
            'productiondate' => delivery_actions::format_date($site['productionRevision']['readAt'] ?? null),
            'before' => (string) ($site['revisionBeforeDelivery']['label'] ?? ''),
            'deliverystarted' => delivery_actions::format_date($site['deliveryStartedAt'] ?? null),
            'copies' => $copies,
            'holder' => self::holder($site['running'] ?? $this->job),
            'interrupted' => self::holder($site['interrupted'] ?? null),
            'siteoption' => \tool_delivery\local\client_factory::cli_site_option(),
            'maintenance' => !empty($site['maintenanceEnabled']),
            'upgraderan' => !empty($site['upgradeRan']),
            'comments' => array_map(fn($comment) => ['text' => (string) $comment], $site['comments'] ?? []),
            'snapshot' => self::snapshot($site['snapshot'] ?? null),
            'healthcheck' => self::health_check($site['lastHealthCheck'] ?? null),
            'windowopen' => !empty($site['deliveryWindowOpen']),
        ];
    }

    /**
     * The database snapshot of the current or last delivery.
     *
     * @param array|null $snapshot The helper's snapshot.
     * @return array|false Database, type, size, tables, duration of the dump, when it was taken and
     *         the code it belongs to; or false.
     */
    private static function snapshot(?array $snapshot) {
        if ($snapshot === null) {
            return false;
        }
        return [
            'detail' => get_string('banner:snapshotdetail', 'tool_delivery', (object) [
                'database' => (string) ($snapshot['database'] ?? ''),
                'type' => (string) ($snapshot['databaseType'] ?? ''),
                'tables' => (int) ($snapshot['tableCount'] ?? 0),
                'size' => delivery_actions::format_size((int) ($snapshot['sizeBytes'] ?? 0)),
            ]),
            'taken' => get_string(self::snapshot_taken_key($snapshot), 'tool_delivery', (object) [
                'date' => delivery_actions::format_date($snapshot['takenAt'] ?? null),
                'duration' => delivery_actions::format_duration((float) ($snapshot['seconds'] ?? 0)),
                'copy' => (string) ($snapshot['copyDatabase'] ?? ''),
                'replaced' => (string) ($snapshot['replacedDatabase'] ?? ''),
            ]),
            'code' => (string) ($snapshot['codeRevision']['label'] ?? ''),
        ];
    }

    /**
     * How the snapshot was taken, as a string key: dumped, copied by the database server, or that
     * copy already put back by a rollback.
     *
     * @param array $snapshot The helper's snapshot.
     * @return string The key of the sentence.
     */
    private static function snapshot_taken_key(array $snapshot): string {
        if (empty($snapshot['copyDatabase'])) {
            return 'banner:snapshottaken';
        }
        return empty($snapshot['replacedDatabase']) ? 'banner:snapshotcopied' : 'banner:snapshotswapped';
    }

    /**
     * The last health check after Restore production.
     *
     * @param array|null $report The helper's health report.
     * @return array|false Passed, its name and colour, when it ran, results and failures; or false.
     */
    private static function health_check(?array $report) {
        if ($report === null) {
            return false;
        }
        $passed = !empty($report['passed']);
        return [
            'passed' => $passed,
            'result' => get_string($passed ? 'result:succeeded' : 'result:failed', 'tool_delivery'),
            'colour' => $passed ? 'success' : 'danger',
            'date' => delivery_actions::format_date($report['checkedAt'] ?? null),
            'results' => array_map(fn($notice) => ['text' => notices::sentence((array) $notice)], $report['resultNotices'] ?? []),
            'failures' => array_map(fn($notice) => ['text' => notices::sentence((array) $notice)], $report['failureNotices'] ?? []),
        ];
    }

    /**
     * Who holds the lock (or held it, for an interrupted operation).
     *
     * @param array|null $running A running operation or job.
     * @return array|false Name, operation and since, or false.
     */
    private static function holder(?array $running) {
        if ($running === null) {
            return false;
        }
        $operation = (string) ($running['operation'] ?? '');
        return [
            'name' => (string) ($running['actor']['name'] ?? '?'),
            'source' => (string) ($running['actor']['source'] ?? ''),
            'operation' => get_string(delivery_actions::operation_key($operation), 'tool_delivery'),
            'since' => delivery_actions::format_date($running['startedAt'] ?? null),
        ];
    }
}
