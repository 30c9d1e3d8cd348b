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
 * Checks of our own on the plugin's PHP files: GPL header, @package, MOODLE_INTERNAL guards and
 * variable names (lowercase, no underscores). Usage: php check_style.php <dir>…; prints one line
 * per problem and "style: N files, M problems".
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

$allowedglobals = ['$CFG', '$USER', '$PAGE', '$OUTPUT', '$DB', '$SESSION', '$ADMIN', '$SITE', '$COURSE', '$_SERVER',
    '$_POST', '$_GET', '$GLOBALS', '$this'];
$entrypoints = ['index.php', 'action.php', 'console.php', 'schedule.php', 'report.php'];
$problems = 0;
$count = 0;
$report = function(string $file, string $message) use (&$problems): void {
    $problems++;
    echo "{$file}: {$message}\n";
};

$files = [];
foreach (array_slice($argv, 1) as $directory) {
    $iterator = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($directory, FilesystemIterator::SKIP_DOTS));
    foreach ($iterator as $entry) {
        if ($entry->isFile() && str_ends_with($entry->getFilename(), '.php')) {
            $files[] = ['path' => $entry->getPathname(), 'root' => rtrim($directory, '/')];
        }
    }
}
sort($files);
foreach ($files as $file) {
    $count++;
    $path = $file['path'];
    $relative = substr($path, strlen($file['root']) + 1);
    $text = file_get_contents($path);
    if (!str_starts_with($text, "<?php\n// This file is part of Moodle - https://moodle.org/\n")
            || !str_contains(substr($text, 0, 1200), 'GNU General Public License')) {
        $report($path, 'no GPL header');
    }
    if (!preg_match('/^ \* @package +tool_delivery$/m', $text)) {
        $report($path, 'no @package tool_delivery docblock');
    }
    $isplugin = str_contains($path, 'moodle-plugin/');
    $guard = str_contains($text, "defined('MOODLE_INTERNAL') || die();");
    $standaloneguard = str_contains($text, "defined('MOODLE_INTERNAL') || defined('TOOL_DELIVERY_STANDALONE')");
    if ($isplugin && str_starts_with($relative, 'classes/')) {
        // Moodle's autoloader finds tool_delivery\<folder>\<file> in classes/<folder>/<file>.php.
        $namespace = 'tool_delivery' . str_replace('/', '\\', substr(dirname($relative), strlen('classes')));
        $class = basename($relative, '.php');
        if (!preg_match('/^namespace ' . preg_quote($namespace, '/') . ';$/m', $text)
                || !preg_match('/^(final |abstract )?(class|interface|trait) ' . preg_quote($class, '/') . '\b/m', $text)) {
            $report($path, "must declare {$namespace}\\{$class} (Moodle's autoloader looks for it there)");
        }
    }
    if ($isplugin) {
        if (in_array($relative, $entrypoints, true)) {
            if ($guard || $standaloneguard) {
                $report($path, 'an entry page must not have the MOODLE_INTERNAL guard');
            }
            if (!str_contains($text, "require(__DIR__ . '/../../../config.php');")) {
                $report($path, 'an entry page must require config.php');
            }
        } else if (str_starts_with($relative, 'cli/')) {
            // A CLI script: CLI_SCRIPT first, then config.php (four folders up), no guard.
            if ($guard || $standaloneguard) {
                $report($path, 'a CLI script must not have the MOODLE_INTERNAL guard');
            }
            $clistart = "define('CLI_SCRIPT', true);\n\nrequire(__DIR__ . '/../../../../config.php');";
            if (!str_contains($text, $clistart)) {
                $report($path, "a CLI script must define CLI_SCRIPT, then require config.php");
            }
        } else if (str_starts_with($relative, 'classes/') || str_starts_with($relative, 'tests/')
                || in_array($relative, ['lib.php', 'db/install.php', 'db/upgrade.php'], true)) {
            // Declarations only (a namespaced class, or functions), no side effect: as moodle-cs
            // says, no guard (the plain suite includes the Moodle-free classes directly).
            if ($guard || $standaloneguard) {
                $report($path, 'a file of declarations only takes no MOODLE_INTERNAL guard');
            }
        } else if (!$guard) {
            $report($path, "an include-only file needs defined('MOODLE_INTERNAL') || die();");
        }
    }
    $previous = null;
    foreach (token_get_all($text) as $token) {
        if (!is_array($token)) {
            $previous = $token;
            continue;
        }
        if ($token[0] === T_VARIABLE && !in_array($token[1], $allowedglobals, true)
                && !preg_match('/^\$[a-z][a-z0-9]*$/', $token[1])) {
            $report($path, "line {$token[2]}: variable {$token[1]} is not lowercase without underscores");
        }
        if ($token[0] === T_CLOSE_TAG) {
            $report($path, "line {$token[2]}: closing tag");
        }
        if ($token[0] !== T_WHITESPACE) {
            $previous = $token;
        }
    }
}
echo "style: {$count} files, {$problems} problems\n";
exit($problems === 0 ? 0 : 1);
