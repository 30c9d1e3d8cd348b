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
 * Opens the helper's emergency console with a link issued now, for this administrator (POST only).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/adminlib.php');

use tool_delivery\local\client_factory;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_exception;

admin_externalpage_setup('tool_delivery');

$returnurl = new moodle_url('/admin/tool/delivery/index.php');
if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    redirect($returnurl);
}
require_sesskey();

try {
    $link = \tool_delivery\external\get_console_link::link(client_factory::for_user($USER)->console_token());
    redirect($link['url']);
} catch (helper_exception $error) {
    redirect($returnurl, s(delivery_actions::error_message($error)), null, \core\output\notification::NOTIFY_ERROR);
}
