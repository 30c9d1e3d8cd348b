import ArgumentParser
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The commands that change nothing: status, plan (the preflight), log, check.
extension DeliveryCtl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the delivery state, the served tree and the copies.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let status = try engine.status()
                if options.json {
                    printJSON(status)
                    return
                }
                var lines = [
                    "State:     \(status.phase.rawValue)",
                    "Serving:   \(status.served?.rawValue ?? "unknown (current points elsewhere)")",
                    "Site:      \(status.wwwroot) (\(status.siteRoot), \(status.vcs.rawValue)\(status.publicLayout ? ", public/ layout" : ""))",
                    "Production: \(status.productionRevision?.label ?? "not read yet")",
                ]
                for tree in [TreeName.backup, .security] {
                    let copy = status.copies[tree]
                    let text: String
                    if let copy, copy.complete {
                        text =
                            "\(copy.revision?.label ?? "?") copied \(copy.copiedAt.map { $0.formatted(.iso8601) } ?? "?")"
                            + (copy.refreshedPaths.isEmpty
                                ? "" : ", refreshed: \(copy.refreshedPaths.joined(separator: ", "))")
                    } else {
                        text = copy?.exists == true ? "incomplete" : "none"
                    }
                    lines.append("\(tree == .backup ? "Backup:   " : "Security: ") \(text)")
                }
                if let running = status.running {
                    lines.append(
                        "Running:   \(running.operation.rawValue) (step \(running.step.rawValue)) by \(running.actor.name) since \(running.startedAt.formatted(.iso8601))"
                    )
                }
                if let interrupted = status.interrupted {
                    lines.append(
                        "Interrupted: \(interrupted.operation.rawValue) by \(interrupted.actor.name) at \(interrupted.startedAt.formatted(.iso8601))"
                    )
                }
                if status.maintenanceEnabled { lines.append("Maintenance mode is ON (turned on by the delivery).") }
                if let snapshot = status.snapshot {
                    lines.append(
                        "Snapshot:  \(snapshot.database) at \(snapshot.takenAt.formatted(.iso8601)), \(snapshot.sizeBytes) bytes, \(snapshot.tableCount) tables, "
                            + (snapshot.copyDatabase.map { copy in
                                "copied by the server in \(Int((snapshot.seconds * 1000).rounded())) ms (database \(copy)"
                                    + (snapshot.replacedDatabase.map {
                                        ", swapped in by a rollback; the database it replaced is \($0))"
                                    } ?? ")")
                            } ?? "dumped in \(Int((snapshot.seconds * 1000).rounded())) ms (\(snapshot.file))")
                    )
                }
                if let health = status.lastHealthCheck {
                    lines.append(
                        "Health:    \(health.passed ? "passed" : "FAILED") at \(health.checkedAt.formatted(.iso8601))\(health.failures.isEmpty ? "" : ": " + health.failures.joined(separator: "; "))"
                    )
                }
                lines.append(
                    "Rollback:  \(status.rollback.kind.rawValue)\(status.rollback.needsConfirmation ? " (needs --restore-database)" : ""): \(status.rollback.explanation)"
                )
                lines.append(
                    "Component cache: \(status.componentCacheFile.map { "one per tree (\($0))" } ?? "Moodle's own, rebuilt after each switch (see init --component-cache)")"
                )
                if let upstream = status.upstream {
                    lines.append(
                        "Upstream:  \(upstream.notices.english) (checked \(upstream.checkedAt.formatted(.iso8601))\(upstream.blocking ? "; its preflight would block" : ""))"
                    )
                }
                if let rehearsal = status.rehearsal {
                    let currency =
                        status.rehearsalCurrent == false ? "; a newer revision waits: rehearse again to deliver it" : ""
                    lines.append(
                        "Rehearsal: \(rehearsal.passed ? "passed" : "FAILED") for \(rehearsal.revision.label) at \(rehearsal.finishedAt.formatted(.iso8601))\(rehearsal.upgradeSeconds.map { ", upgrade \(Double(Int(($0 * 10).rounded())) / 10) s" } ?? "")\(currency)"
                    )
                }
                if let schedule = status.schedule {
                    lines.append(
                        "Scheduled: Run all of \(schedule.revision.label) at \(schedule.at.formatted(.iso8601)), set by \(schedule.actor.name)\(schedule.onlyIfPreflightPasses ? ", only if the preflight passes then" : "")"
                    )
                }
                lines.append("Allowed:   \(status.allowed.map(\.rawValue).joined(separator: ", "))")
                if let nodes = status.farmNodes, !nodes.isEmpty {
                    lines.append(
                        "Web farm:  this node coordinates \(nodes.joined(separator: ", ")) (deliveryctl farm status: where each stands)"
                    )
                }
                FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Check production before it is served again: files changed, PHP syntax, conflict markers, versions.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            var blocking = false
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let report = try engine.plan()
                if options.json {
                    printJSON(report.withVerdict)
                } else {
                    var lines = [
                        "Compared with the backup copy: \(report.added.count) added, \(report.changed.count) changed, \(report.removed.count) removed."
                    ]
                    for change in report.versionChanges {
                        lines.append(
                            "Version of \(change.component.isEmpty ? "core" : change.component): \(change.before ?? "none") → \(change.after ?? "none")\(change.backwards ? "  BACKWARDS: Moodle will refuse it" : "")"
                        )
                    }
                    for error in report.lintErrors {
                        lines.append(
                            "Syntax error: \(error.file)\(error.line.map { " line \($0)" } ?? ""): \(error.message)")
                    }
                    for (file, line) in report.conflictMarkers.sorted(by: { $0.key < $1.key }) {
                        lines.append("Conflict marker: \(file) line \(line)")
                    }
                    for modification in report.localModifications {
                        lines.append("Local modification: \(modification)")
                    }
                    for file in report.missingFiles.prefix(20) { lines.append("Missing (tracked): \(file)") }
                    for file in report.untrackedFiles.prefix(20) { lines.append("Untracked: \(file)") }
                    for problem in report.inconsistentComponents {
                        lines.append(
                            "\(problem.blocking ? "Inconsistent" : "Check"): \(problem.component.isEmpty ? "core" : problem.component): \(problem.reason)"
                        )
                    }
                    if let upgrade = report.upgrade {
                        lines.append(
                            upgrade.pending
                                ? "Upgrade: pending\(upgrade.maintenanceRequired ? ", Moodle wants maintenance mode" : "")\(upgrade.snapshot ? "; a database snapshot is taken first, in maintenance mode" : "")."
                                : "Upgrade: none pending.")
                    }
                    if report.maintenanceModeOn == true { lines.append("Maintenance mode is on now.") }
                    if let space = report.snapshotSpace, let copied = space.serverCopyOf {
                        lines.append(
                            "Snapshot: the server's own copy of \(copied) (Moodle's tables take \(space.databaseBytes / 1_000_000) MB); a rollback swaps it in by renaming."
                        )
                    } else if let space = report.snapshotSpace {
                        lines.append(
                            "Snapshot space: \(space.availableBytes / 1_000_000) MB free in \(space.directory); Moodle's tables take \(space.databaseBytes / 1_000_000) MB\(space.enough ? "" : " — NOT ENOUGH")."
                        )
                    }
                    if let php = report.phpVersion {
                        lines.append(
                            "PHP: \(php.current)\(php.required.map { ", the new code needs \($0)+" } ?? "")\(php.satisfied ? "" : " — TOO OLD")."
                        )
                    }
                    for warning in report.warnings { lines.append("Warning: \(warning)") }
                    lines.append(
                        report.blocking
                            ? "Restore would be refused: \(report.blockingSummary)." : "Nothing blocks the restore.")
                    FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
                }
                blocking = report.blocking
            }
            if blocking { throw ExitCode(3) }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the audit log, newest first.")
        @Option(name: .long, help: "How many records.")
        var limit = 20
        @OptionGroup var options: GlobalOptions

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let records = try engine.history(limit: limit)
                if options.json {
                    printJSON(records)
                    return
                }
                for record in records {
                    var line =
                        "\(record.time.formatted(.iso8601))  \(record.actor.name) (\(record.actor.source))  \(record.operation.rawValue)  \(record.result)"
                    if let path = record.securePath ?? record.updatePath { line += "  path=\(path)" }
                    if let before = record.revisionBefore, let after = record.revisionAfter, before != after {
                        line += "  \(before.label) → \(after.label)"
                    }
                    if let comment = record.comment { line += "  \"\(comment)\"" }
                    line += "  \(format(record.durationSeconds)) s\n    \(record.message)\n"
                    FileOutput.standardOutput(line)
                }
            }
        }

        func format(_ value: Double) -> String {
            let tenths = Int((value * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the server around the site: room in PHP-FPM's OPcache for its trees.",
            discussion: """
                Asks each PHP-FPM pool of the site (through its socket, as the web user) how many
                scripts its OPcache holds, and sets that against production's PHP files in the five
                trees a delivered site keeps. Prints what to change; exit 0 when nothing needs it, 3
                when something does.
                """)
        @OptionGroup var options: GlobalOptions

        func run() throws {
            var needsChange = false
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                var room = try engine.opcacheRoom()
                // Pools under one PHP-FPM master share its OPcache: the other sites count too.
                let others = options.otherSitesRoom()
                room.reports = room.reports.map { $0.sharing(with: others) }
                needsChange = room.reports.contains { !$0.warnings.isEmpty }
                if options.json {
                    printJSON(room.reports)
                    return
                }
                var lines: [String] = []
                if room.reports.isEmpty && room.notRunning.isEmpty {
                    lines.append(
                        "No PHP-FPM pool is configured (phpFpmSockets): with mod_php, give Apache's PHP opcache.max_accelerated_files of at least 5 times the site's PHP files."
                    )
                }
                for socket in room.notRunning { lines.append("PHP-FPM \(socket): not running, not checked") }
                for report in room.reports {
                    lines.append(report.summary)
                    lines += report.warnings.map { "  Warning: \($0)" }
                }
                if !needsChange && !room.reports.isEmpty {
                    lines.append("OPcache has room for every tree of this site.")
                }
                FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
            }
            if needsChange { throw ExitCode(3) }
        }
    }
}

extension GlobalOptions {
    /// The OPcache room of every other site installed on this server (those that answer), for the
    /// sites whose pools share one PHP-FPM master.
    /// (A site named twice, by another path, shares its own sockets: `OPcacheRoom.sharing` skips them.)
    func otherSitesRoom() -> [(site: String, room: OPcacheRoom)] {
        let this = try? configurationPath()
        var rooms: [(site: String, room: OPcacheRoom)] = []
        for site in SiteDirectory.sites(base: base) where site.path != this {
            guard let configuration = try? SiteConfiguration.load(from: site.path),
                let other = try? DeliveryEngine(configuration: configuration),
                let reports = try? other.opcacheRoom().reports
            else { continue }
            rooms += reports.map { (site.name, $0) }
        }
        return rooms
    }
}
