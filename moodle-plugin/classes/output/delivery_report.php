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
 * The report of one delivery: its lines grouped by section, and the download selector.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

use renderable;
use renderer_base;
use templatable;
use tool_delivery\local\report_rows;

/**
 * The report of one delivery (report.php): the lines of {@see report_rows} grouped by section (long
 * sections folded), and a selector to download them as CSV, ODS or PDF.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class delivery_report implements renderable, templatable {
    /** @var int Sections longer than this are folded. */
    private const FOLDED_FROM = 10;

    /** @var array The helper's DeliveryReport. */
    private array $report;

    /** @var array Format => its name, the download formats offered. */
    private array $formats;

    /** @var string Where the download form goes (report.php). */
    private string $downloadurl;

    /** @var string The delivery page. */
    private string $backurl;

    /**
     * Makes the report.
     *
     * @param array $report The helper's DeliveryReport.
     * @param array $formats Format => its name (those of {@see report_rows::FORMATS} that are enabled).
     * @param string $downloadurl Where the download form goes.
     * @param string $backurl The delivery page.
     */
    public function __construct(array $report, array $formats, string $downloadurl, string $backurl) {
        $this->report = $report;
        $this->formats = $formats;
        $this->downloadurl = $downloadurl;
        $this->backurl = $backurl;
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $sections = [];
        foreach (report_rows::of($this->report) as $row) {
            $key = $row['section'];
            if (!isset($sections[$key])) {
                $sections[$key] = [
                    'name' => $key,
                    'title' => get_string('report:section:' . $key, 'tool_delivery'),
                    'rows' => [],
                ];
            }
            $sections[$key]['rows'][] = ['item' => $row['item'], 'value' => $row['value']];
        }
        foreach ($sections as $key => $section) {
            $sections[$key]['count'] = count($section['rows']);
            $sections[$key]['folded'] = count($section['rows']) > self::FOLDED_FROM;
        }
        $formats = [];
        foreach ($this->formats as $value => $label) {
            $formats[] = ['value' => (string) $value, 'label' => (string) $label];
        }
        return [
            'deliveryid' => (string) ($this->report['deliveryId'] ?? ''),
            'outcome' => report_rows::outcome((string) ($this->report['outcome'] ?? '')),
            'sections' => array_values($sections),
            'backurl' => $this->backurl,
            'download' => $formats ? ['url' => $this->downloadurl, 'formats' => $formats,
                'deliveryid' => (string) ($this->report['deliveryId'] ?? '')] : false,
        ];
    }
}
