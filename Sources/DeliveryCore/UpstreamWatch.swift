#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One commit the upstream has beyond production.
public struct UpstreamCommit: Sendable, Codable, Equatable {
    /// The commit id (git), the revision number (svn), the commit id or first file revision (cvs).
    public var id: String
    public var author: String
    /// The first line of its message.
    public var subject: String
    public var time: Date?

    public init(id: String, author: String, subject: String, time: Date? = nil) {
        self.id = id
        self.author = author
        self.subject = subject
        self.time = time
    }
}

/// What the upstream holds beyond production, as the version control read it (no tree changed).
public struct UpstreamChanges: Sendable, Codable, Equatable {
    /// The most commits and files of each kind kept in a preview or a record.
    public static let listLimit = (commits: 200, files: 2000)

    /// The revision a delivery would bring.
    public var revision: Revision
    /// Newest first, at most `listLimit.commits`.
    public var commits: [UpstreamCommit] = []
    public var commitCount = 0
    public var added: [String] = []
    public var changed: [String] = []
    public var removed: [String] = []
    public var fileCount = 0
    /// Versions of `version.php` files going from production's to the upstream's.
    public var versionChanges: [VersionChange] = []

    public init(revision: Revision) {
        self.revision = revision
    }

    /// Keeps the lists within their limits (the counts keep the totals).
    mutating func bound() {
        commitCount = max(commitCount, commits.count)
        commits = Array(commits.prefix(Self.listLimit.commits))
        fileCount = added.count + changed.count + removed.count
        added = Array(added.sorted().prefix(Self.listLimit.files))
        changed = Array(changed.sorted().prefix(Self.listLimit.files))
        removed = Array(removed.sorted().prefix(Self.listLimit.files))
    }
}

/// What a delivery of the upstream would bring now, and the preflight checks that can run on the
/// fetched revision without applying it (docs/protocol.md, *Upstream watch*).
public struct UpstreamPreview: Sendable, Codable, Equatable {
    /// What an upgrade would do: none, plugins only, or the core (maintenance mode).
    public enum Upgrade: String, Sendable, Codable {
        case none, plugins, core
    }

    public var checkedAt: Date
    /// Production's revision.
    public var current: Revision
    /// The revision a delivery would bring.
    public var upstream: Revision
    /// True when the upstream differs from production.
    public var waiting: Bool
    public var commits: [UpstreamCommit]
    public var commitCount: Int
    public var added: [String]
    public var changed: [String]
    public var removed: [String]
    public var fileCount: Int
    public var versionChanges: [VersionChange]
    public var upgrade: Upgrade
    /// Whether Restore production will put the site in maintenance mode: true for a core upgrade,
    /// and for any upgrade when the site takes a database snapshot first; nil when Moodle decides
    /// (plugins only, no snapshot); false when no upgrade runs.
    public var maintenance: Bool?
    public var lintErrors: [LintError] = []
    public var conflictMarkers: [String: Int] = [:]
    public var componentProblems: [ComponentProblem] = []
    public var blocking = false
    public var blockers: [PreflightBlocker] = []

    /// The preview once production is at the revision it found waiting: nothing waits any more
    /// (a delivery brought it; a cancel that goes back makes it wait again).
    func seen(from production: Revision?) -> UpstreamPreview {
        guard waiting, let production, production.id == upstream.id else { return self }
        var delivered = self
        delivered.current = production
        delivered.waiting = false
        delivered.commits = []
        delivered.commitCount = 0
        (delivered.added, delivered.changed, delivered.removed, delivered.fileCount) = ([], [], [], 0)
        delivered.versionChanges = []
        delivered.upgrade = .none
        delivered.maintenance = false
        (delivered.lintErrors, delivered.conflictMarkers, delivered.componentProblems) = ([], [:], [])
        (delivered.blocking, delivered.blockers) = (false, [])
        return delivered
    }

    /// What a person reads of it.
    public var notices: [Notice] {
        waiting
            ? [
                Notice(
                    .upstreamWaiting,
                    [
                        "revision": .text(upstream.label), "commitCount": .number(Int64(commitCount)),
                        "fileCount": .number(Int64(fileCount)), "versionCount": .number(Int64(versionChanges.count)),
                    ])
            ] : [Notice(.upstreamCurrent, ["revision": .text(upstream.label)])]
    }
}

/// Computes the preview: the version control's view of the upstream, then the checks on the
/// fetched files (read through the version control as the code owner, linted from a private
/// file by PHP as the web user).
struct UpstreamWatch {
    let production: String
    let vcs: any VersionControl
    let recorder: CommandRecorder
    let php: String
    let webUser: UserIdentity
    /// A folder of root's alone, for the file PHP lints.
    let scratchDirectory: String
    /// The most PHP files linted.
    var lintLimit = 500
    /// The site takes a database snapshot before an upgrade (in maintenance mode).
    var snapshots = false

    func preview(current: Revision, target: String? = nil) throws(DeliveryError) -> UpstreamPreview {
        let changes = try changes(target: target)
        var preview = UpstreamPreview(
            checkedAt: Date(), current: current, upstream: changes.revision,
            waiting: changes.fileCount > 0 || changes.commitCount > 0, commits: changes.commits,
            commitCount: changes.commitCount, added: changes.added, changed: changes.changed, removed: changes.removed,
            fileCount: changes.fileCount, versionChanges: changes.versionChanges,
            upgrade: changes.versionChanges.contains { $0.component.isEmpty && !$0.backwards && $0.after != nil }
                ? .core : (changes.versionChanges.contains { !$0.backwards && $0.after != nil } ? .plugins : .none))
        switch preview.upgrade {
        case .core: preview.maintenance = true
        case .plugins: preview.maintenance = snapshots ? true : nil
        case .none: preview.maintenance = false
        }
        var linted = 0
        for file in (changes.added + changes.changed).sorted() {
            let wantsLint = file.hasSuffix(".php") && linted < lintLimit
            guard let text = vcs.upstreamText(file, of: production, changes: changes, recorder: recorder) else {
                continue
            }
            if let line = Preflight.firstConflictMarker(in: Array(text.utf8)) { preview.conflictMarkers[file] = line }
            if wantsLint {
                linted += 1
                if let error = try lint(file, text) { preview.lintErrors.append(error) }
            }
        }
        preview.componentProblems = requirementProblems(changes)
        var report = PreflightReport()
        report.lintErrors = preview.lintErrors
        report.conflictMarkers = preview.conflictMarkers
        report.versionChanges = preview.versionChanges
        report.inconsistentComponents = preview.componentProblems
        preview.blockers = report.blockers
        preview.blocking = !preview.blockers.isEmpty
        return preview
    }

    /// The version control's view, with the versions of the `version.php` files it changes.
    func changes(target: String? = nil) throws(DeliveryError) -> UpstreamChanges {
        var changes = try vcs.upstreamChanges(of: production, target: target, recorder: recorder)
        for file in changes.added + changes.changed + changes.removed
        where file == "version.php" || file.hasSuffix("/version.php") {
            let component = file == "version.php" ? "" : String(file.dropLast("/version.php".count))
            let before = Preflight.declaredVersion("\(production)/\(file)")
            let after =
                changes.removed.contains(file)
                ? nil
                : vcs.upstreamText(file, of: production, changes: changes, recorder: recorder)
                    .flatMap { Preflight.declaredVersion(in: $0) }
            guard before != after else { continue }
            var backwards = false
            if let before, let after, let old = Double(before), let new = Double(after) { backwards = new < old }
            changes.versionChanges.append(
                VersionChange(component: component, before: before, after: after, backwards: backwards))
        }
        changes.bound()
        return changes
    }

    /// Plugins whose new `requires` is newer than the core the upstream brings.
    private func requirementProblems(_ changes: UpstreamChanges) -> [ComponentProblem] {
        let newCore = changes.versionChanges.first { $0.component.isEmpty }?.after
        guard let core = (newCore ?? Preflight.declaredVersion("\(production)/version.php")).flatMap(Double.init)
        else { return [] }
        return changes.versionChanges.filter { !$0.component.isEmpty && $0.after != nil }.compactMap { change in
            let text = vcs.upstreamText(
                "\(change.component)/version.php", of: production, changes: changes, recorder: recorder)
            return Preflight.newerCoreNeeded(
                change.component, requires: text.flatMap { Preflight.requiredCore(in: $0) }, core: core)
        }
    }

    /// `php -l` on the fetched text, from a file of root's that PHP reads as its standard input.
    private func lint(_ file: String, _ text: String) throws(DeliveryError) -> LintError? {
        let input = "\(scratchDirectory)/upstream-lint.php"
        do {
            try System.writeFileAtomically(input, Array(text.utf8), mode: 0o600)
        } catch {
            throw DeliveryError(.io, "cannot write the file to lint: \(error)")
        }
        defer { try? System.unlink(input) }
        var command = Command(
            php, ["-n", "-d", "display_errors=stdout", "-d", "error_reporting=-1", "-l"], user: webUser,
            workingDirectory: "/", timeoutSeconds: 60, outputLimit: 16384)
        command.standardInputFile = input
        let result = try ChildProcess.run(command)
        if result.succeeded { return nil }
        return Preflight.lintError(
            file: file, output: result.combinedOutput.replacing("Standard input code", with: file))
    }
}
