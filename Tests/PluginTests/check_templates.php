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
 * Checks the plugin's Mustache templates: the docblock (@template, "Example context (json)"),
 * that the example parses as JSON, and that each template renders with it through a small
 * Mustache renderer of ours (variables, sections, inverted sections, partials, comments, and
 * Moodle's str/quote/pix helpers as stand-ins), every variable it uses being found.
 * Usage: php check_templates.php <templates dir>; prints "templates: N checked, M problems".
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * A small Mustache renderer, enough to check templates against their example contexts.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class mini_mustache {
    /** @var string[] Moodle's helpers, rendered as stand-ins. */
    private const HELPERS = ['str', 'quote', 'pix', 'cleanstr', 'js', 'userdate', 'shortentext'];

    /** @var string[] Names Moodle gives every template. */
    private const GLOBALS = ['uniqid', 'config'];

    /** @var string The templates folder. */
    private string $directory;

    /** @var string[] Variables not found. */
    public array $missing = [];

    /**
     * Makes a renderer for a templates folder.
     *
     * @param string $directory The folder.
     */
    public function __construct(string $directory) {
        $this->directory = $directory;
    }

    /**
     * Renders a template by name (`tool_delivery/screen`).
     *
     * @param string $name The name.
     * @param array $stack The context stack, innermost last.
     * @return string The output.
     */
    public function render_name(string $name, array $stack): string {
        [$component, $template] = explode('/', $name, 2);
        if ($component !== 'tool_delivery') {
            throw new RuntimeException("partial {$name} is not ours");
        }
        $path = "{$this->directory}/{$template}.mustache";
        if (!is_file($path)) {
            throw new RuntimeException("no partial {$name}");
        }
        return $this->render(file_get_contents($path), $stack);
    }

    /**
     * Renders a template text.
     *
     * @param string $text The template.
     * @param array $stack The context stack.
     * @return string The output.
     */
    public function render(string $text, array $stack): string {
        $position = 0;
        $tree = $this->parse($text, $position, null);
        return $this->render_tree($tree, $stack);
    }

    /**
     * Parses up to the closing tag of a section.
     *
     * @param string $text The template.
     * @param int $position Where to start; moved past what is parsed.
     * @param string|null $section The section being closed, or null at the top.
     * @return array The nodes.
     */
    private function parse(string $text, int &$position, ?string $section): array {
        $nodes = [];
        while (preg_match('/\{\{(\{?)\s*([#^\/!>&]?)\s*(.*?)\s*\}?\}\}/s', $text, $match, PREG_OFFSET_CAPTURE, $position)) {
            $start = $match[0][1];
            $nodes[] = ['text', substr($text, $position, $start - $position)];
            $position = $start + strlen($match[0][0]);
            $type = $match[2][0];
            $name = $match[3][0];
            if ($type === '!') {
                continue;
            } else if ($type === '/') {
                if ($name !== $section) {
                    throw new RuntimeException("closing {$name} where {$section} is open");
                }
                return $nodes;
            } else if ($type === '#' || $type === '^') {
                $nodes[] = [$type, $name, $this->parse($text, $position, $name)];
            } else if ($type === '>') {
                $nodes[] = ['>', $name];
            } else {
                $nodes[] = [$match[1][0] === '{' || $type === '&' ? 'raw' : 'var', $name];
            }
        }
        if ($section !== null) {
            throw new RuntimeException("section {$section} is not closed");
        }
        $nodes[] = ['text', substr($text, $position)];
        $position = strlen($text);
        return $nodes;
    }

    /**
     * Looks a name up in the stack.
     *
     * @param string $name The name, possibly dotted, or `.`.
     * @param array $stack The stack.
     * @return array [found, value].
     */
    private function lookup(string $name, array $stack): array {
        if ($name === '.') {
            return [true, end($stack)];
        }
        $parts = explode('.', $name);
        if (in_array($parts[0], self::GLOBALS, true)) {
            return [true, 'global'];
        }
        for ($index = count($stack) - 1; $index >= 0; $index--) {
            $frame = $stack[$index];
            if (is_array($frame) && array_key_exists($parts[0], $frame)) {
                $value = $frame[$parts[0]];
                foreach (array_slice($parts, 1) as $part) {
                    if (!is_array($value) || !array_key_exists($part, $value)) {
                        return [false, null];
                    }
                    $value = $value[$part];
                }
                return [true, $value];
            }
        }
        return [false, null];
    }

    /**
     * Renders nodes.
     *
     * @param array $nodes The nodes.
     * @param array $stack The stack.
     * @return string The output.
     */
    private function render_tree(array $nodes, array $stack): string {
        $output = '';
        foreach ($nodes as $node) {
            switch ($node[0]) {
                case 'text':
                    $output .= $node[1];
                    break;
                case 'var':
                case 'raw':
                    [$found, $value] = $this->lookup($node[1], $stack);
                    if (!$found) {
                        $this->missing[] = $node[1];
                    }
                    $value = is_scalar($value) ? (string) $value : '';
                    $output .= $node[0] === 'var' ? htmlspecialchars($value, ENT_QUOTES) : $value;
                    break;
                case '>':
                    $output .= $this->render_name($node[1], $stack);
                    break;
                case '#':
                case '^':
                    if (in_array($node[1], self::HELPERS, true)) {
                        $inner = $this->render_tree($node[2], $stack);
                        $output .= $node[1] === 'quote' ? json_encode($inner) : "[{$node[1]}: {$inner}]";
                        break;
                    }
                    [$found, $value] = $this->lookup($node[1], $stack);
                    if (!$found) {
                        $this->missing[] = $node[1];
                    }
                    $truthy = !empty($value);
                    if ($node[0] === '^') {
                        if (!$truthy) {
                            $output .= $this->render_tree($node[2], $stack);
                        }
                        // Inverted sections are rendered with the same stack, even when not shown,
                        // to find their variables.
                        if ($truthy) {
                            $this->render_tree($node[2], $stack);
                        }
                    } else if (is_array($value) && array_is_list($value)) {
                        foreach ($value as $item) {
                            $output .= $this->render_tree($node[2], array_merge($stack, [$item]));
                        }
                    } else if ($truthy) {
                        $output .= $this->render_tree($node[2], is_array($value) ? array_merge($stack, [$value]) : $stack);
                    }
                    break;
            }
        }
        return $output;
    }
}

// Included (by RenderablesTest), it only declares the renderer.
if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') !== __FILE__) {
    return;
}

$directory = rtrim($argv[1] ?? '', '/');
$problems = 0;
$checked = 0;
$templates = glob($directory . '/*.mustache');
sort($templates);
foreach ($templates as $path) {
    $checked++;
    $name = basename($path, '.mustache');
    $text = file_get_contents($path);
    $fail = function(string $message) use ($path, &$problems): void {
        $problems++;
        echo "{$path}: {$message}\n";
    };
    if (!str_contains($text, 'GNU General Public License')) {
        $fail('no GPL header');
    }
    if (!str_contains($text, "@template tool_delivery/{$name}\n")) {
        $fail("no @template tool_delivery/{$name}");
    }
    if (!preg_match('/Example context \(json\):\s*(\{.*?\})\s*\}\}/s', $text, $match)) {
        $fail('no "Example context (json)"');
        continue;
    }
    try {
        $context = json_decode($match[1], true, 64, JSON_THROW_ON_ERROR);
    } catch (JsonException $error) {
        $fail('the example context is not JSON: ' . $error->getMessage());
        continue;
    }
    $renderer = new mini_mustache($directory);
    try {
        $html = $renderer->render_name("tool_delivery/{$name}", [$context]);
    } catch (RuntimeException $error) {
        $fail('does not render: ' . $error->getMessage());
        continue;
    }
    foreach (array_unique($renderer->missing) as $variable) {
        $fail("uses {{{$variable}}}, which the example context (or its partials' part of it) lacks");
    }
    if (trim($html) === '') {
        $fail('renders nothing');
    }
    if (str_contains($html, '{{') || str_contains($html, '}}')) {
        $fail('leaves Mustache tags in its output');
    }
}
echo "templates: {$checked} checked, {$problems} problems\n";
exit($problems === 0 && $checked > 0 ? 0 : 1);
