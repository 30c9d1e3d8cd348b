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
 * The plugin's external functions, called by the delivery screen with core/ajax.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$functions = [
    'tool_delivery_start_operation' => [
        'classname' => \tool_delivery\external\start_operation::class,
        'description' => 'Starts a delivery step, Run all, Cancel or the emergency rollback with the helper.',
        'type' => 'write',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_get_job' => [
        'classname' => \tool_delivery\external\get_job::class,
        'description' => "A delivery job's steps, log lines and result, with the site's state.",
        'type' => 'read',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_get_status' => [
        'classname' => \tool_delivery\external\get_status::class,
        'description' => "The site's delivery state: banner, rollback plan and the operations allowed.",
        'type' => 'read',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_run_preflight' => [
        'classname' => \tool_delivery\external\run_preflight::class,
        'description' => 'The preflight of the update, as Restore production would run it, changing nothing.',
        'type' => 'read',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_get_console_link' => [
        'classname' => \tool_delivery\external\get_console_link::class,
        'description' => "A short-lived link to the helper's emergency console for this administrator.",
        'type' => 'write',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_schedule_delivery' => [
        'classname' => \tool_delivery\external\schedule_delivery::class,
        'description' => 'Deliver later: schedules a Run all of the waiting upstream revision with the helper.',
        'type' => 'write',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
    'tool_delivery_cancel_schedule' => [
        'classname' => \tool_delivery\external\cancel_schedule::class,
        'description' => 'Cancels the scheduled Run all.',
        'type' => 'write',
        'ajax' => true,
        'capabilities' => 'tool/delivery:deliver',
    ],
];
