import Foundation
import Testing

@testable import DeliveryCore

/// The health check's command-line questions inside the maintenance window: the plugin's
/// `cli/health.php` answers both in one bootstrap of PHP; without it, Moodle's own two scripts
/// run at the same time. Both ways give the same answers (fixture stand-ins of Moodle's APIs).
@Suite("Health check: one bootstrap for the command-line questions")
struct HealthScriptTests {
    func checker(_ site: FixtureSite, _ recorder: CommandRecorder) throws -> HealthChecker {
        HealthChecker(
            settings: HealthCheckSettings(), wwwroot: site.configuration.moodle.wwwroot,
            moodle: try site.engine.moodle(recorder), webUser: UserIdentity.current, recorder: recorder)
    }

    /// The plugin as scripts/install puts it into production.
    func installPlugin(_ site: FixtureSite) throws {
        try FileManager.default.copyItem(
            atPath: "\(projectRoot)/moodle-plugin", toPath: "\(site.production)/admin/tool/delivery")
    }

    @Test("the plugin's script and Moodle's two scripts agree: matching, pending, critical checks")
    func sameAnswers() throws {
        let site = try FixtureSite()
        let recorder = CommandRecorder(onLine: { _ in })
        let before = try checker(site, recorder).commandLineAnswers(in: .production)
        #expect(before.codeMatches == true && before.critical == [])
        #expect(recorder.summaries.count == 2, "upgrade.php --is-pending and checks.php")

        try installPlugin(site)
        let viaScript = CommandRecorder(onLine: { _ in })
        let answered = try checker(site, viaScript).commandLineAnswers(in: .production)
        #expect(answered.codeMatches == true && answered.critical == [])
        #expect(viaScript.summaries.map(\.command).count == 1)
        #expect(viaScript.summaries.first?.command.contains("tool/delivery/cli/health.php --pending --checks") == true)

        // A critical check, then code ahead of the database: the same answers both ways.
        try "core_cron\ntool_x\n".write(
            toFile: "\(site.dataroot)/fixture-critical-check", atomically: false, encoding: .utf8)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        let scriptAnswer = try checker(site, CommandRecorder(onLine: { _ in })).commandLineAnswers(in: .production)
        try FileManager.default.removeItem(atPath: "\(site.production)/admin/tool/delivery")
        let moodleAnswer = try checker(site, CommandRecorder(onLine: { _ in })).commandLineAnswers(in: .production)
        #expect(scriptAnswer.codeMatches == false && moodleAnswer.codeMatches == false)
        #expect(scriptAnswer.critical == ["core_cron", "tool_x"] && moodleAnswer.critical == scriptAnswer.critical)
        // Code older than the database (Moodle refuses it): no match either way.
        try "2024100900.00".write(toFile: "\(site.dataroot)/fixture-db-version", atomically: false, encoding: .utf8)
        #expect(
            try checker(site, CommandRecorder(onLine: { _ in })).commandLineAnswers(in: .backup).codeMatches == false)
        try installPlugin(site)
        let downgrade = CommandRecorder(onLine: { _ in })
        #expect(try checker(site, downgrade).commandLineAnswers(in: .production).codeMatches == false)
        #expect(downgrade.summaries.count == 1)
    }

    @Test(
        "the rollback plan's question (does this code match the database) asks the plugin's script when the tree has it"
    )
    func databaseMatchViaScript() throws {
        let site = try FixtureSite()
        try installPlugin(site)
        let recorder = CommandRecorder(onLine: { _ in })
        let moodle = try site.engine.moodle(recorder)
        #expect(try moodle.databaseMatch(in: .production) == true)
        #expect(recorder.summaries.map(\.command).last?.contains("health.php --pending") == true)
        try "2024100900.00".write(toFile: "\(site.dataroot)/fixture-db-version", atomically: false, encoding: .utf8)
        #expect(try moodle.databaseMatch(in: .production) == false)
        #expect(try moodle.databaseMatch(in: .production, viaHealthScript: false) == false)
        #expect(recorder.summaries.map(\.command).last?.contains("upgrade.php --is-pending") == true)
        try "2024100700.00".write(toFile: "\(site.dataroot)/fixture-db-version", atomically: false, encoding: .utf8)
        // Restore's question (is an upgrade pending, and does it need maintenance mode): nothing
        // pending is said by the script alone; a pending upgrade asks upgrade.php which kind.
        let need = CommandRecorder(onLine: { _ in })
        #expect(try site.engine.moodle(need).upgradeNeed(in: .production) == MoodleCLI.UpgradeNeed.none)
        #expect(need.summaries.map(\.command).count == 1)
        try "2024100600.00".write(toFile: "\(site.dataroot)/fixture-db-version", atomically: false, encoding: .utf8)
        #expect(try site.engine.moodle(need).upgradeNeed(in: .production) == .withMaintenance)
        #expect(need.summaries.last?.command.contains("upgrade.php --is-maintenance-required") == true)
        try "2024100700.00".write(toFile: "\(site.dataroot)/fixture-db-version", atomically: false, encoding: .utf8)
    }

    @Test("concurrently runs its two pieces of work at the same time and returns both results")
    func concurrentWork() {
        let started = System.monotonicSeconds()
        let (first, second) = concurrently(
            { () -> Int in
                usleep(400_000)
                return 1
            },
            { () -> String in
                usleep(400_000)
                return "two"
            })
        #expect(first == 1 && second == "two")
        #expect(System.monotonicSeconds() - started < 0.75, "two 0.4 s sleeps took as long as one after the other")
    }

    @Test("a health script that gives no answer: Moodle's own scripts are asked instead")
    func brokenScriptFallsBack() throws {
        let site = try FixtureSite()
        try FileManager.default.createDirectory(
            atPath: "\(site.production)/admin/tool/delivery/cli", withIntermediateDirectories: true)
        try "<?php\necho \"not json\\n\";\n".write(
            toFile: "\(site.production)/admin/tool/delivery/cli/health.php", atomically: false, encoding: .utf8)
        var lines: [String] = []
        let recorder = CommandRecorder(onLine: { lines.append($0) })
        let answers = try checker(site, recorder).commandLineAnswers(in: .production)
        #expect(answers.codeMatches == true && answers.critical == [])
        #expect(recorder.summaries.count == 3)
        #expect(lines.contains { $0.contains("health script gave no answer") })
    }
}
