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
 * Steps of tool_delivery's Behat features.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

// NOTE: no MOODLE_INTERNAL test here, this file may be required by behat before including /config.php.

require_once(__DIR__ . '/../../../../../lib/behat/behat_base.php');

/**
 * Steps of tool_delivery's Behat features: waiting for a job the delivery screen follows, which
 * takes as long as the helper's operation (a whole delivery of a real site: minutes).
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class behat_tool_delivery extends behat_base {
    /**
     * Waits until the job the delivery screen follows has ended and its result is shown.
     *
     * @Given /^the delivery screen shows the job's result$/
     */
    public function the_delivery_screen_shows_the_jobs_result(): void {
        $this->spin(
            function ($context) {
                $result = $context->getSession()->getPage()->find('css', '[data-region="tool_delivery-result"]');
                return $result !== null && $result->isVisible();
            },
            [],
            900
        );
    }

    /**
     * Checks that no job is followed on the delivery screen (nothing was started).
     *
     * @Then /^the delivery screen follows no job$/
     */
    public function the_delivery_screen_follows_no_job(): void {
        $progress = $this->getSession()->getPage()->find('css', '[data-region="tool_delivery-progress"]');
        if ($progress !== null && $progress->isVisible()) {
            throw new \Behat\Mink\Exception\ExpectationException(
                'The delivery screen follows a job: something was started',
                $this->getSession()
            );
        }
    }
}
