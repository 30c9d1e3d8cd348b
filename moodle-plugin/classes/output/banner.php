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
 * The banner of the delivery page: state, served copy, copies, lock holder.
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

/**
 * The banner of the delivery page: state, served copy, copies, lock holder.
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
            'served' => $served === '' ? get_string('copy:unknown', 'tool_delivery') : get_string('copy:' . $served,
                'tool_delivery'),
            'wwwroot' => (string) ($site['wwwroot'] ?? ''),
            'vcs' => (string) ($site['vcs'] ?? ''),
            'production' => (string) ($site['productionRevision']['label'] ?? ''),
            'productiondate' => delivery_actions::format_date($site['productionRevision']['readAt'] ?? null),
            'before' => (string) ($site['revisionBeforeDelivery']['label'] ?? ''),
            'deliverystarted' => delivery_actions::format_date($site['deliveryStartedAt'] ?? null),
            'copies' => $copies,
            'holder' => self::holder($site['running'] ?? $this->job),
            'interrupted' => self::holder($site['interrupted'] ?? null),
            'maintenance' => !empty($site['maintenanceEnabled']),
            'upgraderan' => !empty($site['upgradeRan']),
            'comments' => array_map(fn($comment) => ['text' => (string) $comment], $site['comments'] ?? []),
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
