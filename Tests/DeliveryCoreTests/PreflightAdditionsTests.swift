import Foundation
import Testing

@testable import DeliveryCore

@Suite("Preflight: VCS health, partial updates, PHP, and the report's helpers")
struct PreflightAdditionsTests {
    let preflight = PreflightTests()

    @Test("a tracked file missing from production blocks the restore; an untracked one is a warning")
    func missingAndUntracked() throws {
        let site = try preflight.delivering(["local/foo/extra.php": "<?php // extra\n"])
        try FileManager.default.removeItem(atPath: "\(site.production)/mod/assign/lib.php")
        try "<?php // forgotten\n".write(
            toFile: "\(site.production)/local/foo/forgotten.php", atomically: false, encoding: .utf8)
        let report = try site.engine.plan()
        #expect(report.missingFiles == ["mod/assign/lib.php"])
        #expect(report.untrackedFiles == ["local/foo/forgotten.php"])
        #expect(report.warnings.contains { $0.contains("not under version control") })
        #expect(report.blocking)
        preflight.expectBlocked(site, mentioning: "1 tracked file is missing (first: mod/assign/lib.php)")
    }

    @Test("db/upgrade.php changed without a new version is flagged; a plugin requiring a newer core blocks")
    func partialUpdate() throws {
        let site = try preflight.delivering([
            "mod/forum/db/upgrade.php": "<?php // FIXTURE forum upgrade steps, with a new step\n",
            "local/foo/version.php":
                "<?php\ndefined('MOODLE_INTERNAL') || die();\n$plugin->component = 'local_foo';\n$plugin->version = 2024110100;\n$plugin->requires = 2025041400.00;\n",
        ])
        let report = try site.engine.plan()
        let forum = try #require(report.inconsistentComponents.first { $0.component == "mod/forum" })
        #expect(!forum.blocking)
        #expect(forum.reason.contains("mod/forum/version.php did not"))
        let foo = try #require(report.inconsistentComponents.first { $0.component == "local/foo" })
        #expect(foo.blocking)
        #expect(foo.reason.contains("requires Moodle 2025041400.00 but the tree's core is 2024100700.00"))
        preflight.expectBlocked(site, mentioning: "local/foo: It requires Moodle 2025041400.00")
        #expect(foo.notice?.code == "component_needs_newer_core")
    }

    @Test("the new code's minimum PHP version is checked against the site's PHP")
    func phpMinimum() throws {
        let site = try preflight.delivering([
            "lib/phpminimumversionlib.php": "<?php\nfunction check() {\n    $minimumversion = '99.0.0';\n}\n"
        ])
        let report = try site.engine.plan()
        let php = try #require(report.phpVersion)
        #expect(php.required == "99.0.0")
        #expect(!php.satisfied)
        #expect(!php.current.isEmpty)
        preflight.expectBlocked(site, mentioning: "the new code needs PHP 99.0.0 or later")
    }

    @Test("dotted versions compare numerically")
    func versions() {
        #expect(Preflight.versionAtLeast("8.2.7", "8.1.0"))
        #expect(Preflight.versionAtLeast("8.10.0", "8.9.9"))
        #expect(!Preflight.versionAtLeast("8.0.30", "8.1.0"))
        #expect(Preflight.versionAtLeast("8.1", "8.1.0"))
    }

    @Test("checks.php's table: CRITICAL and ERROR rows, colours or not")
    func criticalReferences() {
        let output = """
            CRITICAL: Cron (tool_task_cron)
                Status | Check
            ----------+--------------------------------------------------------------------
             \u{1B}[41m CRITICAL \u{1B}[0m| Cron (tool_task_cron)
                      |     Cron has not run for 3 days
                ERROR | Antivirus (core_antivirus)
               WARNING | Debugging (core_debugging)
            """
        #expect(HealthChecker.criticalReferences(in: output) == ["tool_task_cron", "core_antivirus"])
    }

    @Test("sizes and durations for people")
    func formatting() {
        #expect(formatBytes(9_000) == "9 KB")
        #expect(formatBytes(39_200_000) == "39.2 MB")
        #expect(formatDuration(40) == "40 s")
        #expect(formatDuration(7_500) == "2 h 5 min")
        #expect(formatDuration(90_000) == "1 day 1 h")
    }
}

@Suite("Safety settings in site.json")
struct SafetySettingsTests {
    @Test("a database or healthCheck block with some members keeps the defaults of the others")
    func partialBlocks() throws {
        let health = try JSONCoding.decode(
            HealthCheckSettings.self, from: Array(#"{"url": "https://m.example.edu/my/"}"#.utf8))
        #expect(health == HealthCheckSettings(url: "https://m.example.edu/my/"))
        let database = try JSONCoding.decode(SnapshotSettings.self, from: Array(#"{"keep": 5}"#.utf8))
        #expect(database == SnapshotSettings(keep: 5))
        #expect(throws: (any Error).self) {
            try JSONCoding.decode(HealthCheckSettings.self, from: Array(#"{"mode": "sometimes"}"#.utf8))
        }
    }
}

@Suite("The rollback plan asks Moodle which copy matches the database")
struct RollbackPlanTests {
    @Test("a security copy older than the database is passed over for a backup copy that matches it")
    func olderSecurityCopy() throws {
        let site = try FixtureSite()
        try site.perform(.secure, security: true)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        try site.perform(.restore)
        // The next delivery secures the backup copy only: the security copy keeps revision 1,
        // whose code Moodle refuses on the upgraded database.
        try site.perform(.secure)
        let status = try site.engine.status()
        #expect(status.rollback.kind == .code)
        #expect(status.rollback.target == .backup, "\(status.rollback.explanation)")
        let outcome = try site.perform(.rollback)
        #expect(outcome.served == .backup)
        #expect(site.servedVersion.contains("2024100800.00"))
        #expect(!outcome.message.contains("does not match"), "\(outcome.message)")
    }

    @Test("when no copy matches the database and there is no snapshot, the plan says so")
    func noCopyMatches() throws {
        let site = try FixtureSite()
        try site.perform(.secure, security: true)
        try site.publishRevision2()
        try site.perform(.runAll)
        let status = try site.engine.status()
        #expect(status.rollback.kind == .code)
        #expect(status.rollback.explanation.contains("no snapshot"), "\(status.rollback.explanation)")
    }
}

@Suite("Moodle 5.1's public/ layout with a component cache per tree")
struct PublicLayoutTests {
    /// What the fixture's front page answers, run by PHP from the served tree's web root.
    func frontPage(_ site: FixtureSite) throws -> String {
        let result = try sh(
            "/usr/bin/php", ["-r", "define('CLI_SCRIPT', 1); require 'index.php';"], in: "\(site.current)/public")
        return result.standardOutput
    }

    @Test(
        "a whole delivery: the cache sits at each tree's root, is built by public/admin/cli, and every served tree has its own"
    )
    func delivery() throws {
        let site = try FixtureSite(makeSiteOptions: ["--public", "--component-cache"])
        #expect(site.configuration.publicLayout)
        #expect(site.configuration.componentCacheFile == ".delivery-component-cache.php")
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        #expect(FileManager.default.fileExists(atPath: "\(site.backup)/.delivery-component-cache.php"))
        let before = try frontPage(site)
        #expect(before.hasPrefix("fixture-site version=2024100700 tree=public"), "\(before)")
        try site.publishRevision2()
        try site.perform(.update)
        let restored = try site.perform(.restore)
        #expect(restored.served == .production)
        let after = try frontPage(site)
        #expect(after.hasPrefix("fixture-site version=2024100800 tree=public"), "\(after)")
        let cache = try String(contentsOfFile: "\(site.production)/.delivery-component-cache.php", encoding: .utf8)
        #expect(cache.contains("'dirroot' => '\(site.production)/public'"))
        #expect(
            site.moodleCalls.allSatisfy { $0.contains("dirroot=\(site.production)/public") || $0.contains("/public") })
        let rollback = try site.perform(.rollback)
        #expect(rollback.served == .backup)
        let rolledBack = try frontPage(site)
        #expect(rolledBack.hasPrefix("fixture-site version=2024100700 tree=public"), "\(rolledBack)")
    }
}

@Suite("Preflight: a version.php that declares no version")
struct MissingVersionTests {
    @Test("a plugin's version.php whose version line was lost blocks the restore (Moodle: defective plugin)")
    func lostVersion() throws {
        let site = try PreflightTests().delivering([
            "mod/forum/version.php":
                "<?php\ndefined('MOODLE_INTERNAL') || die();\n$plugin->component = 'mod_forum';\n$\n"
        ])
        let report = try site.engine.plan()
        let forum = try #require(report.inconsistentComponents.first { $0.component == "mod/forum" })
        #expect(forum.blocking)
        PreflightTests().expectBlocked(site, mentioning: "mod/forum/version.php declares no version")
    }
}
