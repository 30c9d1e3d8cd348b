/// One thing that stops the restore, as a code and its values: the helper decides what blocks,
/// and says it in a form each client words in its own language (docs/protocol.md).
public struct PreflightBlocker: Sendable, Codable, Equatable {
    /// `lint`, `conflicts`, `backwards`, `missing`, `inconsistent`, `php` or `space`.
    public var code: String
    /// How many files (`lint`, `conflicts`, `missing`).
    public var count: Int?
    /// The component (`backwards`, `inconsistent`; empty for core).
    public var component: String?
    /// The versions before and after (`backwards`).
    public var before: String?
    public var after: String?
    /// What is inconsistent (`inconsistent`), in English and as a notice.
    public var detail: String?
    public var notice: Notice?
    /// The site's PHP and the new code's minimum (`php`).
    public var current: String?
    public var required: String?
    /// The snapshot folder, its free bytes and the database's size (`space`).
    public var directory: String?
    public var availableBytes: Int64?
    public var databaseBytes: Int64?

    init(_ code: String) { self.code = code }
}

extension PreflightReport {
    /// What stops the restore: the one place where that rule is written.
    public var blockers: [PreflightBlocker] {
        var blockers: [PreflightBlocker] = []
        func counted(_ code: String, _ count: Int) {
            guard count > 0 else { return }
            var blocker = PreflightBlocker(code)
            blocker.count = count
            blockers.append(blocker)
        }
        counted("lint", lintErrors.count)
        counted("conflicts", conflictMarkers.count)
        for change in versionChanges where change.backwards {
            var blocker = PreflightBlocker("backwards")
            blocker.component = change.component
            blocker.before = change.before
            blocker.after = change.after
            blockers.append(blocker)
        }
        counted("missing", missingFiles.count)
        for problem in inconsistentComponents where problem.blocking {
            var blocker = PreflightBlocker("inconsistent")
            blocker.component = problem.component
            blocker.detail = problem.reason
            blocker.notice = problem.notice
            blockers.append(blocker)
        }
        if let php = phpVersion, !php.satisfied {
            var blocker = PreflightBlocker("php")
            blocker.current = php.current
            blocker.required = php.required
            blockers.append(blocker)
        }
        if let space = snapshotSpace, !space.enough {
            var blocker = PreflightBlocker("space")
            blocker.directory = space.directory
            blocker.availableBytes = space.availableBytes
            blocker.databaseBytes = space.databaseBytes
            blockers.append(blocker)
        }
        return blockers
    }

    /// True when something must stop the restore.
    public var blocking: Bool { !blockers.isEmpty }

    /// The report as the helper sends it: its findings, `blocking` and the `blockers`.
    public var withVerdict: PreflightAnswer { PreflightAnswer(report: self) }
}

/// A preflight report with the helper's verdict, for the wire and `deliveryctl plan --json`.
public struct PreflightAnswer: Encodable, Sendable {
    public let report: PreflightReport

    private enum VerdictKeys: String, CodingKey { case blocking, blockers }

    public func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: VerdictKeys.self)
        try container.encode(report.blocking, forKey: .blocking)
        try container.encode(report.blockers, forKey: .blockers)
    }
}
