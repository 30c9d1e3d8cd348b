import Foundation
import Testing

@testable import DeliveryCore

@Suite("Refusals: one clear error, nothing changed on disk")
struct RefusalTests {
    /// Runs an operation that must be refused with `code`, and checks that nothing on disk changed
    /// and that the refusal was written to the audit log.
    func expectRefusal(
        _ site: FixtureSite, _ operation: DeliveryOperation, securePath: String? = nil, updatePath: String? = nil,
        code: DeliveryError.Code, mentioning fragment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let before = site.diskSnapshot
        let stateBefore = (try? String(contentsOfFile: "\(site.root)/state/state.json", encoding: .utf8)) ?? ""
        let auditBefore = site.auditLines.count
        let error = site.refusal(operation, securePath: securePath, updatePath: updatePath)
        #expect(
            error?.code == code, "\(operation.rawValue): \(error?.message ?? "no error")",
            sourceLocation: sourceLocation)
        if let fragment {
            #expect(
                error?.message.contains(fragment) == true, "\(error?.message ?? "")", sourceLocation: sourceLocation)
        }
        #expect(error?.message.contains("\n") == false, "one line", sourceLocation: sourceLocation)
        let after = site.diskSnapshot
        #expect(after.difference(from: before) == [], sourceLocation: sourceLocation)
        let stateAfter = (try? String(contentsOfFile: "\(site.root)/state/state.json", encoding: .utf8)) ?? ""
        if stateAfter != stateBefore {
            Issue.record("state changed:\n\(stateBefore)\n---\n\(stateAfter)", sourceLocation: sourceLocation)
        }
        #expect(site.auditLines.count == auditBefore + 1, sourceLocation: sourceLocation)
        #expect(site.auditLines.last?.contains("\"result\":\"refused\"") == true, sourceLocation: sourceLocation)
    }

    @Test("steps the state does not allow")
    func wrongState() throws {
        let site = try FixtureSite()
        expectRefusal(site, .switchToDelivery, code: .wrongState, mentioning: "secure the site first")
        expectRefusal(site, .update, code: .wrongState, mentioning: "production is being served")
        expectRefusal(site, .restore, code: .wrongState)
        expectRefusal(site, .cancel, code: .wrongState, mentioning: "no delivery")
        expectRefusal(site, .recover, code: .wrongState)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        expectRefusal(site, .secure, code: .wrongState, mentioning: "serving the backup")
        expectRefusal(site, .runAll, code: .wrongState)
        expectRefusal(site, .switchToDelivery, code: .wrongState, mentioning: "already in delivery mode")
    }

    @Test(
        "hostile component paths",
        arguments: [
            ("../etc", "contains '..'"), ("/etc", "absolute"), ("-rf", "starts with '-'"), ("mod/\0x", "NUL"),
            ("mod/../../x", "'..'"), ("mod//forum", "empty part"), ("mod/*", "characters"),
            ("mod/forum/.git", "version control"),
            ("nonexistent", "does not exist"), ("mod/--force", "starting with '-'"), ("", "empty"),
        ])
    func hostilePaths(path: String, fragment: String) throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        expectRefusal(site, .secure, securePath: path, code: .badPath, mentioning: fragment)
    }

    @Test("a component path through a symlink that leaves the tree")
    func symlinkEscape() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try FileManager.default.createSymbolicLink(atPath: "\(site.production)/escape", withDestinationPath: "/etc")
        expectRefusal(site, .secure, securePath: "escape", code: .badPath, mentioning: "symlink")
        expectRefusal(site, .secure, securePath: "escape/passwd", code: .badPath, mentioning: "symlink")
        expectRefusal(site, .secure, securePath: "theme/default/templates", code: .badPath, mentioning: "symlink")
        try site.perform(.switchToDelivery)
        expectRefusal(site, .update, updatePath: "escape", code: .badPath, mentioning: "symlink")
        expectRefusal(site, .update, updatePath: "../x", code: .badPath)
    }

    @Test("a missing copy: partial secure without a complete copy, rollback with none")
    func missingCopy() throws {
        let site = try FixtureSite()
        expectRefusal(site, .secure, securePath: "mod", code: .copyMissing, mentioning: "Secure the whole site first")
        expectRefusal(site, .rollback, code: .copyMissing)
    }

    /// Found by the exploration walk (Tests/Explore), shortest sequence `run-all; secure --path
    /// local`: the refresh mixed the pre-delivery backup copy with production's new plugin, and the
    /// rollback plan then offered that copy as matching the database.
    @Test("explore: run-all; secure --path: refused while a copy holds another revision than production")
    func componentRefreshOfAnOlderCopy() throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        try site.perform(.runAll)
        expectRefusal(site, .secure, securePath: "local", code: .wrongState, mentioning: "would mix two revisions")
        // A whole secure is the way: afterwards a component refresh is fine again.
        try site.perform(.secure)
        try site.perform(.secure, securePath: "local")
    }

    @Test("bad requests: oversize comment, control characters")
    func badRequests() throws {
        let site = try FixtureSite()
        let long = String(repeating: "x", count: OperationRequest.commentLimit + 1)
        let before = site.diskSnapshot
        for comment in [long, "bell\u{7}"] {
            #expect(throws: DeliveryError.self) {
                try site.engine.perform(
                    OperationRequest(.update, actor: Actor(name: "t", source: "cli"), comment: comment))
            }
        }
        #expect(site.diskSnapshot.difference(from: before) == [])
    }

    @Test("a held lock names its holder and changes nothing")
    func heldLock() throws {
        let site = try FixtureSite()
        let holder = RunningOperation(
            id: "other", operation: .secure, step: .secure, actor: Actor(name: "alice", source: "moodle"),
            pid: getpid(), host: "h", startedAt: Date())
        let lock = try DeliveryLock.acquire(in: "\(site.root)/state", holder: holder)
        let status = try site.engine.status()
        #expect(status.running?.actor.name == "alice")
        #expect(status.allowed == [.rollback])
        expectRefusal(site, .secure, code: .lockHeld, mentioning: "alice")
        lock.release()
        try site.perform(.secure)
    }

    @Test("production changed after secure: switch is refused")
    func productionChangedSinceSecure() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.publishRevision2()
        try sh("git", ["pull", "-q"], in: site.production)
        site.checksInvariants = false  // production changed behind the engine's back, on purpose
        expectRefusal(site, .switchToDelivery, code: .wrongState, mentioning: "changed since it was secured")
    }

    @Test("switch and run-all refuse before acting when the update could not run (local modifications)")
    func notUpdatableLocalModifications() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try "<?php // hand edit\n".write(
            toFile: "\(site.production)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        expectRefusal(site, .switchToDelivery, code: .notUpdatable, mentioning: "local modifications")
        #expect(try site.engine.status().served == .production)
        try sh("git", ["checkout", "-q", "--", "mod/forum/lib.php"], in: site.production)
        try site.perform(.cancel)
        try "<?php // hand edit\n".write(
            toFile: "\(site.production)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        expectRefusal(site, .runAll, code: .notUpdatable, mentioning: "so the update would refuse")
    }

    @Test("switch refuses before acting when the upstream does not answer, with git's own reason")
    func notUpdatableUpstream() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try FileManager.default.moveItem(atPath: "\(site.root)/upstream", toPath: "\(site.root)/upstream.away")
        expectRefusal(site, .switchToDelivery, code: .notUpdatable, mentioning: "fatal:")
        try FileManager.default.moveItem(atPath: "\(site.root)/upstream.away", toPath: "\(site.root)/upstream")
        try site.perform(.switchToDelivery)
        #expect(try site.engine.status().served == .backup)
    }

    @Test("local modifications in production stop the update and the site keeps serving the backup")
    func localModifications() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try "<?php // hand edit\n".write(
            toFile: "\(site.production)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        let error = site.refusal(.update)
        #expect(error?.code == .vcsFailed)
        #expect(error?.message.contains("local modifications") == true)
        #expect(try site.engine.status().served == .backup)
    }

    @Test("not a Moodle tree, and an adopted site, are refused by init")
    func initRefusals() throws {
        let directory = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: "\(directory.path)/www", withIntermediateDirectories: true)
        try "hello".write(toFile: "\(directory.path)/www/index.html", atomically: false, encoding: .utf8)
        #expect {
            try SiteAdoption.adopt(
                AdoptionRequest(
                    moodleDirectory: "\(directory.path)/www", configurationPath: "\(directory.path)/c.json",
                    webUser: UserIdentity.current.name))
        } throws: { ($0 as? DeliveryError)?.code == .notMoodle }
        #expect(FileManager.default.fileExists(atPath: "\(directory.path)/www/index.html"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/www-delivery"))

        let site = try FixtureSite()
        #expect {
            try SiteAdoption.adopt(
                AdoptionRequest(
                    moodleDirectory: "\(site.root)/moodle", configurationPath: "\(site.root)/c2.json",
                    webUser: UserIdentity.current.name))
        } throws: { ($0 as? DeliveryError)?.code == .wrongState }

        // A second site never takes over the first one's configuration.
        let second = TemporaryDirectory()
        try sh("/bin/bash", ["\(projectRoot)/Tests/Fixture/make-site", "--vcs", "git", "--dir", second.path])
        let before = try Data(contentsOf: URL(fileURLWithPath: site.configurationPath))
        let refused = #expect(throws: DeliveryError.self) {
            try SiteAdoption.adopt(
                AdoptionRequest(
                    moodleDirectory: "\(second.path)/moodle", siteRoot: "\(second.path)/site",
                    stateDirectory: "\(second.path)/state", configurationPath: site.configurationPath,
                    webUser: UserIdentity.current.name, codeOwner: UserIdentity.current.name))
        }
        #expect(refused?.code == .wrongState)
        #expect(refused?.message.contains(site.siteRoot) == true, "\(refused?.message ?? "")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: site.configurationPath)) == before)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(second.path)/moodle")) == nil)
        #expect(!FileManager.default.fileExists(atPath: "\(second.path)/site"))
    }

    @Test(
        "the warm switch on a dataroot the web server's group cannot write is refused by init, changing nothing",
        .enabled(if: getuid() == 0, "needs root for a code owner of its own"))
    func componentCacheNeedsWritableDataroot() throws {
        let directory = TemporaryDirectory()
        try sh("/bin/bash", ["\(projectRoot)/Tests/Fixture/make-site", "--vcs", "git", "--dir", directory.path])
        chmod("\(directory.path)/moodledata", 0o755)
        // The code is the code owner's (git refuses a repository owned by someone else).
        try sh("/bin/chown", ["-R", "nobody", "\(directory.path)/moodle"])
        let error = #expect(throws: DeliveryError.self) {
            try SiteAdoption.adopt(
                AdoptionRequest(
                    moodleDirectory: "\(directory.path)/moodle", siteRoot: "\(directory.path)/site",
                    stateDirectory: "\(directory.path)/state", configurationPath: "\(directory.path)/c.json",
                    webUser: UserIdentity.current.name, codeOwner: "nobody", phpFpmSockets: [], componentCache: true))
        }
        #expect(error?.message.contains("is not writable by the web server's group") == true, "\(error?.message ?? "")")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory.path)/moodle")) == nil)
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/site"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/c.json"))
    }

    @Test(
        "secure on a disk without room for the copies is refused before anything is written",
        .enabled(if: getuid() == 0, "needs root to mount a small file system"))
    func secureWithoutRoom() throws {
        let directory = TemporaryDirectory()
        // A 48 MiB file system: less than the 64 MiB a secure leaves free, whatever the copy takes.
        let small = "\(directory.path)/small"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: false)
        let mounted = try sh("/bin/mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", small])
        try #require(mounted.succeeded, "\(mounted.combinedOutput)")
        defer { _ = try? sh("/bin/umount", [small]) }
        try sh("/bin/bash", ["\(projectRoot)/Tests/Fixture/make-site", "--vcs", "git", "--dir", small])
        let me = UserIdentity.current.name
        let configuration = try SiteAdoption.adopt(
            AdoptionRequest(
                moodleDirectory: "\(small)/moodle", siteRoot: "\(small)/site", stateDirectory: "\(small)/state",
                configurationPath: "\(small)/etc/site.json", webUser: me, codeOwner: me, phpFpmSockets: [],
                databaseSnapshots: false, healthCheck: HealthCheckSettings(mode: .off))
        ).configuration
        let engine = try DeliveryEngine(configuration: configuration)
        let before = TreeSnapshot("\(small)/site", includeTimes: true)
        let stateBefore = try Data(contentsOf: URL(fileURLWithPath: "\(small)/state/state.json"))
        let refused = #expect(throws: DeliveryError.self) {
            try engine.perform(
                OperationRequest(.secure, actor: Actor(name: "tester", source: "cli"), securityCopy: true))
        }
        #expect(refused?.code == .noRoom)
        #expect(
            refused?.message.contains("not enough free space in \(small)/site/releases") == true,
            "\(refused?.message ?? "")")
        #expect(refused?.notices.first?.code == "refused_no_room")
        #expect(refused?.notices.first?.values["neededBytes"] != nil, "\(refused?.message ?? "")")
        #expect(TreeSnapshot("\(small)/site", includeTimes: true).difference(from: before) == [])
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(small)/state/state.json")) == stateBefore)
    }
}
