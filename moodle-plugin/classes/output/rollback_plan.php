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
 * What the emergency rollback would do now: code only, or code and database, and the confirmation it needs.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

use renderable;
use renderer_base;
use templatable;
use tool_delivery\local\client_factory;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\notices;

/**
 * What the emergency rollback would do now: code only, or code and database, and the confirmation it needs.
 *
 * From the helper's rollback plan (`site.rollback` of the status): a one-line summary of its kind
 * in the user's language (with the snapshot's age and size for a database restore), the helper's
 * own explanation (English), and, when the site was open to users since the snapshot, the
 * required checkbox whose ticking sends `confirmDatabaseRestore`. It is drawn inside the rollback
 * form, and again by progress.php while the page follows a job (the plan changes with the state).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class rollback_plan implements renderable, templatable {
    /** @var array Plan kind => Bootstrap colour of its summary. */
    private const KIND_COLOURS = ['code' => 'warning', 'code_and_database' => 'danger', 'unavailable' => 'secondary'];

    /** @var array The helper's `site` status. */
    private array $site;

    /**
     * Makes the plan.
     *
     * @param array $site The helper's `site` status.
     */
    public function __construct(array $site) {
        $this->site = $site;
    }

    /**
     * The copy the rollback serves, inside a sentence ("the security copy"), or ''.
     *
     * @param array $site The helper's `site` status.
     * @return string The copy's name in lower case, or '' when there is none.
     */
    public static function target_name(array $site): string {
        $target = (string) ($site['rollback']['target'] ?? $site['rollbackTarget'] ?? '');
        return $target === '' ? '' : \core_text::strtolower(get_string('copy:' . $target, 'tool_delivery'));
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        global $USER;
        $plan = is_array($this->site['rollback'] ?? null) ? $this->site['rollback'] : [];
        $target = self::target_name($this->site);
        // A helper without rollback plans: the copy it serves is all there is to say.
        $kind = (string) ($plan['kind'] ?? ($target === '' ? 'unavailable' : 'code'));
        $snapshot = is_array($plan['snapshot'] ?? null) ? $plan['snapshot'] : null;
        $database = $kind === 'code_and_database';
        $confirm = $database && !empty($plan['needsConfirmation']);
        if ($database && $snapshot !== null) {
            $summary = get_string('rollback:kind:codeanddatabase', 'tool_delivery', (object) [
                'age' => delivery_actions::format_duration((float) ($plan['snapshotAgeSeconds'] ?? 0)),
                'size' => delivery_actions::format_size((int) ($snapshot['sizeBytes'] ?? 0)),
            ]);
        } else if ($database) {
            $summary = get_string('rollback:kind:codeanddatabasenosnapshot', 'tool_delivery');
        } else if ($kind === 'code') {
            $summary = get_string('rollback:kind:code', 'tool_delivery');
        } else {
            $summary = get_string('rollback:kind:unavailable', 'tool_delivery');
        }
        $takenat = delivery_actions::format_date($snapshot['takenAt'] ?? null);
        // Asked with the plugin's key, such a restore needs an enrolled administrator's code.
        $userid = (int) ($USER->id ?? 0);
        $enrolled = in_array($userid, array_map('intval', (array) ($this->site['secondFactorEnrolled'] ?? [])), true);
        return [
            'kind' => $kind,
            'colour' => self::KIND_COLOURS[$kind] ?? 'secondary',
            'summary' => $summary,
            'explanation' => notices::say($plan['notices'] ?? null),
            'needsconfirmation' => $confirm,
            'snapshotid' => (string) ($snapshot['id'] ?? ''),
            'confirmlabel' => $confirm ? get_string('rollback:confirmloss', 'tool_delivery', $takenat === '' ? '?' : $takenat) : '',
            'enrolled' => $enrolled,
            'enrolcommand' => 'deliveryctl admin enrol-totp ' . $userid . client_factory::cli_site_option(),
            // Asked by the browser before the rollback starts.
            'confirmquestion' => $target === '' ? '' : get_string(
                $database ? 'rollback:confirmdatabase' : 'rollback:confirm',
                'tool_delivery',
                $target
            ),
        ];
    }
}
