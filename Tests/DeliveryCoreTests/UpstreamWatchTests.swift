import DeliveryCore
import Foundation
import Testing

extension FixtureSite {
    /// Commits files (path: contents) upstream through the author's working copy.
    func commitUpstream(_ files: [String: String], message: String) throws {
        let author = "\(root)/author"
        if vcs == .cvs { Thread.sleep(forTimeInterval: 1.1) }  // cvs tells revisions apart by the second
        if vcs == .svn { try sh("svn", ["update", "-q", author]) }
        var new: [String] = []
        for (path, text) in files {
            let file = "\(author)/\(path)"
            if !FileManager.default.fileExists(atPath: file) { new.append(path) }
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        }
        let steps: [[String]]
        switch vcs {
        case .git:
            steps = [
                ["git", "add", "-A"],
                [
                    "git", "-c", "user.name=Ada Author", "-c", "user.email=ada@example.invalid", "commit", "-qm",
                    message,
                ],
                ["git", "push", "-q", "origin", "main"],
            ]
        case .svn:
            steps =
                (new.isEmpty ? [] : [["svn", "add", "-q", "--force"] + new]) + [["svn", "commit", "-q", "-m", message]]
        case .cvs:
            steps = (new.isEmpty ? [] : [["cvs", "-Q", "add"] + new]) + [["cvs", "-Q", "commit", "-m", message]]
        }
        for step in steps {
            let result = try sh(step[0], Array(step.dropFirst()), in: author)
            guard result.succeeded else {
                throw FixtureError("\(step.joined(separator: " ")): \(result.combinedOutput)")
            }
        }
    }
}

@Suite("The upstream watch: what a delivery would bring, read without touching production")
struct UpstreamWatchTests {
    @Test(
        "new commits, a version bump, a syntax error upstream; no change gives the same revision",
        arguments: VersionControlKind.allCases)
    func watch(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let quiet = try site.engine.checkUpstream()
        #expect(!quiet.waiting)
        #expect(quiet.commits.isEmpty && quiet.added.isEmpty && quiet.changed.isEmpty && quiet.removed.isEmpty)

        try site.publishRevision2()
        let before = TreeSnapshot(site.production, includeTimes: true)
        let preview = try site.engine.checkUpstream()
        #expect(preview.waiting)
        #expect(preview.commitCount >= 1)
        #expect(preview.commits.contains { $0.subject == "revision 2" })
        #expect(preview.added.contains("local/foo/newfile.php"))
        #expect(preview.changed.contains("mod/forum/lib.php"))
        #expect(preview.changed.contains("version.php"))
        #expect(preview.removed.contains("mod/assign/old.php"))
        #expect(
            preview.versionChanges.contains {
                $0.component == "" && $0.before == "2024100700.00" && $0.after == "2024100800.00" && !$0.backwards
            })
        #expect(preview.versionChanges.contains { $0.component == "mod/forum" && $0.after == "2024100800" })
        #expect(preview.upgrade == .core)
        #expect(!preview.blocking, "\(preview.blockers)")
        // Nothing of production changed: files, times, and the revision checked out.
        #expect(TreeSnapshot(site.production, includeTimes: true) == before)
        #expect(try site.engine.status().upstream?.upstream.id == preview.upstream.id)
        #expect(try site.engine.status().upstream?.added == preview.added)
        // The same upstream, checked again: the same revision (a client notifies once per revision).
        let again = try site.engine.checkUpstream()
        #expect(again.upstream.id == preview.upstream.id)

        try site.commitUpstream(
            ["local/foo/broken.php": "<?php\n$x = ;\n", "mod/forum/lib.php": "<?php\n<<<<<<< HEAD\n$a = 1;\n"],
            message: "a broken change")
        let broken = try site.engine.checkUpstream()
        #expect(broken.upstream.id != preview.upstream.id)
        #expect(broken.lintErrors.contains { $0.file == "local/foo/broken.php" && $0.line == 2 })
        #expect(broken.conflictMarkers["mod/forum/lib.php"] == 2)
        #expect(broken.blocking)
        #expect(broken.blockers.map(\.code).contains("lint"))
        #expect(broken.blockers.map(\.code).contains("conflicts"))
        #expect(TreeSnapshot(site.production, includeTimes: true) == before)
    }

    @Test("a plugin that requires a newer core than the upstream's, and a version going backwards, block")
    func requirements() throws {
        let site = try FixtureSite(vcs: .git)
        try site.commitUpstream(
            [
                "local/foo/version.php":
                    "<?php\n$plugin->component = 'local_foo';\n$plugin->version = 2025010100;\n$plugin->requires = 2099010100.00;\n",
                "mod/forum/version.php": "<?php\n$plugin->component = 'mod_forum';\n$plugin->version = 2020010100;\n",
            ], message: "requires the future")
        let preview = try site.engine.checkUpstream()
        #expect(preview.componentProblems.contains { $0.component == "local/foo" && $0.blocking })
        #expect(preview.versionChanges.contains { $0.component == "mod/forum" && $0.backwards })
        #expect(preview.upgrade == .plugins)
        #expect(Set(preview.blockers.map(\.code)) == ["backwards", "inconsistent"])
    }

    @Test("while an operation holds the delivery lock, the watch is refused")
    func refusedWhileRunning() throws {
        let site = try FixtureSite(vcs: .git)
        let holder = RunningOperationProbe.hold(site)
        defer { holder.release() }
        #expect(throws: DeliveryError.self) { try site.engine.checkUpstream() }
    }
}

/// Holds the site's delivery lock as a running operation would, from a child process.
struct RunningOperationProbe {
    let process: Process

    static func hold(_ site: FixtureSite) -> RunningOperationProbe {
        let process = Process()
        // A POSIX record lock, which the engine's open-file-description locks see.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(10)",
            "\(site.root)/state/delivery.lock",
        ]
        try? process.run()
        Thread.sleep(forTimeInterval: 0.3)
        return RunningOperationProbe(process: process)
    }

    func release() {
        process.terminate()
        process.waitUntilExit()
    }
}

@Suite("The report of a delivery, from its audit records")
struct DeliveryReportTests {
    @Test("a Run all with an upgrade: commits, files, versions, each step, the maintenance window")
    func upgrade() throws {
        let site = try FixtureSite(vcs: .git)
        try site.publishRevision2()
        #expect(try site.engine.checkUpstream().waiting)
        let outcome = try site.perform(.runAll, comment: "term start")
        let report = try site.engine.report(deliveryId: outcome.id)
        // The Run all said it started, in a record of its own, as soon as it changed something.
        let started = site.auditLines.filter { $0.contains(#""result":"started""#) }
        #expect(started.count == 1)
        #expect(started.first?.contains(#""deliveryId":"\#(outcome.id)""#) == true)
        #expect(started.first?.contains(#""id":"\#(outcome.id)""#) == false)
        #expect(started.first?.contains("revisionAfter") == false, "a start names no revision yet")
        #expect(report.outcome == .delivered)
        #expect(report.comments == ["term start"])
        // What was waiting is delivered: the status no longer says it waits, nor what it brings.
        let seen = try #require(try site.engine.status().upstream)
        #expect(!seen.waiting && seen.commits.isEmpty && seen.versionChanges.isEmpty)
        #expect(seen.current.id == report.revisionTo?.id)
        #expect(report.actor.name == "tester")
        #expect(report.commits.map(\.subject) == ["revision 2"])
        #expect(report.added.contains("local/foo/newfile.php"))
        #expect(report.removed.contains("mod/assign/old.php"))
        #expect(report.versionChanges.contains { $0.component == "mod/forum" && $0.before == "2024100700" })
        #expect(report.steps.map(\.operation) == [.secure, .switchToDelivery, .update, .restore])
        #expect(report.steps.allSatisfy { $0.result == "succeeded" && $0.durationSeconds >= 0 })
        #expect(report.revisionFrom?.id != report.revisionTo?.id)
        // The fixture's upgrade needs maintenance mode: on and off, measured by the helper.
        let window = try #require(report.maintenance)
        let seconds = try #require(window.seconds)
        #expect(seconds > 0 && seconds < report.finishedAt.timeIntervalSince(report.startedAt))
        #expect(report.healthCheck == nil)  // the fixture site runs with the health check off
        let lines = report.englishLines.joined(separator: "\n")
        #expect(lines.contains("revision 2") && lines.contains("Maintenance: ") && lines.contains("mod/forum"))
        #expect(throws: DeliveryError.self) { try site.engine.report(deliveryId: "20990101T000000Z-00000000") }
    }

    @Test("a delivery rolled back: its steps one by one, and what the rollback served")
    func rollback() throws {
        let site = try FixtureSite(vcs: .git)
        let secured = try site.perform(.secure, security: true)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        #expect(try site.engine.checkUpstream().waiting)
        try site.perform(.update, comment: "try it")
        #expect(try site.engine.status().upstream?.waiting == false)
        try site.perform(.rollback)
        let report = try site.engine.report(deliveryId: secured.id)
        #expect(report.steps.map(\.operation) == [.secure, .switchToDelivery, .update, .rollback])
        #expect(report.outcome == .rolledBack)
        let rollback = try #require(report.rollback)
        #expect(rollback.served == .security)
        #expect(!rollback.databaseRestored)
        #expect(report.commits.map(\.subject) == ["revision 2"])
    }
}
