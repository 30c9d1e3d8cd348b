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
 * Admin tree entries of tool_delivery: the delivery page and the helper settings.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($hassiteconfig) {
    $ADMIN->add('server', new admin_externalpage(
        'tool_delivery',
        new lang_string('pluginname', 'tool_delivery'),
        new moodle_url('/admin/tool/delivery/index.php'),
        'tool/delivery:deliver'
    ));

    $settings = new admin_settingpage('tool_delivery_settings', new lang_string('settings:title', 'tool_delivery'));
    if ($ADMIN->fulltree) {
        $settings->add(new admin_setting_configtext(
            'tool_delivery/socketpath',
            new lang_string('settings:socketpath', 'tool_delivery'),
            new lang_string('settings:socketpath_desc', 'tool_delivery'),
            \tool_delivery\local\client_factory::DEFAULT_SOCKET,
            PARAM_PATH
        ));
        $settings->add(new admin_setting_configtext(
            'tool_delivery/keyfile',
            new lang_string('settings:keyfile', 'tool_delivery'),
            new lang_string('settings:keyfile_desc', 'tool_delivery'),
            \tool_delivery\local\client_factory::DEFAULT_KEY_FILE,
            PARAM_PATH
        ));
        $settings->add(new admin_setting_configtext(
            'tool_delivery/sitename',
            new lang_string('settings:sitename', 'tool_delivery'),
            new lang_string('settings:sitename_desc', 'tool_delivery'),
            '',
            '/^([a-z0-9_][a-z0-9._-]{0,63})?$/'
        ));
        $settings->add(new admin_setting_configcheckbox(
            'tool_delivery/rehearseafterupstreamcheck',
            new lang_string('settings:rehearseafterupstreamcheck', 'tool_delivery'),
            new lang_string('settings:rehearseafterupstreamcheck_desc', 'tool_delivery'),
            0
        ));
        $settings->add(new admin_setting_configtext(
            'tool_delivery/reportretentiondays',
            new lang_string('settings:reportretentiondays', 'tool_delivery'),
            new lang_string('settings:reportretentiondays_desc', 'tool_delivery'),
            365,
            PARAM_INT
        ));
    }
    $ADMIN->add('server', $settings);
}
