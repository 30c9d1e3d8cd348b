import DeliveryCore
import Foundation
import Testing

/// The generation of the backup copy being written (the one `releases/backup` does not point at).
func inactiveGeneration(_ site: FixtureSite) -> String {
    let releases = "\(site.siteRoot)/releases"
    let active = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(releases)/backup")) ?? ""
    let other = ((try? FileManager.default.contentsOfDirectory(atPath: releases)) ?? [])
        .first { $0.hasPrefix(".backup.") && $0 != active }
    return "\(releases)/\(other ?? ".none")"
}

/// Runs the real deliveryctl binary on a fixture site.
func deliveryctl(_ site: FixtureSite, _ arguments: [String], killAt: String? = nil) throws -> (
    status: Int32, output: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: deliveryctlPath)
    process.arguments = arguments.contains("--config") ? arguments : arguments + ["--config", site.configurationPath]
    var environment = ProcessInfo.processInfo.environment
    if let killAt { environment["DELIVERYCTL_TEST_KILL_AT"] = killAt }
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Adds 15,000 small untracked files to production, so that a copy lasts long enough to be caught.
func addBulkFiles(to site: FixtureSite) throws {
    for i in 0..<150 {
        let folder = "\(site.production)/local/bulk\(i)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for j in 0..<100 {
            try "<?php // \(i) \(j)\n".write(toFile: "\(folder)/f\(j).php", atomically: false, encoding: .utf8)
        }
    }
}

@Suite("kill -9 at any instant leaves a complete served tree and a recoverable state", .serialized)
struct CrashTests {
    @Test("kill -9 in the middle of a copy")
    func killMidCopy() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        let backupBefore = TreeSnapshot(site.backup, includeTimes: true)
        try addBulkFiles(to: site)
        let production = TreeSnapshot(site.production)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: deliveryctlPath)
        process.arguments = ["secure", "--config", site.configurationPath]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var caught = false
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && process.isRunning {
            let bulk =
                (try? FileManager.default.contentsOfDirectory(atPath: "\(inactiveGeneration(site))/local"))?
                .filter { $0.hasPrefix("bulk") }.count ?? 0
            if bulk > 3 {
                kill(process.processIdentifier, SIGKILL)
                caught = true
                break
            }
            usleep(200)
        }
        process.waitUntilExit()
        #expect(caught, "the copy finished before it could be killed")
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(try site.engine.status().served == .production)
        #expect(site.served == production, "the served tree is complete")
        #expect(TreeSnapshot(site.backup, includeTimes: true) == backupBefore, "the previous copy is intact")

        let status = try site.engine.status()
        #expect(status.interrupted?.operation == .secure)
        #expect(status.allowed == [.recover, .rollback])
        #expect(site.refusal(.secure)?.code == .staleLock)
        let (code, output) = try deliveryctl(site, ["secure"])
        #expect(code == 2)
        #expect(output.contains("was interrupted"))

        try site.perform(.recover)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(site.siteRoot)/releases").filter {
            $0.hasPrefix(".staging") || $0.hasPrefix(".copy-link")
        }
        #expect(leftovers.isEmpty)
        try site.perform(.secure)
        #expect(TreeSnapshot(site.backup) == production)
    }

    @Test(
        "kill -9 at each step boundary of run all, then recover and finish",
        arguments: [
            "finished:secure", "started:switch", "finished:switch", "started:update", "line:$ /usr/bin/git",
            "finished:update",
            "started:restore", "line:The site now serves the production", "finished:restore",
        ])
    func killAtBoundary(point: String) throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        let result = try deliveryctl(site, ["run-all"], killAt: point)
        #expect(result.status != 0, "killed at \(point)")
        // Whatever the instant, the served tree is one of the two complete revisions.
        let served = site.served
        let revision2 = TreeSnapshot("\(site.root)/author")
        #expect(served == site.revision1 || served == revision2, "served tree incomplete after kill at \(point)")
        // The next command reports the interruption instead of running.
        let status = try site.engine.status()
        #expect(status.interrupted != nil)
        #expect(site.refusal(.restore)?.code == .staleLock)
        try site.perform(.recover)
        let after = try site.engine.status()
        #expect(after.interrupted?.operation == .runAll)
        // The site can always be brought to a finished state: restore if allowed, else cancel, else it is done.
        if after.allowed.contains(.restore) {
            try site.perform(.restore)
        } else if after.allowed.contains(.cancel) {
            try site.perform(.cancel)
        }
        let final = try site.engine.status()
        #expect(final.phase == .idle, "\(point): \(final.phase)")
        #expect(final.served == .production)
        #expect(site.served == site.revision1 || site.served == revision2)
    }

    /// Found by the exploration walk (Tests/Explore), shortest sequence `run-all; rollback
    /// --restore-database, killed after its switch`: the rollback took no running entry in the state file, so
    /// nothing said it had been interrupted.
    @Test("explore: an emergency rollback killed after its switch is seen as interrupted; recover, then rollback again")
    func killedRollback() throws {
        let site = try FixtureSite()
        try site.publishRevision2()
        try site.perform(.runAll)
        let killed = try deliveryctl(site, ["rollback"], killAt: "line:The site now serves")
        #expect(killed.status != 0)
        let status = try site.engine.status()
        #expect(status.served == .backup)
        #expect(status.interrupted?.operation == .rollback, "\(String(describing: status.interrupted))")
        #expect(status.allowed.contains(.recover) && status.allowed.contains(.rollback), "\(status.allowed)")
        let recovered = try site.perform(.recover)
        #expect(recovered.message.contains("Run the emergency rollback again"), "\(recovered.message)")
        #expect(try site.engine.status().phase == .rolledBack)
        let again = try site.perform(.rollback)
        #expect(again.served == .backup)
        #expect(try site.engine.status().running == nil)
    }

    /// Issue 15: kill -9 during `upgrade.php` left it running; `recover` said nothing of it, and a
    /// new restore failed on Moodle's upgrade lock.
    @Test("recover waits for Moodle's upgrade left running by a killed restore, and says so")
    func orphanedUpgrade() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        try "3".write(toFile: "\(site.dataroot)/fixture-slow-upgrade", atomically: false, encoding: .utf8)
        let killed = try deliveryctl(site, ["restore"], killAt: "text:Fixture upgrade: sleeping")
        #expect(killed.status != 0, "\(killed.output)")
        let upgrade = try sh("/usr/bin/pgrep", ["-f", "\(site.siteRoot)/.*upgrade.php --non-interactive"])
        #expect(upgrade.succeeded, "the upgrade still runs after the kill")
        let recovered = try deliveryctl(site, ["recover"])
        #expect(recovered.status == 0, "\(recovered.output)")
        #expect(recovered.output.contains("still runs (process group"), "\(recovered.output)")
        #expect(recovered.output.contains("Moodle's upgrade left running by it ended after"), "\(recovered.output)")
        #expect(recovered.output.contains("Maintenance mode is"), "\(recovered.output)")
        #expect(try !sh("/usr/bin/pgrep", ["-f", "\(site.siteRoot)/.*upgrade.php --non-interactive"]).succeeded)
        let database = try String(contentsOfFile: "\(site.dataroot)/fixture-db-version", encoding: .utf8)
        #expect(database.hasPrefix("2024100800"), "the upgrade finished: \(database)")
        try FileManager.default.removeItem(atPath: "\(site.dataroot)/fixture-slow-upgrade")
        let restored = try site.perform(.restore)
        #expect(restored.served == .production)
    }
}

@Suite("Emergency rollback takes over a running operation", .serialized)
struct PreemptionTests {
    @Test("rollback while a copy runs: the site switches at once, the copy stops and leaves nothing behind")
    func rollbackPreemptsCopy() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        let backupBefore = TreeSnapshot(site.backup, includeTimes: true)
        try addBulkFiles(to: site)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: deliveryctlPath)
        process.arguments = ["secure", "--config", site.configurationPath]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, process.isRunning {
            let bulk =
                (try? FileManager.default.contentsOfDirectory(atPath: "\(inactiveGeneration(site))/local"))?
                .filter { $0.hasPrefix("bulk") }.count ?? 0
            if bulk > 3 { break }
            usleep(200)
        }
        #expect(process.isRunning, "the copy finished too early for the test")
        let outcome = try site.perform(.rollback)
        #expect(outcome.served == .backup)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1, "\(output)")
        #expect(output.contains("stopped"), "\(output)")
        #expect(TreeSnapshot(site.backup, includeTimes: true) == backupBefore)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(site.siteRoot)/releases").filter {
            $0.hasPrefix(".staging") || $0.hasPrefix(".copy-link")
        }
        #expect(leftovers.isEmpty)
        let status = try site.engine.status()
        #expect(status.running == nil && status.interrupted == nil)
        #expect(status.phase == .rolledBack)
        #expect(status.served == .backup)
    }

    @Test("the CLI: one line and exit 2 on a refusal, JSON for machines")
    func commandLine() throws {
        let site = try FixtureSite()
        let refused = try deliveryctl(site, ["switch"])
        #expect(refused.status == 2)
        #expect(refused.output.hasPrefix("deliveryctl: Switch refused"))
        #expect(refused.output.split(separator: "\n").count == 1)
        let json = try deliveryctl(site, ["switch", "--json"])
        #expect(json.status == 2)
        #expect(json.output.contains("\"code\" : \"wrong_state\""))
        #expect(json.output.contains("\"refused_secure_first\""))
        let secured = try deliveryctl(site, ["secure", "--json"])
        #expect(secured.status == 0)
        let document = try JSONSerialization.jsonObject(with: Data(secured.output.utf8)) as? [String: Any]
        #expect(document?["ok"] as? Bool == true)
        let status = try deliveryctl(site, ["status", "--json"])
        let statusDocument = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
        #expect(statusDocument?["phase"] as? String == "secured")
        #expect((statusDocument?["copies"] as? [String: Any])?["backup"] != nil)
        let log = try deliveryctl(site, ["log"])
        #expect(log.output.contains("secure  succeeded"))
        #expect(log.output.contains("switch  refused"))
        let badConfig = try deliveryctl(site, ["status", "--config", "/nonexistent.json"])
        #expect(badConfig.status == 2)
        #expect(badConfig.output.contains("cannot read the configuration"))
    }
}

@Suite("Files the update writes")
struct UmaskTests {
    @Test("an update run under umask 027 (systemd's usual UMask) still writes files the web server can read")
    func readableUpdate() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        let run = try sh(
            "/bin/sh", ["-c", "umask 027; exec \"$0\" update --config \"$1\"", deliveryctlPath, site.configurationPath])
        #expect(run.succeeded, "\(run.combinedOutput)")
        let attributes = try FileManager.default.attributesOfItem(atPath: "\(site.production)/local/foo/newfile.php")
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        #expect(mode & 0o044 == 0o044, "mode \(String(mode, radix: 8))")
    }
}

@Suite("A copy reaches the disk before anything serves it")
struct CopyFlushTests {
    @Test("secure records the copy as not flushed yet; serving it flushes it; a restart before that makes it missing")
    func copyFlushedBeforeServing() throws {
        let site = try FixtureSite()
        let boot = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let statePath = "\(site.root)/state/state.json"
        try site.perform(.secure)
        var state = try String(contentsOfFile: statePath, encoding: .utf8)
        #expect(state.contains("unflushedBoot") && state.contains(boot), "the copy waits for its flush")
        // The machine stopped before the copy was on disk: the state says another boot.
        try state.replacingOccurrences(of: boot, with: "00000000-0000-4000-8000-000000000000")
            .write(toFile: statePath, atomically: true, encoding: .utf8)
        chmod(statePath, 0o640)
        let before = site.diskSnapshot
        let refused = site.refusal(.switchToDelivery)
        #expect(refused?.code == .wrongState || refused?.code == .copyMissing, "\(String(describing: refused))")
        #expect(site.diskSnapshot == before, "the refusal changed nothing")
        let emergency = site.refusal(.rollback)
        #expect(emergency?.code == .copyMissing, "\(String(describing: emergency))")
        // Securing again copies in full (nothing is shared with the copy that may be lost)…
        let outcome = try site.perform(.secure)
        #expect(outcome.message.contains("0 shared"), "\(outcome.message)")
        state = try String(contentsOfFile: statePath, encoding: .utf8)
        #expect(state.contains(boot))
        // …and serving it flushes it first.
        try site.perform(.switchToDelivery)
        state = try String(contentsOfFile: statePath, encoding: .utf8)
        #expect(!state.contains("unflushedBoot"), "flushed before it was served")
        #expect(site.served.difference(from: site.revision1) == [])
    }
}
