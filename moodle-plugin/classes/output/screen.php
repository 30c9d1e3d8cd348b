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
 * The delivery screen: banner, the four steps, run all and cancel, the check, emergency rollback, progress, history.
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
use tool_delivery\local\job_view;
use tool_delivery\local\notices;
use tool_delivery\local\schedule_time;

/**
 * The delivery screen: banner, the four steps, run all and cancel, the check, emergency rollback, progress, history.
 *
 * The upstream section (code waiting, deliver later, the schedule) is {@see upstream_panel}.
 * Buttons follow the `allowed` list of the helper's status (the helper refuses the others anyway);
 * while an operation runs, only the emergency rollback stays enabled.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class screen implements renderable, templatable {
    /** @var array The helper's status (`site`, `job`). */
    private array $status;

    /** @var array The helper's audit records. */
    private array $records;

    /** @var string A job to follow when the page opens ('' for none). */
    private string $followjob;

    /** @var array|null The job the page was sent to, as the page shows it without JavaScript ({@see self::job_context()}). */
    private ?array $job;

    /** @var preflight|null The report of the Check button, when it was pressed. */
    private ?preflight $preflight;

    /** @var farm_panel|null The web farm section, on a farm. */
    private ?farm_panel $farm;

    /**
     * Makes the screen.
     *
     * @param array $status The helper's status.
     * @param array $records The helper's audit records, newest first.
     * @param string $followjob A job to follow when the page opens.
     * @param array|null $job The job the page was sent to: its progress ({@see job_view::progress()}) from the first line.
     * @param preflight|null $preflight The report of the Check button, when it was pressed.
     * @param farm_panel|null $farm The web farm section, on a farm.
     */
    public function __construct(
        array $status,
        array $records,
        string $followjob = '',
        ?array $job = null,
        ?preflight $preflight = null,
        ?farm_panel $farm = null
    ) {
        $this->farm = $farm;
        $this->job = $job;
        $this->preflight = $preflight;
        $this->status = $status;
        $this->records = $records;
        $this->followjob = $followjob;
    }

    /**
     * The operations whose buttons are enabled: those the state allows, none while one runs.
     *
     * @param array $status The helper's status (`site`, `job`).
     * @return string[] The operations.
     */
    public static function enabled_operations(array $status): array {
        $site = $status['site'] ?? [];
        if (isset($status['job']) || isset($site['running'])) {
            return [];
        }
        return array_values(array_map('strval', $site['allowed'] ?? []));
    }

    /**
     * The context of the progress area for a job the page was sent to, without JavaScript: its log,
     * and its result, or that it still runs with a link to reload (the AMD module follows it live).
     *
     * @param array $progress The job's progress ({@see job_view::progress()}).
     * @return array running, statusline, log, result (see tool_delivery/job_result, or false), reload.
     */
    public static function job_context(array $progress): array {
        $indexurl = (new \moodle_url('/admin/tool/delivery/index.php'))->out(false);
        $result = $progress['result'];
        return [
            'running' => $result === false,
            'statusline' => $progress['statusline'],
            'log' => implode("\n", $progress['lines']),
            'result' => $result === false ? false : $result + ['indexurl' => $indexurl],
            'reload' => get_string('progress:reload', 'tool_delivery'),
        ];
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $site = $this->status['site'];
        $job = $this->status['job'] ?? null;
        $busy = $job !== null || isset($site['running']);
        $allowed = array_flip(self::enabled_operations($this->status));
        $enabled = fn(string $operation): bool => isset($allowed[$operation]);
        $steps = [];
        foreach (helper_rules::STEPS as $index => $operation) {
            $key = str_replace('-', '', $operation);
            $last = $site['lastResults'][$operation] ?? null;
            $steps[] = [
                'number' => $index + 1,
                'operation' => $operation,
                'name' => get_string('step:' . $key, 'tool_delivery'),
                'help' => get_string('step:' . $key . '_help', 'tool_delivery'),
                'button' => get_string('action:' . $key, 'tool_delivery'),
                'enabled' => $enabled($operation),
                'issecure' => $operation === 'secure',
                'isupdate' => $operation === 'update',
                'last' => $last === null ? false : [
                    'succeeded' => !empty($last['succeeded']),
                    'date' => delivery_actions::format_date($last['finishedAt'] ?? null),
                    'message' => notices::say($last['notices'] ?? null),
                ],
            ];
        }
        $target = rollback_plan::target_name($site);
        $followjob = $this->followjob !== '' ? $this->followjob : (string) ($job['id'] ?? '');
        return [
            'banner' => (new banner($site, $job))->export_for_template($output),
            'farm' => $this->farm === null ? false : $this->farm->export_for_template($output),
            'actionurl' => (new \moodle_url('/admin/tool/delivery/action.php'))->out(false),
            'consoleurl' => (new \moodle_url('/admin/tool/delivery/console.php'))->out(false),
            'indexurl' => (new \moodle_url('/admin/tool/delivery/index.php'))->out(false),
            'sesskey' => sesskey(),
            'steps' => $steps,
            'runall' => $enabled('run-all'),
            'rehearse' => $enabled('rehearse'),
            'rehearsal' => (new rehearsal_panel($site))->export_for_template($output),
            'rehearsalblocks' => rehearsal_panel::blocks($site),
            'cancel' => $enabled('cancel'),
            'rollback' => $target !== '',
            // Inside a sentence ("A rollback would serve the security copy.").
            'rollbacktarget' => $target,
            'rollbackplan' => (new rollback_plan($site))->export_for_template($output),
            'preflight' => $this->preflight === null ? false : $this->preflight->export_for_template($output),
            'busy' => $busy,
            'followjob' => $followjob,
            'commentmax' => helper_rules::COMMENT_MAX_CHARACTERS,
            'pathpattern' => helper_rules::PATH_HTML_PATTERN,
            'history' => (new history($this->records))->export_for_template($output),
            'job' => $this->job === null ? false : self::job_context($this->job),
            'siteoption' => \tool_delivery\local\client_factory::cli_site_option(),
            'upstream' => (new upstream_panel(
                $site,
                (new \moodle_url('/admin/tool/delivery/schedule.php'))->out(false),
                sesskey(),
                schedule_time::default_local(\core_date::get_user_timezone_object(), time())
            ))->export_for_template($output),
        ];
    }
}
