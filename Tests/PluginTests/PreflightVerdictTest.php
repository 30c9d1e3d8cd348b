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
 * Tests of the preflight verdict and of the units of sizes and durations (plain PHPUnit, no Moodle).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use tool_delivery\local\human_units;
use tool_delivery\local\preflight_verdict;

/**
 * Tests of the preflight verdict and of the units of sizes and durations.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\preflight_verdict
 * @covers     \tool_delivery\local\human_units
 */
final class PreflightVerdictTest extends \PHPUnit\Framework\TestCase {
    /**
     * A report as the helper sends it when nothing is wrong (optional members absent).
     *
     * @return array The report.
     */
    private static function clean(): array {
        return ['added' => ['local/foo/lib.php'], 'changed' => [], 'removed' => [], 'lintErrors' => [],
            'conflictMarkers' => [], 'versionChanges' => [['component' => 'local/foo', 'after' => '2026112500',
            'backwards' => false]], 'localModifications' => [' M config-dist.php'], 'untrackedFiles' => ['notes.txt'],
            'missingFiles' => [], 'inconsistentComponents' => [], 'warnings' => ['something to read'],
            'blocking' => false, 'blockers' => []];
    }

    /**
     * The helper says nothing blocks: no reason, whatever else the report holds.
     */
    public function test_clean_report_does_not_block(): void {
        $this->assertSame([], preflight_verdict::reasons(self::clean()));
        $this->assertFalse(preflight_verdict::blocking(self::clean()));
        $this->assertFalse(preflight_verdict::blocking([]));
        // The page never re-derives the rule: findings without the helper's blockers block nothing.
        $report = self::clean();
        $report['missingFiles'] = ['x.php'];
        $this->assertFalse(preflight_verdict::blocking($report));
    }

    /**
     * Each blocker the helper sends (Swift's PreflightBlockers is the rule) becomes its reason,
     * in the helper's order; a code this page does not know is said, never dropped.
     */
    public function test_each_blocker_is_a_reason(): void {
        $report = self::clean();
        $report['blocking'] = true;
        $report['blockers'] = [
            ['code' => 'lint', 'count' => 2],
            ['code' => 'conflicts', 'count' => 1],
            ['code' => 'backwards', 'component' => 'mod/forum', 'before' => '2024100700', 'after' => '2024100600'],
            ['code' => 'missing', 'count' => 3],
            ['code' => 'inconsistent', 'component' => 'local/foo', 'detail' => 'English of the helper',
                'notice' => ['code' => 'component_needs_newer_core', 'values' => ['required' => '2025041400.00',
                    'core' => '2024100700.00']]],
            ['code' => 'php', 'current' => '8.0.30', 'required' => '8.1.0'],
            ['code' => 'space', 'directory' => '/var/lib/deliveryd', 'availableBytes' => 1000, 'databaseBytes' => 2000],
            ['code' => 'quantum'],
        ];
        $this->assertSame([
            ['reason' => 'lint', 'count' => 2],
            ['reason' => 'conflicts', 'count' => 1],
            ['reason' => 'backwards', 'component' => 'mod/forum', 'before' => '2024100700', 'after' => '2024100600'],
            ['reason' => 'missing', 'count' => 3],
            ['reason' => 'inconsistent', 'component' => 'local/foo',
                'detail' => "It requires Moodle 2025041400.00 but the tree's core is 2024100700.00: "
                    . 'Moodle would refuse to upgrade.'],
            ['reason' => 'php', 'current' => '8.0.30', 'required' => '8.1.0'],
            ['reason' => 'space', 'directory' => '/var/lib/deliveryd', 'available' => 1000, 'database' => 2000],
            ['reason' => 'unknown', 'code' => 'quantum'],
        ], preflight_verdict::reasons($report));
        $this->assertTrue(preflight_verdict::blocking($report));
    }

    /**
     * Sizes in the helper's decimal units: 41,100,000 bytes are 41.1 MB, as the helper says.
     */
    public function test_sizes(): void {
        $this->assertSame(['unit' => 'b', 'value' => 0, 'decimals' => 0], human_units::size(0));
        $this->assertSame(['unit' => 'b', 'value' => 999, 'decimals' => 0], human_units::size(999));
        $this->assertSame(['unit' => 'kb', 'value' => 1, 'decimals' => 0], human_units::size(1000));
        $this->assertSame(['unit' => 'kb', 'value' => 512, 'decimals' => 0], human_units::size(512345));
        $this->assertSame(['unit' => 'mb', 'value' => 41.1, 'decimals' => 1], human_units::size(41100000));
        $this->assertSame(['unit' => 'gb', 'value' => 5.0, 'decimals' => 1], human_units::size(5000000000));
        $this->assertSame(['unit' => 'b', 'value' => 0, 'decimals' => 0], human_units::size(-5));
    }

    /**
     * Durations as the helper words them: 40 s, 12 min, 2 h 5 min, 3 days 4 h.
     */
    public function test_durations(): void {
        $this->assertSame(['unit' => 'seconds', 'seconds' => 40], human_units::duration(40.4));
        $this->assertSame(['unit' => 'seconds', 'seconds' => 0], human_units::duration(-3));
        $this->assertSame(['unit' => 'minutes', 'minutes' => 1], human_units::duration(60));
        $this->assertSame(['unit' => 'minutes', 'minutes' => 12], human_units::duration(12 * 60 + 59));
        $this->assertSame(['unit' => 'hours', 'hours' => 2, 'minutes' => 5], human_units::duration(7500.45));
        $this->assertSame(['unit' => 'days', 'days' => 3, 'hours' => 4], human_units::duration(3 * 86400 + 4 * 3600 + 59));
    }
}
