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
 * What the delivery page shows when the helper cannot be used, and how to finish from deliveryctl.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

use renderable;
use renderer_base;
use templatable;
use tool_delivery\local\client_factory;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_exception;

/**
 * What the delivery page shows when the helper cannot be used, and how to finish from deliveryctl.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class helper_down implements renderable, templatable {
    /** @var helper_exception The error met. */
    private helper_exception $error;

    /**
     * Makes the message.
     *
     * @param helper_exception $error The error met.
     */
    public function __construct(helper_exception $error) {
        $this->error = $error;
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $site = client_factory::cli_site_option();
        return [
            'message' => delivery_actions::error_message($this->error),
            'code' => $this->error->errorcode,
            'detail' => $this->error->getMessage(),
            'socket' => client_factory::socket_path(),
            // Run as root on the server, naming this site when there are several.
            'commands' => [
                ['command' => 'deliveryctl status' . $site, 'help' => get_string('helperdown:status', 'tool_delivery')],
                ['command' => 'deliveryctl restore' . $site, 'help' => get_string('helperdown:restore', 'tool_delivery')],
                ['command' => 'deliveryctl cancel' . $site, 'help' => get_string('helperdown:cancel', 'tool_delivery')],
                ['command' => 'deliveryctl rollback' . $site, 'help' => get_string('helperdown:rollback', 'tool_delivery')],
                ['command' => 'pgrep -a deliveryd', 'help' => get_string('helperdown:service', 'tool_delivery')],
            ],
            'checkurl' => (new \moodle_url('/report/status/index.php'))->out(false),
        ];
    }
}
