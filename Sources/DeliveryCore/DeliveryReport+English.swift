#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension DeliveryReport {
    /// The report in English, one line each, as `deliveryctl report` prints it.
    public var englishLines: [String] {
        func time(_ date: Date?) -> String { date?.formatted(.iso8601) ?? "?" }
        var lines = [
            "Delivery \(deliveryId): \(outcome.rawValue.replacingOccurrences(of: "_", with: " "))",
            "Started:   \(time(startedAt)) by \(actor.name) (\(actor.source))\(scheduled ? ", at its scheduled time" : "")",
            "Finished:  \(time(finishedAt))",
            "Revisions: \(revisionFrom?.label ?? "?") → \(revisionTo?.label ?? "unchanged")",
        ]
        for comment in comments { lines.append("Comment:   \(comment)") }
        lines.append("Commits:   \(commitCount)")
        for commit in commits { lines.append("  \(commit.id.prefix(10)) \(commit.author): \(commit.subject)") }
        lines.append(
            "Files:     \(fileCount) (\(added.count) added, \(changed.count) changed, \(removed.count) removed)")
        for change in versionChanges {
            lines.append(
                "Version:   \(change.component.isEmpty ? "core" : change.component) \(change.before ?? "new") → \(change.after ?? "removed")"
            )
        }
        lines.append("Steps:")
        for step in steps {
            lines.append(
                "  \(time(step.startedAt)) \(step.operation.rawValue) \(step.result) in \(format1(step.durationSeconds)) s\(step.errorCode.map { " (\($0.rawValue))" } ?? "")"
            )
            for notice in step.notices { lines.append("    \(notice.english)") }
        }
        if let maintenance {
            lines.append(
                "Maintenance: \(time(maintenance.onAt)) → \(time(maintenance.offAt))\(maintenance.seconds.map { " (\(format1($0)) s)" } ?? "")"
            )
            if let other = maintenance.otherSeconds {
                lines.append(
                    "  of which Moodle's upgrade \(format1(maintenance.upgradeSeconds ?? 0)) s, database snapshot \(format1(maintenance.snapshotSeconds ?? 0)) s, the rest \(format1(other)) s"
                )
            }
        } else {
            lines.append("Maintenance: none")
        }
        if let snapshot {
            lines.append(
                "Snapshot:  \(snapshot.database), \(formatBytes(snapshot.sizeBytes)) at \(time(snapshot.takenAt)) in \(format1(snapshot.seconds)) s"
                    + (snapshot.copyDatabase.map { ", the server's copy \($0)" } ?? ", dumped")
            )
        }
        if let healthCheck {
            lines.append("Health:    \(healthCheck.passed ? "passed" : "FAILED") at \(time(healthCheck.checkedAt))")
        }
        if let rollback {
            lines.append(
                "Rollback:  at \(time(rollback.at)), serving \(rollback.served?.rawValue ?? "?") (\(rollback.revision?.label ?? "?")), database \(rollback.databaseRestored ? "restored from the snapshot" : "left as it was")"
            )
        }
        return lines
    }
}
