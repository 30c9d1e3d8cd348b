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
 * Hook callbacks of tool_delivery.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery;

use core\hook\output\before_http_headers;
use tool_delivery\local\upstream_watch;

/**
 * Hook callbacks of tool_delivery.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class hook_callbacks {
    /**
     * On the Notifications page (admin/index.php, page type admin-index), tells the people who
     * deliver that code waits upstream, as Moodle tells of available updates there. Moodle has no
     * hook into that page's list (admin_notifications_page takes a fixed set), so it is one of the
     * page's own notifications, shown under its header with the others. It reads what the upstream
     * watch kept in the plugin's configuration: the page never waits for the helper.
     *
     * @param before_http_headers $hook The hook.
     */
    public static function before_http_headers(before_http_headers $hook): void {
        global $PAGE;
        if (during_initial_install() || $PAGE->pagetype !== 'admin-index' || !isloggedin() || isguestuser()) {
            return;
        }
        if (!has_capability('tool/delivery:deliver', \context_system::instance())) {
            return;
        }
        $summary = upstream_watch::last();
        if ($summary === null || !$summary->waiting()) {
            return;
        }
        $html = $hook->renderer->render_from_template('tool_delivery/upstream_notice', [
            'revision' => $summary->revision_label(),
            'counts' => $summary->counts(),
            'upgrade' => $summary->upgrade(),
            'blocking' => $summary->blocking(),
            'url' => (new \moodle_url('/admin/tool/delivery/index.php', [], 'tool_delivery-later'))->out(false),
        ]);
        \core\notification::add(
            $html,
            $summary->blocking() ? \core\output\notification::NOTIFY_WARNING : \core\output\notification::NOTIFY_INFO
        );
    }
}
