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
 * The delivery screen's web farm section: every node of the site and where it stands.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\output;

use renderable;
use renderer_base;
use templatable;
use tool_delivery\local\delivery_actions;

/**
 * The web farm section, shown when the site's configuration names other nodes (`site.farmNodes`):
 * this node and each other node with its state, the copy it serves, production's revision and its
 * last result, as the node's helper answered over SSH (`GET /farm`), or why it could not be asked.
 * On a farm every button of the page acts on every node (the helper coordinates).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class farm_panel implements renderable, templatable {
    /** @var array The helper's `site` status (this node). */
    private array $site;

    /** @var array|null The other nodes (`GET /farm`), or null when they could not be asked. */
    private ?array $nodes;

    /** @var string Why the nodes could not be asked ('' when they were). */
    private string $error;

    /**
     * Makes the section.
     *
     * @param array $site The helper's `site` status (this node).
     * @param array|null $nodes The other nodes as `GET /farm` lists them, or null when it failed.
     * @param string $error Why it failed.
     */
    public function __construct(array $site, ?array $nodes, string $error = '') {
        $this->site = $site;
        $this->nodes = $nodes;
        $this->error = $error;
    }

    /**
     * Whether the site is a web farm (its configuration names other nodes).
     *
     * @param array $site The helper's `site` status.
     * @return bool True on a farm.
     */
    public static function is_farm(array $site): bool {
        return !empty($site['farmNodes']) && is_array($site['farmNodes']);
    }

    /**
     * One row: a node's name, address and where it stands.
     *
     * @param array $node `node`, `address`, `phase`, `served`, `revision`, `outOfLine`, `running`,
     *     `lastOperation`, `lastSucceeded`, `lastFinishedAt`, `problem`.
     * @param bool $thisnode Whether it is the node the page talks to.
     * @return array The row's context.
     */
    public static function row(array $node, bool $thisnode): array {
        $phase = (string) ($node['phase'] ?? '');
        $served = (string) ($node['served'] ?? '');
        $last = (string) ($node['lastOperation'] ?? '');
        $problem = (string) ($node['problem'] ?? '');
        return [
            'name' => (string) ($node['node'] ?? ''),
            'address' => (string) ($node['address'] ?? ''),
            'thisnode' => $thisnode,
            'answered' => $problem === '',
            'problem' => $problem,
            'phase' => $phase === '' ? '' : get_string('phase:' . strtolower($phase), 'tool_delivery'),
            'served' => $served === '' ? get_string('tree:unknown', 'tool_delivery')
                : get_string('tree:' . $served, 'tool_delivery'),
            'revision' => (string) ($node['revision'] ?? ''),
            'outofline' => !empty($node['outOfLine']),
            'running' => empty($node['running']) ? ''
                : get_string('operation:' . str_replace('-', '', (string) $node['running']), 'tool_delivery'),
            'last' => $last === '' ? false : [
                'operation' => get_string('operation:' . str_replace('-', '', $last), 'tool_delivery'),
                'succeeded' => !empty($node['lastSucceeded']),
                'date' => delivery_actions::format_date($node['lastFinishedAt'] ?? null),
            ],
        ];
    }

    /**
     * The template's context.
     *
     * @param renderer_base $output The renderer.
     * @return array The context.
     */
    public function export_for_template(renderer_base $output): array {
        $lastresults = is_array($this->site['lastResults'] ?? null) ? $this->site['lastResults'] : [];
        $lastoperation = '';
        $lastresult = null;
        foreach ($lastresults as $operation => $result) {
            if ($lastresult === null || (string) ($result['finishedAt'] ?? '') > (string) ($lastresult['finishedAt'] ?? '')) {
                [$lastoperation, $lastresult] = [(string) $operation, $result];
            }
        }
        $own = [
            'node' => get_string('farm:thisnode', 'tool_delivery'),
            'address' => (string) (parse_url((string) ($this->site['wwwroot'] ?? ''), PHP_URL_HOST) ?? ''),
            'phase' => $this->site['phase'] ?? '',
            'served' => $this->site['served'] ?? '',
            'revision' => $this->site['productionRevision']['label'] ?? '',
            'running' => $this->site['running']['operation'] ?? '',
            'lastOperation' => $lastoperation,
            'lastSucceeded' => !empty($lastresult['succeeded']),
            'lastFinishedAt' => $lastresult['finishedAt'] ?? null,
        ];
        $rows = [self::row($own, true)];
        foreach ($this->nodes ?? [] as $node) {
            $rows[] = self::row($node, false);
        }
        $unanswered = count(array_filter($rows, fn(array $row): bool => !$row['answered']));
        return [
            'count' => count($this->site['farmNodes'] ?? []) + 1,
            'rows' => $rows,
            'asked' => $this->nodes !== null,
            'error' => $this->error,
            'unanswered' => $unanswered,
        ];
    }
}
