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
 * The helper's rules, as the plugin applies them before it asks.
 *
 * Generated from the helper's library (DeliveryCore) by
 * Tests/DeliveryCoreTests/PluginRulesTests.swift: do not edit by hand; after a change of the
 * rules there, run `UPDATE_PLUGIN_RULES=1 swift test --filter PluginRules`.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The helper's rules, as the plugin applies them before it asks (generated, see above).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class helper_rules {
    /** @var array Operation => the options it takes (Operation.requestMembers). */
    public const OPERATIONS = [
        'secure' => ['securityCopy', 'securePath'],
        'switch' => [],
        'update' => ['updatePath', 'comment'],
        'restore' => [],
        'run-all' => ['securityCopy', 'securePath', 'updatePath', 'comment'],
        'cancel' => [],
        'rollback' => ['confirmDatabaseRestore', 'secondFactorCode'],
        'recover' => [],
    ];

    /** @var string[] The four steps of a delivery, in order (Operation.steps). */
    public const STEPS = ['secure', 'switch', 'update', 'restore'];

    /** @var int The longest comment the helper takes, in characters (OperationRequest.commentLimit). */
    public const COMMENT_MAX_CHARACTERS = 2000;

    /**
     * @var string[] The error codes of a refusal: the operation stopped before it changed anything
     *      (DeliveryError.Code.isRefusal; docs/protocol.md, *Errors*).
     */
    public const REFUSALS = [
        'wrong_state',
        'lock_held',
        'stale_lock',
        'bad_path',
        'copy_missing',
        'not_moodle',
        'bad_request',
        'preflight_failed',
        'confirmation_required',
        'not_updatable',
        'second_factor_required',
        'second_factor_refused',
        'second_factor_locked',
        'rate_limited',
        'no_room',
    ];

    /** @var int The longest component path, in bytes (ComponentPath.maxBytes). */
    public const PATH_MAX_BYTES = 255;

    /** @var string One part of a component path, as a PCRE (ComponentPath). */
    public const PATH_PART_REGEX = '/^(?!-)(?!(?:\.|\.\.|\.git|\.svn|CVS)$)[\-.0-9A-Z_a-z]+$/D';

    /** @var string The pattern of a path field in a form: a hint, the checks above decide. */
    public const PATH_HTML_PATTERN = '[\-.0-9A-Z_a-z]+(/[\-.0-9A-Z_a-z]+)*/*';

    /**
     * Whether a text is a component path the helper takes (`mod`, `local/foo`): the same rule
     * as ComponentPath, which the helper applies again.
     *
     * @param string $path The text, as typed (trailing slashes are dropped).
     * @return bool True when the helper would take it.
     */
    public static function is_component_path(string $path): bool {
        $path = strlen($path) > 1 ? rtrim($path, '/') : $path;
        if ($path === '' || strlen($path) > self::PATH_MAX_BYTES) {
            return false;
        }
        foreach (explode('/', $path) as $part) {
            if (!preg_match(self::PATH_PART_REGEX, $part)) {
                return false;
            }
        }
        return true;
    }
}
