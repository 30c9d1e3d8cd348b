import ArgumentParser
import DeliveryCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The upstream watch, the report of a delivery and the scheduled Run all.
extension DeliveryCtl {
    struct CheckUpstream: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-upstream",
            abstract: "Look at the upstream (read-only) and say what a delivery would bring now.",
            discussion:
                "For cron: the answer is kept for the status and the Moodle screen. Exit 0 when nothing is waiting, 3 when a delivery is waiting, 4 when its preflight would block."
        )
        @OptionGroup var options: GlobalOptions
        @Flag(name: .long, help: "Print the commands as they run.") var verbose = false

        func run() throws {
            var waiting: UpstreamPreview?
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let preview = try engine.checkUpstream(onLine: { line in
                    if verbose { FileOutput.standardOutput(line + "\n") }
                })
                waiting = preview
                if options.json {
                    printJSON(preview)
                    return
                }
                var lines = [preview.notices.english]
                for commit in preview.commits.prefix(20) {
                    lines.append("  \(commit.id.prefix(10)) \(commit.author): \(commit.subject)")
                }
                if preview.commits.count > 20 { lines.append("  … \(preview.commitCount - 20) more") }
                if preview.waiting {
                    lines.append(
                        "Files: \(preview.added.count) added, \(preview.changed.count) changed, \(preview.removed.count) removed"
                    )
                }
                for change in preview.versionChanges {
                    lines.append(
                        "Version: \(change.component.isEmpty ? "core" : change.component) \(change.before ?? "new") → \(change.after ?? "removed")\(change.backwards ? " (BACKWARDS)" : "")"
                    )
                }
                if preview.waiting {
                    lines.append(
                        "Upgrade: \(preview.upgrade == .none ? "none" : preview.upgrade == .core ? "core (maintenance mode)" : "plugins")"
                    )
                }
                for error in preview.lintErrors { lines.append("PHP: \(error.file): \(error.message)") }
                for (file, line) in preview.conflictMarkers.sorted(by: { $0.key < $1.key }) {
                    lines.append("Conflict marker: \(file) line \(line)")
                }
                for problem in preview.componentProblems {
                    lines.append("Component \(problem.component): \(problem.reason)")
                }
                if preview.blocking { lines.append("The preflight would BLOCK Restore production.") }
                FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
            }
            if let waiting, waiting.waiting { throw ExitCode(waiting.blocking ? 4 : 3) }
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the report of one delivery (its id is in 'log' and the status).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The delivery's id.") var deliveryId: String

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let report = try engine.report(deliveryId: deliveryId)
                if options.json {
                    printJSON(report)
                } else {
                    FileOutput.standardOutput(report.englishLines.joined(separator: "\n") + "\n")
                }
            }
        }
    }

    struct Schedule: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, set or cancel the scheduled Run all of the waiting revision (deliveryd runs it).",
            discussion:
                "Set: --at '2026-12-05T02:00:00+01:00' --revision ID (the upstream revision check-upstream found). Cancel: --cancel."
        )
        @OptionGroup var options: GlobalOptions
        @Option(name: .long, help: "When, ISO 8601 with a zone.") var at: String?
        @Option(name: .long, help: "The upstream revision to deliver (check-upstream's).") var revision: String?
        @Flag(name: .long, help: "Run even if the preflight blocks at that time.") var evenIfPreflightBlocks = false
        @Flag(name: .long, help: "Also refresh the security copy.") var securityCopy = false
        @Option(name: .long, help: "A comment recorded with the delivery.") var comment: String?
        @Flag(name: .long, help: "Cancel the scheduled Run all.") var cancel = false

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                var schedule = engine.schedule()
                if cancel {
                    schedule = try engine.cancelSchedule(actor: options.actor)
                } else if at != nil || revision != nil {
                    guard let at, let revision, let when = try? Date(at, strategy: .iso8601) else {
                        throw DeliveryError(.badRequest, "give both --at (ISO 8601 with a zone) and --revision")
                    }
                    schedule = try engine.setSchedule(
                        try ScheduleRequest(
                            at: when, revision: revision, onlyIfPreflightPasses: !evenIfPreflightBlocks,
                            securityCopy: securityCopy, comment: comment, actor: options.actor))
                }
                if options.json {
                    printJSON(schedule)
                    return
                }
                guard let schedule else {
                    FileOutput.standardOutput("No delivery is scheduled.\n")
                    return
                }
                FileOutput.standardOutput(
                    "\(cancel ? "Cancelled: " : "")Run all of \(schedule.revision.label) at \(schedule.at.formatted(.iso8601)), set by \(schedule.actor.name) at \(schedule.setAt.formatted(.iso8601))\(schedule.onlyIfPreflightPasses ? ", only if the preflight passes then" : "")\n"
                )
            }
        }
    }
}
