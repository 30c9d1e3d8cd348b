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
 * The report of one delivery (report.php?id=DELIVERYID), and its download (&dataformat=csv|ods|pdf).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/adminlib.php');

use tool_delivery\local\client_factory;
use tool_delivery\local\helper_exception;
use tool_delivery\local\report_rows;
use tool_delivery\local\report_store;

$id = required_param('id', PARAM_ALPHANUMEXT);
$dataformat = optional_param('dataformat', '', PARAM_ALPHA);

$pageurl = new moodle_url('/admin/tool/delivery/report.php');
admin_externalpage_setup('tool_delivery', '', ['id' => $id], $pageurl);
if (!report_store::is_delivery_id($id)) {
    throw new moodle_exception('error:notfound', 'tool_delivery');
}

// The report kept; a delivery still under way (or not kept yet) is asked again from the helper.
$store = new report_store();
$report = $store->get($id);
if ($report === null || ($report['outcome'] ?? '') === 'in_progress') {
    try {
        $report = client_factory::for_user($USER)->report($id);
        $store->save($report);
    } catch (helper_exception $error) {
        if ($report === null) {
            throw new moodle_exception($error->get_string_key(), 'tool_delivery', '', $error->errorcode);
        }
    }
}

if ($dataformat !== '') {
    if (!in_array($dataformat, report_rows::FORMATS, true)) {
        throw new invalid_parameter_exception('unknown format');
    }
    \core\dataformat::download_data('delivery-' . $id, $dataformat, report_rows::columns(), report_rows::for_download($report));
    die();
}

$formats = [];
foreach (core_plugin_manager::instance()->get_plugins_of_type('dataformat') as $name => $plugin) {
    if (in_array($name, report_rows::FORMATS, true) && $plugin->is_enabled()) {
        $formats[$name] = get_string('dataformat', $plugin->component);
    }
}

$PAGE->set_title(get_string('report:title', 'tool_delivery'));
$PAGE->navbar->add(get_string('report:title', 'tool_delivery'), new moodle_url($pageurl, ['id' => $id]));
$output = $PAGE->get_renderer('tool_delivery');
echo $output->header();
echo $output->heading(get_string('report:heading', 'tool_delivery', $id));
$backurl = new moodle_url('/admin/tool/delivery/index.php');
echo $output->render(new \tool_delivery\output\delivery_report($report, $formats, $pageurl->out(false), $backurl->out(false)));
echo $output->footer();
