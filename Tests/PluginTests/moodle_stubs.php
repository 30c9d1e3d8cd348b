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
 * The few Moodle functions and types the plugin's renderables use, as small stand-ins, so that
 * RenderablesTest can export their contexts without Moodle: strings come from lang/en, dates are
 * UTC, numbers have a point.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

if (!defined('MOODLE_INTERNAL')) {
    define('MOODLE_INTERNAL', true);
}

/**
 * Stand-in for Moodle's renderable.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
interface renderable {
}

/**
 * Stand-in for Moodle's templatable.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
interface templatable {
}

/**
 * Stand-in for Moodle's renderer_base (the renderables do not call it).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class renderer_base {
}

/**
 * Stand-in for Moodle's core_text.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class core_text {
    /**
     * Lower case.
     *
     * @param string $text The text.
     * @return string The text in lower case.
     */
    public static function strtolower(string $text): string {
        return mb_strtolower($text, 'UTF-8');
    }
}

/**
 * Stand-in for Moodle's string manager.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class tool_delivery_test_strings {
    /** @var array Language => the plugin's strings in it. */
    private static array $strings = [];

    /**
     * The plugin's strings in the language a test chose ($GLOBALS['tool_delivery_test_language'],
     * English by default).
     *
     * @return array Key => string.
     */
    public static function all(): array {
        $language = $GLOBALS['tool_delivery_test_language'] ?? 'en';
        if (!isset(self::$strings[$language])) {
            $string = [];
            include(dirname(__DIR__, 2) . "/moodle-plugin/lang/{$language}/tool_delivery.php");
            self::$strings[$language] = $string;
        }
        return self::$strings[$language];
    }

    /**
     * Whether a string exists.
     *
     * @param string $key The key.
     * @param string $component The component.
     * @return bool True when it does.
     */
    public function string_exists(string $key, string $component): bool {
        return $component === 'tool_delivery' && isset(self::all()[$key]);
    }
}

/**
 * Moodle's get_config: the values a test puts in $GLOBALS['tool_delivery_test_config'].
 *
 * @param string $plugin The component.
 * @param string|null $name The setting.
 * @return mixed The value, or false.
 */
function get_config(string $plugin, ?string $name = null) {
    return $GLOBALS['tool_delivery_test_config'][$plugin][$name] ?? false;
}

/**
 * Moodle's get_string, from the plugin's English strings.
 *
 * @param string $key The key.
 * @param string $component The component.
 * @param mixed $a The value or object put in.
 * @return string The string.
 * @throws RuntimeException For an unknown key.
 */
function get_string(string $key, string $component = '', $a = null): string {
    if ($component === 'langconfig' && $key === 'strftimedatetimeshort') {
        return '%d/%m/%y, %H:%M';
    }
    if ($component === 'langconfig' && $key === 'strftimedatetimeaccurate') {
        return '%d %B %Y, %I:%M:%S %p';
    }
    if ($component === 'moodle' && $key === 'numseconds') {
        return "{$a} secs";
    }
    $strings = tool_delivery_test_strings::all();
    if ($component !== 'tool_delivery' || !isset($strings[$key])) {
        throw new RuntimeException("no string {$key} in {$component}");
    }
    $text = $strings[$key];
    if (is_object($a) || is_array($a)) {
        foreach ((array) $a as $name => $value) {
            $text = str_replace('{$a->' . $name . '}', (string) $value, $text);
        }
        if (preg_match('/\{\$a->\w+\}/', $text, $match)) {
            throw new RuntimeException("string {$key}: {$match[0]} is not given");
        }
    } else if ($a !== null) {
        $text = str_replace('{$a}', (string) $a, $text);
    }
    return $text;
}

/**
 * Stand-in for Moodle's get_string_manager.
 *
 * @return tool_delivery_test_strings The manager.
 */
function get_string_manager(): tool_delivery_test_strings {
    return new tool_delivery_test_strings();
}

/**
 * Stand-in for Moodle's userdate: the date in UTC, as dd/mm/yy, HH:MM.
 *
 * @param int $time The Unix time.
 * @param string $format Ignored.
 * @return string The date.
 */
function userdate(int $time, string $format = ''): string {
    return gmdate('d/m/y, H:i', $time);
}

/**
 * Stand-in for Moodle's format_float: a decimal point in English, a comma in French.
 *
 * @param float $value The number.
 * @param int $decimals The decimals.
 * @return string The number.
 */
function format_float($value, int $decimals = 1): string {
    $point = ($GLOBALS['tool_delivery_test_language'] ?? 'en') === 'fr' ? ',' : '.';
    return number_format((float) $value, $decimals, $point, '');
}
