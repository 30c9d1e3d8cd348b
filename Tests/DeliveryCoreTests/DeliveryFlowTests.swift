import DeliveryCore
import Foundation
import Testing

@Suite("Four-step delivery on a fixture site")
struct DeliveryFlowTests {
    @Test("secure, switch, update, restore with each VCS", arguments: VersionControlKind.allCases)
    func fullDelivery(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let revision1 = site.served
        #expect(try site.engine.status().phase == .idle)
        #expect(try site.engine.status().served == .production)

        let secured = try site.perform(.secure, security: true)
        #expect(secured.phase == .secured)
        #expect(TreeSnapshot(site.backup) == TreeSnapshot(site.production))
        #expect(TreeSnapshot(site.security) == TreeSnapshot(site.production))
        #expect(!FileManager.default.fileExists(atPath: "\(site.backup)/.git"))
        #expect(!FileManager.default.fileExists(atPath: "\(site.backup)/.svn"))
        #expect(!FileManager.default.fileExists(atPath: "\(site.backup)/CVS"))

        try site.perform(.switchToDelivery)
        #expect(try site.engine.status().served == .backup)
        #expect(site.served == revision1)

        try site.publishRevision2()
        let updated = try site.perform(.update, comment: "forum fix")
        #expect(updated.phase == .updated)
        #expect(site.served == revision1, "the site must keep serving the backup copy during the update")
        let production = TreeSnapshot(site.production)
        #expect(production.entries["local/foo/newfile.php"] != nil)
        #expect(production.entries["mod/assign/old.php"] == nil)

        let restored = try site.perform(.restore)
        #expect(restored.phase == .idle)
        #expect(restored.served == .production)
        #expect(site.servedVersion.contains("2024100800.00"))
        let calls = site.moodleCalls.map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
        let scripts = calls.map { $0.components(separatedBy: " uid=")[0] }
        // Maintenance goes on while the backup copy still serves (its CLI), before production is
        // served; Moodle's upgrade purges the caches itself: no second purge in the window; the web
        // user lifts maintenance by removing its flag file (no bootstrap of Moodle).
        #expect(
            scripts == [
                "upgrade.php --is-maintenance-required", "maintenance.php --enable", "upgrade.php --non-interactive",
            ])
        let lifted = try #require(
            try site.engine.history().first?.commands.last { $0.command.contains("climaintenance") })
        #expect(lifted.command.hasPrefix("/usr/bin/rm -f -- ") || lifted.command.hasPrefix("/bin/rm -f -- "))
        #expect(restored.notices.map(\.code).contains("caches_purged_by_upgrade"))
        // The window is measured by the helper, with its parts, in the result and the history.
        let window = try #require(try site.engine.history().first?.maintenance)
        let seconds = try #require(window.seconds)
        let upgrade = try #require(window.upgradeSeconds)
        #expect(upgrade > 0 && upgrade <= seconds)
        // The parts add up to the whole in the tenths they are shown with.
        func tenths(_ value: Double) -> Double { (value * 10).rounded() / 10 }
        #expect(
            abs(tenths(seconds) - tenths(upgrade) - tenths(window.snapshotSeconds ?? 0) - (window.otherSeconds ?? -1))
                < 0.001)
        let said = try #require(restored.notices.first { $0.code == "maintenance_window_parts" }).english
        #expect(
            said.hasPrefix("Maintenance window: \(String(format: "%.1f", tenths(seconds))) s (Moodle's upgrade "),
            "\(said)")
        #expect(
            site.moodleCalls.filter { !$0.contains("maintenance.php --enable") }.allSatisfy {
                $0.contains("dirroot=\(site.production)")
            })
        #expect(!FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))
    }

    @Test("run all goes 1 to 4; a second run all with no upstream change upgrades nothing")
    func runAll() throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        let outcome = try site.perform(.runAll, security: true, comment: "term start")
        #expect(outcome.phase == .idle)
        #expect(site.servedVersion.contains("2024100800.00"))
        #expect(TreeSnapshot(site.backup) == site.revision1)
        let history = try site.engine.history()
        #expect(history.first?.operation == .runAll)
        #expect(history.first?.comment == "term start")
        #expect(history.first?.result == "succeeded")
        #expect(history.first?.commands.contains { $0.command.contains("upgrade.php --non-interactive") } == true)

        let before = site.moodleCalls.count
        try site.perform(.runAll)
        let newCalls = site.moodleCalls.dropFirst(before)
        #expect(newCalls.contains { $0.contains("upgrade.php --is-maintenance-required") })
        #expect(!newCalls.contains { $0.contains("--non-interactive") })

        // A new delivery starts: the steps after Secure show no result of the last one.
        #expect(try site.engine.status().lastResults[.restore]?.succeeded == true)
        try site.perform(.secure)
        let results = try site.engine.status().lastResults
        #expect(results[.secure]?.succeeded == true)
        #expect(results[.switchToDelivery] == nil && results[.update] == nil && results[.restore] == nil)
    }

    @Test("run all refuses before acting when the upstream is gone")
    func runAllRefusesWithoutUpstream() throws {
        let site = try FixtureSite()
        try FileManager.default.moveItem(atPath: "\(site.root)/upstream", toPath: "\(site.root)/upstream-gone")
        let error = site.refusal(.runAll)
        #expect(error?.code == .notUpdatable)
        #expect(error?.message.contains("does not appear to be a git repository") == true, "\(error?.message ?? "")")
        let status = try site.engine.status()
        #expect(status.phase == .idle && status.served == .production)
        #expect(status.copies[.backup]?.exists != true, "not even secured")
        // The Check button (plan) says it too, before anything is switched.
        try site.perform(.secure)
        let plan = try site.engine.plan()
        let warnings = plan.warnings
        // The English (deliveryctl plan) carries git's words; the notice, its code for each client.
        #expect(
            warnings.contains { $0.hasPrefix("The next update would fail.") && $0.contains("not appear to be a git") },
            "\(warnings)")
        #expect(plan.warningNotices.map(\.code).contains("warning_next_update_fails"))
    }

    @Test("run all stops at the first failure and the site keeps serving a complete tree")
    func runAllStopsAtFailure() throws {
        let site = try FixtureSite()
        // Production has a commit of its own: the update cannot fast-forward, which only the merge finds.
        try site.publishRevision2()
        try sh(
            "git",
            [
                "-c", "user.name=Admin", "-c", "user.email=a@example.org", "commit", "-q", "--allow-empty", "-m",
                "local",
            ],
            in: site.production)
        let error = site.refusal(.runAll)
        #expect(error?.code == .vcsFailed)
        #expect(error?.message.contains("not a fast-forward") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("backup") == true)
        let status = try site.engine.status()
        #expect(status.phase == .delivering)
        #expect(status.served == .backup)
        #expect(site.served == site.revision1)
        #expect(status.lastResults[.runAll]?.succeeded == false)

        try site.perform(.cancel)
        #expect(try site.engine.status().served == .production)
        #expect(try site.engine.status().phase == .idle)
    }

    @Test("cancel after an update puts production back exactly", arguments: VersionControlKind.allCases)
    func cancelRestoresProduction(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let before = TreeSnapshot(site.production)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        #expect(TreeSnapshot(site.production) != before)
        let outcome = try site.perform(.cancel)
        #expect(outcome.served == .production)
        #expect(outcome.phase == .idle)
        let after = TreeSnapshot(site.production)
        #expect(after.difference(from: before) == [])
        #expect(site.moodleCalls.isEmpty, "cancel before restore runs no upgrade")
    }

    @Test("a path update changes only that path, and cancel undoes it", arguments: VersionControlKind.allCases)
    func pathUpdate(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let before = TreeSnapshot(site.production)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update, updatePath: "mod/forum")
        let after = TreeSnapshot(site.production)
        let changed = after.difference(from: before)
        #expect(!changed.isEmpty)
        #expect(changed.allSatisfy { $0.hasPrefix("mod/forum/") }, "\(changed)")
        // A second path in the same delivery, for a new file.
        try site.perform(.update, updatePath: "local/foo")
        #expect(FileManager.default.fileExists(atPath: "\(site.production)/local/foo/newfile.php"))
        try site.perform(.cancel)
        #expect(TreeSnapshot(site.production).difference(from: before) == [])
        if vcs == .git {
            let status = try sh("git", ["status", "--porcelain"], in: site.production)
            #expect(status.standardOutput.isEmpty, "\(status.standardOutput)")
        }
    }

    @Test("emergency rollback serves the security copy, else the backup copy")
    func emergencyRollback() throws {
        let site = try FixtureSite()
        #expect(site.refusal(.rollback)?.code == .copyMissing)

        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        try site.perform(.restore)
        #expect(site.servedVersion.contains("2024100800.00"))

        let outcome = try site.perform(.rollback)
        #expect(outcome.served == .backup)
        #expect(outcome.phase == .rolledBack)
        #expect(site.served == site.revision1)

        // With a security copy, rollback prefers it.
        try site.perform(.restore)
        try site.perform(.secure, security: true)
        let withSecurity = try site.perform(.rollback)
        #expect(withSecurity.served == .security)
    }

    @Test("a component path refreshes only that part of a complete copy")
    func partialSecure() throws {
        let site = try FixtureSite()
        let refused = site.refusal(.secure, securePath: "mod/forum")
        #expect(refused?.code == .copyMissing)
        try site.perform(.secure)
        // Change two places in production by hand (as a sysadmin would have).
        try "<?php // changed forum\n".write(
            toFile: "\(site.production)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        try "<?php // changed assign\n".write(
            toFile: "\(site.production)/mod/assign/lib.php", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(site.production)/mod/forum/db/upgrade.php")
        try site.perform(.secure, securePath: "mod/forum")
        #expect(TreeSnapshot("\(site.backup)/mod/forum") == TreeSnapshot("\(site.production)/mod/forum"))
        #expect(TreeSnapshot("\(site.backup)/mod/assign") != TreeSnapshot("\(site.production)/mod/assign"))
        let status = try site.engine.status()
        #expect(status.copies[.backup]?.refreshedPaths.first?.hasPrefix("mod/forum @") == true)
    }
}

@Suite("Upstream settings and update failures")
struct UpstreamTests {
    /// The fixture's engine with a different upstream setting.
    func engine(_ site: FixtureSite, pin: String?) throws -> DeliveryEngine {
        var configuration = site.configuration
        configuration.upstream.pin = pin
        return try DeliveryEngine(configuration: configuration)
    }

    @Test("git: a pinned tag is checked out, and cancel goes back to the branch")
    func gitPinnedTag() throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        try sh("git", ["tag", "v1", "HEAD~1"], in: "\(site.root)/author")
        try sh("git", ["push", "-q", "origin", "v1"], in: "\(site.root)/author")
        // Deliver revision 2 first, then pin the site to the v1 tag (a rollback delivery).
        try site.perform(.runAll)
        let pinned = try engine(site, pin: "v1")
        let actor = Actor(name: "t", source: "cli")
        try pinned.perform(OperationRequest(.secure, actor: actor))
        try pinned.perform(OperationRequest(.switchToDelivery, actor: actor))
        try pinned.perform(OperationRequest(.update, actor: actor))
        let head = try sh("git", ["describe", "--tags", "--exact-match", "HEAD"], in: site.production)
        #expect(head.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "v1")
        try pinned.perform(OperationRequest(.cancel, actor: actor))
        let branch = try sh("git", ["symbolic-ref", "--short", "HEAD"], in: site.production)
        #expect(branch.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "main")
        #expect(site.servedVersion.contains("2024100800.00"))
    }

    @Test("git: production diverged from the upstream (a local commit): the update says so")
    func gitDiverged() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try "<?php // local hotfix\n".write(
            toFile: "\(site.production)/local/foo/lib.php", atomically: false, encoding: .utf8)
        try sh(
            "git", ["-c", "user.name=x", "-c", "user.email=x@x.invalid", "commit", "-qam", "hotfix"],
            in: site.production)
        let error = site.refusal(.update)
        #expect(error?.code == .vcsFailed)
        #expect(error?.message.contains("diverged") == true, "\(error?.message ?? "")")
        #expect(try site.engine.status().served == .backup)
    }

    @Test("svn: a pinned revision is what the update brings")
    func svnPinnedRevision() throws {
        let site = try FixtureSite(vcs: .svn)
        try site.publishRevision2()
        let pinned = try engine(site, pin: "1")
        let actor = Actor(name: "t", source: "cli")
        try pinned.perform(OperationRequest(.runAll, actor: actor))
        #expect(site.servedVersion.contains("2024100700.00"), "revision 1 stays: the pin says r1")
        let latest = try engine(site, pin: nil)
        try latest.perform(OperationRequest(.runAll, actor: actor))
        #expect(site.servedVersion.contains("2024100800.00"))
    }

    @Test("svn: a conflict stops the update, names the file, and the site keeps serving the backup")
    func svnConflict() throws {
        let site = try FixtureSite(vcs: .svn)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        // A first update of a path, then a local edit that conflicts with revision 2 elsewhere.
        try site.perform(.update, updatePath: "local")
        try "<?php // conflicting edit\n".write(
            toFile: "\(site.production)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        let error = site.refusal(.update)
        #expect(error?.code == .vcsFailed)
        #expect(error?.message.contains("conflict") == true, "\(error?.message ?? "")")
        #expect(try site.engine.status().served == .backup)
        try site.perform(.cancel)
        #expect(TreeSnapshot(site.production) == site.revision1)
    }
}

@Suite("A failing upgrade")
struct FailingUpgradeTests {
    func failedRestore() throws -> FixtureSite {
        let site = try FixtureSite()
        try site.publishRevision2()
        try "yes".write(toFile: "\(site.dataroot)/fixture-fail-upgrade", atomically: false, encoding: .utf8)
        let error = site.refusal(.runAll)
        #expect(error?.code == .upgradeFailed)
        #expect(error?.message.contains("Maintenance mode stays on") == true, "\(error?.message ?? "")")
        #expect(FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))
        let status = try site.engine.status()
        #expect(status.phase == .restoring && status.maintenanceEnabled && status.upgradeRan)
        return site
    }

    @Test("rollback after a failed upgrade that left the database as it was: maintenance mode goes off")
    func rollbackAfterFailedUpgrade() throws {
        let site = try failedRestore()
        let outcome = try site.perform(.rollback)
        #expect(outcome.served == .backup)
        #expect(outcome.message.contains("maintenance mode is off"), "\(outcome.message)")
        #expect(!FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))
        #expect(site.served == site.revision1)
    }

    @Test("cancel after a failed upgrade that left the database as it was: production goes back, maintenance off")
    func cancelAfterFailedUpgrade() throws {
        let site = try failedRestore()
        let outcome = try site.perform(.cancel)
        #expect(outcome.served == .production)
        #expect(TreeSnapshot(site.production) == site.revision1)
        #expect(!FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))
    }

    @Test("after an upgrade that changed the database, cancel is refused and rollback warns")
    func upgradedDatabase() throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        try site.perform(.runAll)
        let rollback = try site.perform(.rollback)
        #expect(rollback.message.contains("does not match"), "\(rollback.message)")
        // Moodle refuses the older code on this database: its users get the maintenance page, as the
        // rollback plan said, not errors (found by the invariant check after every operation).
        #expect(rollback.message.contains("maintenance mode is now on"), "\(rollback.message)")
        #expect(FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))
        // The delivery is finished (idle before the rollback), so there is no delivery to cancel back:
        // cancel serves production again, which matches the database: maintenance goes off.
        try site.perform(.cancel)
        #expect(site.servedVersion.contains("2024100800.00"))
        #expect(!FileManager.default.fileExists(atPath: "\(site.dataroot)/climaintenance.html"))

        // Within a delivery: the upgrade changes the database, then fails midway.
        let second = try FixtureSite()
        try second.publishRevision2()
        try "midway".write(toFile: "\(second.dataroot)/fixture-fail-upgrade", atomically: false, encoding: .utf8)
        let failed = second.refusal(.runAll)
        #expect(failed?.code == .upgradeFailed)
        #expect(failed?.message.contains("Fixture upgrade failure requested") == true, "\(failed?.message ?? "")")
        let cancel = second.refusal(.cancel)
        #expect(cancel?.code == .wrongState)
        #expect(cancel?.message.contains("does not match") == true, "\(cancel?.message ?? "")")
        let rollback2 = try second.perform(.rollback)
        #expect(rollback2.message.contains("maintenance mode stays on"), "\(rollback2.message)")
        #expect(FileManager.default.fileExists(atPath: "\(second.dataroot)/climaintenance.html"))
    }
}

@Suite("Preflight before production is served again")
struct PreflightTests {
    func publish(_ site: FixtureSite, _ files: [String: String]) throws { try site.publish(files) }

    func delivering(_ files: [String: String]) throws -> FixtureSite {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try publish(site, files)
        try site.perform(.update)
        return site
    }

    func expectBlocked(
        _ site: FixtureSite, mentioning fragment: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let before = site.diskSnapshot
        let error = site.refusal(.restore)
        #expect(error?.code == .preflightFailed, "\(error?.message ?? "no error")", sourceLocation: sourceLocation)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        #expect(error?.message.contains("still serves the backup") == true, sourceLocation: sourceLocation)
        #expect(site.diskSnapshot.difference(from: before) == [], sourceLocation: sourceLocation)
        // The preflight asks Moodle whether an upgrade is pending (read only); nothing else ran.
        #expect(
            site.moodleCalls.allSatisfy { $0.contains("upgrade.php --is-maintenance-required") }, "no upgrade ran",
            sourceLocation: sourceLocation)
        #expect(site.served == site.revision1, sourceLocation: sourceLocation)
    }

    @Test("a PHP syntax error in the update blocks the restore and names the file and line")
    func syntaxError() throws {
        let site = try delivering(["mod/forum/lib.php": "<?php\n// fine\nfunction broken( {\n"])
        expectBlocked(site, mentioning: "mod/forum/lib.php line 3")
        let report = try site.engine.plan()
        #expect(report.lintErrors.count == 1)
        #expect(report.lintErrors.first?.line == 3)
        #expect(report.changed == ["mod/forum/lib.php"])
    }

    @Test("conflict markers in the update block the restore")
    func conflictMarkers() throws {
        let site = try delivering([
            "local/foo/readme.txt": "intro\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> upstream\n"
        ])
        expectBlocked(site, mentioning: "conflict markers in 1 file (first: local/foo/readme.txt line 2)")
    }

    @Test("a version going backwards blocks the restore")
    func versionBackwards() throws {
        let site = try delivering([
            "mod/forum/version.php":
                "<?php\ndefined('MOODLE_INTERNAL') || die();\n$plugin->component = 'mod_forum';\n$plugin->version = 2024090100;\n"
        ])
        expectBlocked(site, mentioning: "the version of mod/forum goes backwards (2024100700 → 2024090100)")
    }

    @Test("a clean update: the plan lists the changes and versions, and the restore goes ahead")
    func cleanPlan() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        let report = try site.engine.plan()
        #expect(!report.blocking)
        #expect(report.added == ["local/foo/newfile.php"])
        #expect(report.removed == ["mod/assign/old.php"])
        #expect(Set(report.changed) == ["version.php", "mod/forum/lib.php", "mod/forum/version.php"])
        // The forecast: an upgrade pending that Moodle wants in maintenance, no snapshot (off here).
        #expect(report.upgrade?.pending == true)
        #expect(report.upgrade?.maintenanceRequired == true)
        #expect(report.upgrade?.snapshot == false)
        #expect(report.maintenanceModeOn == false)
        #expect(report.snapshotSpace == nil)
        let core = report.versionChanges.first { $0.component.isEmpty }
        #expect(core?.before == "2024100700.00" && core?.after == "2024100800.00" && core?.backwards == false)
        #expect(report.versionChanges.contains { $0.component == "mod/forum" })
        try site.perform(.restore)
        #expect(site.servedVersion.contains("2024100800.00"))
    }
}

@Suite("Warm switch: one prebuilt component cache per tree")
struct ComponentCacheTests {
    static let line = "$CFG->alternative_component_cache = __DIR__ . '/.delivery-component-cache.php';\n"

    /// A site whose config.php (tracked in git, as some sites do) sets the component cache.
    func site() throws -> FixtureSite {
        try FixtureSite(beforeAdoption: { root in
            let config = "\(root)/author/config.php"
            let text = try String(contentsOfFile: config, encoding: .utf8)
            try text.replacingOccurrences(of: "require_once(", with: Self.line + "require_once(")
                .write(toFile: config, atomically: false, encoding: .utf8)
            try sh(
                "git", ["-c", "user.name=a", "-c", "user.email=a@x.invalid", "commit", "-qam", "cache"],
                in: "\(root)/author")
            try sh("git", ["push", "-q", "origin", "main"], in: "\(root)/author")
            try sh("git", ["pull", "-q"], in: "\(root)/moodle")
        })
    }

    func cache(_ tree: String) -> String? {
        try? String(contentsOfFile: "\(tree)/.delivery-component-cache.php", encoding: .utf8)
    }

    @Test("init finds the setting and builds production's cache; every copy and update gets its own")
    func cachePerTree() throws {
        let site = try site()
        #expect(site.configuration.componentCacheFile == ".delivery-component-cache.php")
        #expect(cache(site.production)?.contains("'dirroot' => '\(site.production)'") == true)
        let status = try sh("git", ["status", "--porcelain"], in: site.production)
        #expect(status.standardOutput.isEmpty, "the cache file stays out of git's view: \(status.standardOutput)")
        try site.publishRevision2()
        try site.perform(.runAll, security: true)
        let backup = try FileManager.default.destinationOfSymbolicLink(atPath: site.backup)
        let backupRoot = "\(site.siteRoot)/releases/\(backup)"
        #expect(cache(backupRoot)?.contains("'dirroot' => '\(backupRoot)'") == true, "\(cache(backupRoot) ?? "none")")
        #expect(cache(backupRoot)?.contains("2024100700") == true)
        #expect(cache(site.production)?.contains("2024100800") == true, "rebuilt after the update")
        // The fixture's index.php dies like Moodle on a missing or foreign cache: every served tree works.
        for check in ["production", "rollback"] {
            if check == "rollback" { try site.perform(.rollback) }
            let page = try sh("/usr/bin/php", ["-d", "display_errors=0", "\(site.current)/index.php"])
            #expect(page.standardOutput.hasPrefix("fixture-site"), "\(check): \(page.standardOutput)")
        }
    }

    @Test("production's cache after an update: kept for changed contents, rebuilt for a new name and after a cancel")
    func productionCacheAfterUpdate() throws {
        let site = try site()
        /// Builds of production's cache in the last operation (the command names its folder; as root
        /// through the code owner's delivery-copy, whose job is JSON).
        func productionBuilds() throws -> Int {
            try site.engine.history().first?.commands.filter {
                $0.command.contains("alternative_component_cache.php")
                    && ($0.command.contains("releases/production/") || $0.command.contains("releases\\/production\\/"))
            }.count ?? -1
        }
        try site.publish(["login/index.php": "<?php // fix A\n"])
        try site.perform(.runAll)
        #expect(try productionBuilds() == 1, "nothing recorded yet of production's cache: built")
        try site.publish(["login/index.php": "<?php // fix B\n"])
        try site.perform(.runAll)
        #expect(try productionBuilds() == 0, "the same names and declarations: kept")
        try site.publish(["login/newpage.php": "<?php // new\n"])
        try site.perform(.runAll)
        #expect(try productionBuilds() == 1, "a new name: rebuilt")
        // An update that adds a name records production's cache for it; a cancel rebuilds the cache
        // for the older code (without that name) and forgets the record: the next update, bringing
        // the name back, must build again (a kept cache would lack the name).
        try site.publish(["login/extra.php": "<?php // extra\n"])
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.perform(.update)
        #expect(try productionBuilds() == 1)
        try site.perform(.cancel)
        #expect(cache(site.production)?.contains("'extra.php'") == false)
        try site.perform(.runAll)
        #expect(try productionBuilds() == 1)
        #expect(cache(site.production)?.contains("'extra.php'") == true, "\(cache(site.production) ?? "none")")
        let page = try sh("/usr/bin/php", ["-d", "display_errors=0", "\(site.current)/index.php"])
        #expect(page.standardOutput.hasPrefix("fixture-site"), "\(page.standardOutput)")
    }

    @Test("a copy whose cache went missing gets it back before it is served")
    func missingCacheRebuilt() throws {
        let site = try site()
        try site.perform(.secure)
        let backup = try FileManager.default.destinationOfSymbolicLink(atPath: site.backup)
        try FileManager.default.removeItem(atPath: "\(site.siteRoot)/releases/\(backup)/.delivery-component-cache.php")
        try site.perform(.switchToDelivery)
        let page = try sh("/usr/bin/php", ["-d", "display_errors=0", "\(site.current)/index.php"])
        #expect(page.standardOutput.hasPrefix("fixture-site"), "\(page.standardOutput)")
    }

    @Test("init --component-cache on a config.php under version control: the line is a site-local change, kept")
    func trackedConfigKept() throws {
        let directory = TemporaryDirectory()
        try sh("/bin/bash", ["\(projectRoot)/Tests/Fixture/make-site", "--vcs", "git", "--dir", directory.path])
        let me = UserIdentity.current.name
        let result = try SiteAdoption.adopt(
            AdoptionRequest(
                moodleDirectory: "\(directory.path)/moodle", siteRoot: "\(directory.path)/site",
                stateDirectory: "\(directory.path)/state", configurationPath: "\(directory.path)/c.json",
                webUser: me, codeOwner: me, phpFpmSockets: [], componentCache: true, databaseSnapshots: false,
                healthCheck: HealthCheckSettings(mode: .off)))
        #expect(result.addedComponentCacheSetting)
        #expect(result.changedLocalFiles == ["config.php"])
        let config = "\(directory.path)/site/releases/production/config.php"
        let adopted = try Data(contentsOf: URL(fileURLWithPath: config))
        #expect(String(decoding: adopted, as: UTF8.self).contains("alternative_component_cache"))
        try sh("/bin/bash", ["\(directory.path)/revision2"])
        let engine = try DeliveryEngine(configuration: result.configuration)
        _ = try engine.perform(OperationRequest(.runAll, actor: Actor(name: "tester", source: "cli")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: config)) == adopted)
        #expect(try engine.status().phase == .idle)
    }
}

/// The fractions a secure reports, and where its lines say the comparison ended.
private final class FractionCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ProgressEvent] = []

    var all: [ProgressEvent] { lock.withLock { events } }

    func receive(_ event: ProgressEvent) {
        lock.withLock { events.append(event) }
    }
}

@Suite("Progress of the copies")
struct CopyProgressTests {
    @Test("a secure whose copy is already identical reports how far its comparison is (issue 15: the bar stayed empty)")
    func comparisonReportsProgress() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        let events = FractionCollector()
        let outcome = try site.engine.perform(
            OperationRequest(.secure, actor: Actor(name: "tester", source: "cli")), progress: events.receive)
        #expect(outcome.message.contains("already identical"), "\(outcome.message)")
        let all = events.all
        // Before the step's end (which reports 1), the comparison said how far it was.
        let finished = all.firstIndex { if case .stepFinished = $0 { true } else { false } } ?? all.count
        let during = all[..<finished].compactMap { event -> Double? in
            if case .fraction(.secure, let value) = event { value } else { nil }
        }
        #expect(during.contains { $0 > 0 && $0 < 1 }, "fractions before the end: \(during)")
    }
}
