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
 * Tests of the plugin's language strings: English and French alike, and none missing.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use tool_delivery\local\helper_exception;
use tool_delivery\local\helper_rules;
use tool_delivery\local\human_units;
use tool_delivery\local\notices;
use tool_delivery\local\request_signer;
use tool_delivery\local\transport_exception;

/**
 * Tests of the plugin's language strings: English and French alike, and none missing.
 *
 * Every word the screen shows is a string in lang/en and lang/fr: the keys the code and the
 * templates name, the keys it builds (units, lists of the preflight report), and one `error:` string
 * for every error code of the helper (read from its Swift sources) and of the plugin's client.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @coversNothing
 */
final class LangStringsTest extends \PHPUnit\Framework\TestCase {
    /** @var string The plugin's folder. */
    private const PLUGIN = __DIR__ . '/../../moodle-plugin';

    /**
     * The strings of a language.
     *
     * @param string $language `en` or `fr`.
     * @return array Key => string.
     */
    private static function strings(string $language): array {
        if (!defined('MOODLE_INTERNAL')) {
            define('MOODLE_INTERNAL', true);
        }
        $string = [];
        include(self::PLUGIN . "/lang/{$language}/tool_delivery.php");
        return $string;
    }

    /**
     * The plugin's PHP files and templates.
     *
     * @return string[] Path => content.
     */
    private static function sources(): array {
        $sources = [];
        $iterator = new RecursiveIteratorIterator(new RecursiveDirectoryIterator(self::PLUGIN, FilesystemIterator::SKIP_DOTS));
        foreach ($iterator as $entry) {
            $path = $entry->getPathname();
            if (!str_contains($path, '/lang/') && preg_match('/\.(php|mustache)$/', $path)) {
                $sources[$path] = file_get_contents($path);
            }
        }
        ksort($sources);
        return $sources;
    }

    /**
     * English and French have the same keys, in order, and no French string is left empty.
     */
    public function test_french_matches_english(): void {
        $english = self::strings('en');
        $french = self::strings('fr');
        $this->assertSame(array_keys($english), array_keys($french));
        $keys = array_keys($english);
        $sorted = $keys;
        sort($sorted, SORT_STRING);
        $this->assertSame($sorted, $keys, 'the strings are sorted by key');
        foreach ($french as $key => $text) {
            $this->assertNotSame('', trim($text), $key);
            // The placeholders are the same in both languages.
            preg_match_all('/\{\$a(->\w+)?\}/', $english[$key], $wanted);
            preg_match_all('/\{\$a(->\w+)?\}/', $text, $found);
            $this->assertEqualsCanonicalizing(array_unique($wanted[0]), array_unique($found[0]), $key);
        }
    }

    /**
     * Every key the code and the templates name exists.
     */
    public function test_named_keys_exist(): void {
        $english = self::strings('en');
        $prefixes = array_unique(array_map(fn($key) => strstr($key, ':', true), array_keys($english)));
        $prefixes = array_filter($prefixes, fn($prefix) => is_string($prefix) && $prefix !== '');
        $pattern = "/'((?:" . implode('|', array_map('preg_quote', $prefixes)) . "):[A-Za-z0-9_:]*[A-Za-z0-9_])'/";
        $named = 0;
        foreach (self::sources() as $path => $text) {
            $keys = [];
            if (str_ends_with($path, '.php')) {
                preg_match_all($pattern, $text, $matches);
                $keys = $matches[1];
                preg_match_all("/(?:get_string|lang_string)\\(\\s*'([^']+)',\\s*'tool_delivery'/", $text, $matches);
                $keys = array_merge($keys, $matches[1]);
            } else {
                preg_match_all('/\{\{#str\}\}\s*([^,\s]+)\s*,\s*tool_delivery/', $text, $matches);
                $keys = $matches[1];
            }
            foreach (array_unique($keys) as $key) {
                $named++;
                $this->assertArrayHasKey($key, $english, basename($path) . " names '{$key}'");
            }
        }
        $this->assertGreaterThan(100, $named);
    }

    /**
     * Every key the code builds exists: units of sizes and durations, the preflight's lists and reasons.
     */
    public function test_built_keys_exist(): void {
        $english = self::strings('en');
        foreach ([0, 999, 1000, 2000000, 3000000000] as $bytes) {
            $this->assertArrayHasKey('size:' . human_units::size($bytes)['unit'], $english);
        }
        foreach ([1, 61, 3601, 86401] as $seconds) {
            $this->assertArrayHasKey('duration:' . human_units::duration($seconds)['unit'], $english);
        }
        foreach (['lint', 'conflicts', 'versions', 'missing', 'inconsistent', 'localmodifications', 'untracked', 'added',
                'changed', 'removed'] as $name) {
            $this->assertArrayHasKey('preflight:section:' . $name, $english);
        }
        foreach (['lint', 'conflicts', 'missing', 'backwards', 'inconsistent', 'space'] as $reason) {
            $this->assertArrayHasKey('preflight:reason:' . $reason, $english);
        }
    }

    /**
     * Every error code of the helper and of the plugin's client has its string, which the screen shows.
     */
    public function test_every_error_code_has_a_string(): void {
        $english = self::strings('en');
        $codes = [];
        foreach (['Sources/DeliveryCore/DeliveryError.swift', 'Sources/DeliveryServer/APIError.swift'] as $file) {
            $text = file_get_contents(dirname(__DIR__, 2) . '/' . $file);
            $this->assertNotFalse($text, $file);
            preg_match_all('/^\s*case\s+\w+\s*=\s*"([a-z_]+)"/m', $text, $matches);
            $this->assertNotEmpty($matches[1], $file);
            $codes = array_merge($codes, $matches[1]);
        }
        foreach ([transport_exception::class, request_signer::class] as $class) {
            foreach ((new ReflectionClass($class))->getConstants() as $name => $value) {
                if ($class === transport_exception::class || str_starts_with($name, 'KEY_')) {
                    $codes[] = $value;
                }
            }
        }
        foreach (['snapshot_failed', 'database_restore_failed', 'health_check_failed', 'confirmation_required'] as $code) {
            $this->assertContains($code, $codes);
        }
        foreach (array_unique($codes) as $code) {
            $key = (new helper_exception($code, ''))->get_string_key();
            $this->assertArrayHasKey($key, $english, "error code {$code}");
        }
    }

    /**
     * Every notice code of the helper (helper_rules::NOTICES, generated from its catalogue) has its
     * sentence in English and in French, naming exactly the keys the helper gives; and no string
     * the plugin keeps for a notice is one the helper no longer says.
     */
    public function test_every_notice_has_a_sentence_in_both_languages(): void {
        $this->assertGreaterThan(100, count(helper_rules::NOTICES));
        $catalogue = file_get_contents(dirname(__DIR__, 2) . '/Sources/DeliveryCore/NoticeCatalogue.swift');
        preg_match_all('/^\s*case\s+\w+\s*=\s*"([a-z_]+)"/m', $catalogue, $matches);
        $this->assertEqualsCanonicalizing($matches[1], array_keys(helper_rules::NOTICES), 'helper_rules.php is current');
        foreach (['en', 'fr'] as $language) {
            $strings = self::strings($language);
            foreach (helper_rules::NOTICES as $code => $keys) {
                $this->assertArrayHasKey("notice:{$code}", $strings, "{$language}: notice {$code}");
                preg_match_all('/\{\$a->(\w+)\}/', $strings["notice:{$code}"], $found);
                $this->assertEqualsCanonicalizing($keys, array_unique($found[1]), "{$language}: notice {$code}");
            }
            foreach (array_keys($strings) as $key) {
                if (str_starts_with($key, 'notice:') && $key !== 'notice:unknown') {
                    $this->assertArrayHasKey(substr($key, 7), helper_rules::NOTICES, "{$language}: {$key} is said by no one");
                }
            }
            foreach (['production', 'backup', 'security', 'unknown'] as $tree) {
                $this->assertArrayHasKey("tree:{$tree}", $strings, $language);
            }
        }
    }

    /**
     * Notices read in the user's language: values shown as their keys say, an error code by its own
     * sentence, an unknown code said as such, and no English of the helper in French.
     */
    public function test_notices_are_worded_in_the_users_language(): void {
        $outcome = [
            ['code' => 'copy_made', 'values' => ['tree' => 'backup', 'files' => 23114, 'sizeBytes' => 41100000,
                'copied' => 12, 'shared' => 23102, 'removed' => 0, 'copySeconds' => '2.4']],
            ['code' => 'next_switch', 'values' => []],
        ];
        $this->assertSame(
            'The backup copy holds 23114 files (41.1 MB; 12 copied, 23102 shared, 0 removed) in 2.4 s. Next: switch to delivery.',
            notices::say($outcome)
        );
        $refusal = [['code' => 'refused_delivery_in_progress', 'values' => ['operation' => 'run-all', 'phase' => 'rolled_back',
            'servedTree' => 'backup']]];
        $this->assertSame(
            "Run all refused: a delivery is in progress (state 'Rolled back'); finish it with restore, or cancel it.",
            notices::say($refusal)
        );
        $this->assertSame(
            'The operation stopped because an emergency rollback took over.',
            notices::say([['code' => 'preempted']])
        );
        $this->assertSame('A message this page does not know (made_up).', notices::say([['code' => 'made_up']]));
        $this->assertSame(
            'The delivery is cancelled: production serves again at an unknown revision.',
            notices::say([['code' => 'cancelled', 'values' => ['revision' => 'unknown']]])
        );
        $this->assertSame('', notices::say(null));
        $this->assertSame('', notices::say('The helper\'s English'));
        $plan = [['code' => 'plan_database_confirm', 'values' => ['tree' => 'security', 'ageSeconds' => 7500,
            'sizeBytes' => 2300000000]]];
        $this->assertStringContainsString('the security copy', notices::say($plan));
        $this->assertStringContainsString('2 h 5 min ago (2.3 GB)', notices::say($plan));

        $GLOBALS['tool_delivery_test_language'] = 'fr';
        try {
            $this->assertSame(
                'La copie de secours contient 23114 fichiers (41,1 Mo ; 12 copiés, 23102 partagés, 0 supprimés), faite en 2,4 s.'
                    . ' Ensuite : activer la livraison.',
                notices::say($outcome)
            );
            $this->assertSame(
                '« Lancer tout » refusé : une livraison est en cours (état « Retour d\'urgence ») ; '
                    . 'terminez-la par le rétablissement, ou annulez-la.',
                notices::say($refusal)
            );
            $this->assertStringContainsString('la copie de sécurité', notices::say($plan));
        } finally {
            unset($GLOBALS['tool_delivery_test_language']);
        }
    }
}
