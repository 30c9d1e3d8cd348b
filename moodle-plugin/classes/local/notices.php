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
 * The helper's notices in the user's language.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * What the helper says to a person comes as notices, a code and typed values each
 * (docs/protocol.md, *Notices*): this class words them with the plugin's strings `notice:<code>`,
 * showing each value as its key's ending says. The helper's English never reaches the page.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class notices {
    /** @var string[] The keys whose value is a revision's label (`unknown` when the helper has none). */
    private const REVISION_KEYS = ['revision', 'before', 'after', 'held', 'secured'];

    /**
     * Notices as one paragraph: their sentences, one after the other (plain text).
     *
     * @param mixed $notices The helper's list of notices (anything else says nothing).
     * @return string The paragraph, or '' when there is none.
     */
    public static function say(mixed $notices): string {
        if (!is_array($notices)) {
            return '';
        }
        $sentences = [];
        foreach ($notices as $notice) {
            if (is_array($notice)) {
                $sentences[] = self::sentence($notice);
            }
        }
        return implode(' ', $sentences);
    }

    /**
     * One notice as a sentence: its string, an error code's own sentence, or the unknown code said.
     *
     * @param array $notice The notice (`code`, `values`).
     * @return string The sentence (plain text).
     */
    public static function sentence(array $notice): string {
        $code = (string) ($notice['code'] ?? '');
        $values = is_array($notice['values'] ?? null) ? $notice['values'] : [];
        if (isset(helper_rules::NOTICES[$code])) {
            $a = new \stdClass();
            foreach (helper_rules::NOTICES[$code] as $key) {
                $a->$key = array_key_exists($key, $values) ? self::value($key, $values[$key]) : '?';
            }
            return get_string('notice:' . $code, 'tool_delivery', $a);
        }
        if (in_array($code, helper_rules::ERROR_CODES, true)) {
            return delivery_actions::error_message(new helper_exception($code, ''));
        }
        return get_string('notice:unknown', 'tool_delivery', $code);
    }

    /**
     * A value as its key says to show it: a size, a duration, a moment, a tree (or a list of trees),
     * an operation or a state by name; a list joined with commas; anything else as it came.
     *
     * @param string $key The value's key.
     * @param mixed $value The value.
     * @return string The value for people (plain text).
     */
    public static function value(string $key, mixed $value): string {
        if (($key === 'trees' || str_ends_with($key, 'Trees')) && is_array($value)) {
            return implode(', ', array_map(fn($tree) => self::value('tree', $tree), $value));
        }
        if (is_array($value)) {
            return implode(', ', array_map(fn($item) => is_scalar($item) ? (string) $item : '?', $value));
        }
        if (!is_scalar($value)) {
            return '?';
        }
        if (str_ends_with($key, 'Bytes') && is_numeric($value)) {
            return delivery_actions::format_size((float) $value);
        }
        if (str_ends_with($key, 'Seconds') && is_numeric($value)) {
            $seconds = max(0.0, (float) $value);
            if ($seconds < 10) {
                return get_string('duration:seconds', 'tool_delivery', (object) ['seconds' => format_float($seconds, 1)]);
            }
            return delivery_actions::format_duration($seconds);
        }
        if (str_ends_with($key, 'At')) {
            return delivery_actions::format_date((string) $value);
        }
        if ($key === 'tree' || str_ends_with($key, 'Tree')) {
            return self::named('tree:' . $value, (string) $value);
        }
        if ($key === 'operation' || str_ends_with($key, 'Operation')) {
            return self::named(delivery_actions::operation_key((string) $value), (string) $value);
        }
        if (in_array($key, self::REVISION_KEYS, true) && $value === 'unknown') {
            return get_string('revision:unknown', 'tool_delivery');
        }
        if ($key === 'phase') {
            return self::named('phase:' . str_replace('_', '', (string) $value), (string) $value);
        }
        return (string) $value;
    }

    /**
     * A plugin string when there is one, else the value as it came.
     *
     * @param string $identifier The string's identifier.
     * @param string $value The value.
     * @return string The string or the value.
     */
    private static function named(string $identifier, string $value): string {
        return get_string_manager()->string_exists($identifier, 'tool_delivery')
            ? get_string($identifier, 'tool_delivery') : $value;
    }
}
