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
 * The helper's health questions in one bootstrap of Moodle, answered as one line of JSON.
 *
 * With --pending: "upgrade" is "none" when the code matches the database, "pending" when an
 * upgrade is due, "downgrade" when the code is older than the database (what
 * admin/cli/upgrade.php --is-pending answers with 0, 2 and its error). With --checks: "critical"
 * lists the references of the status checks whose result is critical or an error (the rows
 * admin/cli/checks.php reports as CRITICAL). The helper runs it as the web user instead of those
 * two scripts: each is a whole bootstrap of Moodle, and upgrade.php loads far more than the question
 * needs (on a Moodle 4.5 site: 0.14 s for --pending against 1.4 s for upgrade.php --is-pending).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('CLI_SCRIPT', true);

require(__DIR__ . '/../../../../config.php');

$answer = ['version' => 1];
if (in_array('--pending', $argv, true)) {
    $version = null;
    require($CFG->dirroot . '/version.php');
    if (isset($CFG->version) && $version < $CFG->version) {
        $answer['upgrade'] = 'downgrade';
    } else {
        $answer['upgrade'] = moodle_needs_upgrading(false) ? 'pending' : 'none';
    }
}
if (in_array('--checks', $argv, true)) {
    $critical = [];
    foreach (\core\check\manager::get_checks('status') as $check) {
        $status = $check->get_result()->get_status();
        if ($status === \core\check\result::CRITICAL || $status === \core\check\result::ERROR) {
            $critical[] = $check->get_ref();
        }
    }
    $answer['critical'] = $critical;
}
echo json_encode($answer), "\n";
exit(0);
