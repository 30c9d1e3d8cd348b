#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The upstream watch on git: the branch (or the pin) is fetched into `refs/delivery/upstream`, a
/// ref of the helper's own; the working tree, the index and the branches are left alone.
extension GitRepository {
    static let watchRef = "refs/delivery/upstream"

    func upstreamChanges(of tree: String, target: String?, recorder: CommandRecorder) throws(DeliveryError)
        -> UpstreamChanges
    {
        let latest: String
        if let pin = context.upstream.pin, !pin.isEmpty {
            latest = try fetchTarget(tree, recorder)
        } else {
            let branch = context.upstream.branch ?? "main"
            let fetch = try git(
                [
                    "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", remote,
                    "+refs/heads/\(branch):\(Self.watchRef)",
                ], tree,
                recorder, echo: false)
            guard fetch.succeeded else { throw failure("git", "fetch", fetch) }
            latest = try commitId(Self.watchRef, tree, recorder)
        }
        let commit =
            try target.map { (target: String) throws(DeliveryError) in try commitId(target, tree, recorder) } ?? latest
        if target != nil {
            // A delivery only goes forward: production must be an ancestor of the revision asked.
            let ancestor = try git(["merge-base", "--is-ancestor", "HEAD", commit], tree, recorder, echo: false)
            guard ancestor.succeeded else {
                throw DeliveryError(
                    .vcsFailed, "git: production is not behind \(commit.prefix(10)); nothing to deliver there")
            }
        }
        let branch = context.upstream.pin.flatMap { $0.isEmpty ? nil : $0 } ?? context.upstream.branch ?? "main"
        var changes = UpstreamChanges(revision: Revision(id: commit, label: "\(branch) @ \(commit.prefix(10))"))
        let count = try git(["rev-list", "--count", "HEAD..\(commit)"], tree, recorder, echo: false)
        guard count.succeeded else { throw failure("git", "rev-list", count) }
        changes.commitCount = Int(count.standardOutput.trimmingWhitespace()) ?? 0
        let log = try git(
            [
                "log", "--no-color", "-n", String(UpstreamChanges.listLimit.commits),
                "--format=%H%x1f%an%x1f%at%x1f%s", "HEAD..\(commit)",
            ], tree, recorder, echo: false)
        guard log.succeeded else { throw failure("git", "log", log) }
        for line in log.standardOutput.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else { continue }
            changes.commits.append(
                UpstreamCommit(
                    id: fields[0], author: fields[1], subject: fields[3],
                    time: Double(fields[2]).map { Date(timeIntervalSince1970: $0) }))
        }
        let diff = try git(
            ["diff", "--name-status", "--no-renames", "-z", "HEAD", commit], tree, recorder, echo: false)
        guard diff.succeeded else { throw failure("git", "diff", diff) }
        let fields = diff.standardOutput.split(separator: "\0").map(String.init)
        var index = 0
        while index + 1 < fields.count {
            let (status, path) = (fields[index], fields[index + 1])
            index += 2
            switch status.first {
            case "A": changes.added.append(path)
            case "D": changes.removed.append(path)
            default: changes.changed.append(path)
            }
        }
        return changes
    }

    func upstreamText(_ path: String, of tree: String, changes: UpstreamChanges, recorder: CommandRecorder) -> String? {
        context.fileText("git", ["show", "\(changes.revision.id):\(path)"], in: tree, recorder: recorder)
    }

    /// A revision the upstream has, as a full commit id; refused when git does not know it.
    func commitId(_ revision: String, _ tree: String, _ recorder: CommandRecorder) throws(DeliveryError) -> String {
        guard revision.utf8.allSatisfy({ $0 < 128 && $0 > 32 }), !revision.hasPrefix("-") else {
            throw DeliveryError(.badRequest, "git: '\(revision)' is not a revision")
        }
        let resolved = try git(
            ["rev-parse", "--verify", "--quiet", "\(revision)^{commit}"], tree, recorder, echo: false)
        guard resolved.succeeded else {
            throw DeliveryError(.vcsFailed, "git: the upstream has no revision '\(revision)'")
        }
        return resolved.standardOutput.trimmingWhitespace()
    }
}
