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
 * The delivery screen's upstream section: the code waiting upstream, deliver later, and the schedule.
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
use tool_delivery\local\helper_rules;
use tool_delivery\local\upstream_summary;

/**
 * The delivery screen's upstream section, from the helper's status: what the upstream watch found
 * (`site.upstream`: the revision, commits, files, version changes, the upgrade, whether the
 * preflight would block), the "Deliver later" form while code waits and nothing is scheduled, and
 * the scheduled Run all (`site.schedule`) with its Cancel button.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class upstream_panel implements renderable, templatable {
    /** @var array The helper's `site` status. */
    private array $site;

    /** @var string Where the forms post (schedule.php). */
    private string $actionurl;

    /** @var string The session key. */
    private string $sesskey;

    /** @var string The form's default time (`YYYY-MM-DDTHH:MM`, the next 02:00 in the user's time zone). */
    private string $defaultat;

    /**
     * Makes the section.
     *
     * @param array $site The helper's `site` status.
     * @param string $actionurl Where the forms post.
     * @param string $sesskey The session key.
     * @param string $defaultat The form's default time.
     */
    public function __construct(array $site, string $actionurl, string $sesskey, string $defaultat) {
        $this->site = $site;
        $this->actionurl = $actionurl;
        $this->sesskey = $sesskey;
        $this->defaultat = $defaultat;
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $preview = is_array($this->site['upstream'] ?? null) ? $this->site['upstream'] : null;
        $schedule = is_array($this->site['schedule'] ?? null) ? $this->site['schedule'] : null;
        $summary = $preview === null ? null : new upstream_summary($preview);
        $waiting = $summary !== null && $summary->waiting();
        // The last rehearsal tried this revision and failed: it is not delivered without a confirmation.
        $rehearsalfailed = $waiting && rehearsal_panel::blocks($this->site)
            && (string) ($this->site['rehearsal']['revision']['id'] ?? '') === $summary->revision_id();
        return [
            'checknow' => ['actionurl' => $this->actionurl, 'sesskey' => $this->sesskey],
            'checked' => $summary !== null,
            'checkedat' => delivery_actions::format_date($preview['checkedAt'] ?? null),
            'waiting' => $waiting ? self::waiting_context($summary) + ['rehearsalfailed' => $rehearsalfailed] : false,
            'current' => $summary !== null && !$waiting ? get_string(
                'upstream:current',
                'tool_delivery',
                (string) ($preview['current']['label'] ?? $summary->revision_label())
            ) : '',
            'later' => $waiting && $schedule === null && !$rehearsalfailed ? [
                'actionurl' => $this->actionurl,
                'sesskey' => $this->sesskey,
                'revision' => $summary->revision_id(),
                'revisionlabel' => $summary->revision_label(),
                'defaultat' => $this->defaultat,
                'commentmax' => helper_rules::COMMENT_MAX_CHARACTERS,
            ] : false,
            'schedule' => $schedule === null ? false : $this->schedule_context($schedule),
        ];
    }

    /**
     * What waits upstream.
     *
     * @param upstream_summary $summary The summary.
     * @return array revision, counts, commits, hascommits, versions, hasversions, upgrade, blocking, blockers.
     */
    private static function waiting_context(upstream_summary $summary): array {
        $blockers = array_map(fn(string $text) => ['text' => $text], $summary->blockers());
        return [
            'revision' => $summary->revision_label(),
            'counts' => $summary->counts(),
            'commits' => $summary->commits(),
            'hascommits' => !empty($summary->commits()),
            'versions' => $summary->version_changes(),
            'hasversions' => !empty($summary->version_changes()),
            'upgrade' => $summary->upgrade(),
            'blocking' => $summary->blocking(),
            'blockers' => $blockers,
        ];
    }

    /**
     * The scheduled Run all: when, who set it, which revision, whether the preflight gates it.
     *
     * @param array $schedule The helper's DeliverySchedule.
     * @return array at, who, setat, revision, gated, securitycopy, comment, actionurl, sesskey.
     */
    private function schedule_context(array $schedule): array {
        return [
            'at' => delivery_actions::format_date($schedule['at'] ?? null),
            'who' => (string) ($schedule['actor']['name'] ?? '?'),
            'setat' => delivery_actions::format_date($schedule['setAt'] ?? null),
            'revision' => (string) ($schedule['revision']['label'] ?? $schedule['revision']['id'] ?? ''),
            'gated' => get_string(
                ($schedule['onlyIfPreflightPasses'] ?? true) !== false ? 'later:gated' : 'later:notgated',
                'tool_delivery'
            ),
            'securitycopy' => !empty($schedule['securityCopy']),
            'comment' => (string) ($schedule['comment'] ?? ''),
            'actionurl' => $this->actionurl,
            'sesskey' => $this->sesskey,
        ];
    }
}
