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
 * Renderer of tool_delivery.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

/**
 * Renderer of tool_delivery: every piece is a Mustache template fed by a renderable.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class renderer extends \plugin_renderer_base {
    /**
     * The delivery screen.
     *
     * @param screen $screen The screen.
     * @return string The HTML.
     */
    protected function render_screen(screen $screen): string {
        return $this->render_from_template('tool_delivery/screen', $screen->export_for_template($this));
    }

    /**
     * The report of the Check button.
     *
     * @param preflight $report The report.
     * @return string The HTML.
     */
    protected function render_preflight(preflight $report): string {
        return $this->render_from_template('tool_delivery/preflight', $report->export_for_template($this));
    }

    /**
     * What the emergency rollback would do now.
     *
     * @param rollback_plan $plan The plan.
     * @return string The HTML.
     */
    protected function render_rollback_plan(rollback_plan $plan): string {
        return $this->render_from_template('tool_delivery/rollback_plan', $plan->export_for_template($this));
    }

    /**
     * The message shown when the helper cannot be used.
     *
     * @param helper_down $page The message.
     * @return string The HTML.
     */
    protected function render_helper_down(helper_down $page): string {
        return $this->render_from_template('tool_delivery/helper_down', $page->export_for_template($this));
    }

    /**
     * The report of one delivery.
     *
     * @param delivery_report $report The report.
     * @return string The HTML.
     */
    protected function render_delivery_report(delivery_report $report): string {
        return $this->render_from_template('tool_delivery/delivery_report', $report->export_for_template($this));
    }

    /**
     * The upstream section: code waiting, deliver later, the schedule.
     *
     * @param upstream_panel $panel The section.
     * @return string The HTML.
     */
    protected function render_upstream_panel(upstream_panel $panel): string {
        return $this->render_from_template('tool_delivery/upstream_panel', $panel->export_for_template($this));
    }
}
