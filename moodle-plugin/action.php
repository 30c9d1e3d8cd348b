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
 * Starts a delivery action with the helper when the page is used without JavaScript (POST only), then
 * shows the page following the job. With JavaScript, the page calls tool_delivery_start_operation.
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

$action = required_param('action', PARAM_ALPHAEXT);
if (!delivery_actions::offers($action)) {
    throw new invalid_parameter_exception('unknown action');
}
$options = [
    'securityCopy' => optional_param('securitycopy', false, PARAM_BOOL),
    // As typed: a path the helper would not take is refused with what was typed, never rewritten.
    'securePath' => optional_param('securepath', '', PARAM_RAW_TRIMMED),
    'updatePath' => optional_param('updatepath', '', PARAM_RAW_TRIMMED),
    'comment' => optional_param('comment', '', PARAM_TEXT),
    // Rollback: the ticked confirmation that the database snapshot may be restored (sent only when ticked).
    'confirmDatabaseRestore' => optional_param('confirmdatabaserestore', false, PARAM_BOOL),
    // Rollback with a database restore: the code of the administrator's authenticator, passed on
    // once to the helper and kept nowhere (not in the session, the log or the event).
    'secondFactorCode' => optional_param('secondfactorcode', '', PARAM_ALPHANUM),
    // Restore or Run all of a revision whose rehearsal failed: the ticked confirmation.
    'confirmFailedRehearsal' => optional_param('confirmfailedrehearsal', false, PARAM_BOOL),
];

try {
    $jobid = delivery_actions::start(client_factory::for_user($USER), $action, $options);
    redirect(new moodle_url($returnurl, ['job' => $jobid]));
} catch (helper_exception $error) {
    redirect($returnurl, s(delivery_actions::error_message($error)), null, \core\output\notification::NOTIFY_ERROR);
}
