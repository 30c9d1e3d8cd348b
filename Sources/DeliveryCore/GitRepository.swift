#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Production as a git working copy: fast-forwards to the upstream branch (or checks out a pin).
struct GitRepository: VersionControl {
    let context: VersionControlContext

    func git(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
        throws(DeliveryError) -> CommandResult
    {
        try recorder.run(context.command("git", ["-c", "core.quotepath=off"] + arguments, in: tree), echo: echo)
    }

    var remote: String { context.upstream.remote ?? "origin" }

    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision {
        let head = try git(["rev-parse", "--verify", "HEAD"], tree, recorder, echo: false)
        guard head.succeeded else { throw failure("git", "rev-parse", head) }
        let id = head.standardOutput.trimmingWhitespace()
        let branchResult = try git(["symbolic-ref", "--quiet", "--short", "HEAD"], tree, recorder, echo: false)
        let branch = branchResult.succeeded ? branchResult.standardOutput.trimmingWhitespace() : nil
        return Revision(id: id, label: "\(branch ?? "detached") @ \(id.prefix(10))", branch: branch)
    }

    /// Tracked files changed locally: each `git status --porcelain` line and its path.
    func modifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> [(line: String, path: String)]
    {
        let status = try git(["status", "--porcelain", "--untracked-files=no"], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("git", "status", status) }
        return status.standardOutput.split(whereSeparator: \.isNewline).map(String.init).map { line in
            let path = String(line.dropFirst(3))
            return (line, path.components(separatedBy: " -> ").last ?? path)
        }
    }

    func upstreamChangesToLocalFiles(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        guard !context.localFiles.isEmpty else { return [] }
        return try changed(between: "HEAD", and: try fetchTarget(tree, recorder), context.localFiles, tree, recorder)
    }

    /// The tracked files that differ between two revisions, among `paths`.
    private func changed(
        between from: String, and to: String, _ paths: [String], _ tree: String, _ recorder: CommandRecorder
    ) throws(DeliveryError) -> [String] {
        let diff = try git(
            ["diff", "--name-only", "--no-renames", from, to, "--"] + paths, tree, recorder, echo: false)
        guard diff.succeeded else { throw failure("git", "diff", diff) }
        return diff.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
    }

    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    {
        let state = try treeState(of: tree, recorder: recorder)
        return (state.untracked, state.missing)
    }

    /// One `git status` with every untracked file: its other lines are `modifications`' (the
    /// same lines `--untracked-files=no` prints).
    func treeState(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (modifications: [(line: String, path: String)], untracked: [String], missing: [String])
    {
        let status = try git(["status", "--porcelain=v1", "--untracked-files=all"], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("git", "status", status) }
        var modifications: [(line: String, path: String)] = []
        var untracked: [String] = []
        var missing: [String] = []
        for line in status.standardOutput.split(whereSeparator: \.isNewline).map(String.init) where line.count > 3 {
            let path = String(line.dropFirst(3))
            if line.hasPrefix("?? ") {
                if !context.ignoredFiles.contains(path) { untracked.append(path) }
                continue
            }
            if line.hasPrefix(" D ") { missing.append(path) }
            modifications.append((line, path.components(separatedBy: " -> ").last ?? path))
        }
        return (modifications, untracked, missing)
    }

    func upstreamAddress(of tree: String, recorder: CommandRecorder) -> String? {
        guard let url = try? git(["remote", "get-url", "--", remote], tree, recorder, echo: false), url.succeeded
        else { return nil }
        return url.standardOutput.trimmingWhitespace()
    }

    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        let branch = context.upstream.branch ?? "main"
        let pinned = !(context.upstream.pin ?? "").isEmpty
        let listed = try git(
            ["ls-remote", "--exit-code", "--", remote] + (pinned ? ["HEAD"] : ["refs/heads/\(branch)"]), tree, recorder)
        guard listed.succeeded else {
            if listed.exitCode == 2 {
                throw DeliveryError(.vcsFailed, "git: the branch '\(branch)' does not exist on \(remote)")
            }
            throw failure("git", "ls-remote \(remote)", listed)
        }
    }

    /// Fetches the upstream and returns the commit to go to: the pin, or the branch's head.
    func fetchTarget(_ tree: String, _ recorder: CommandRecorder) throws(DeliveryError) -> String {
        let target: String
        if let pin = context.upstream.pin, !pin.isEmpty {
            let fetch = try git(["fetch", "--quiet", "--tags", "--", remote], tree, recorder)
            guard fetch.succeeded else { throw failure("git", "fetch", fetch) }
            target = pin
        } else {
            let branch = context.upstream.branch ?? "main"
            let fetch = try git(
                ["fetch", "--quiet", "--", remote, "+refs/heads/\(branch):refs/remotes/\(remote)/\(branch)"], tree,
                recorder)
            guard fetch.succeeded else { throw failure("git", "fetch", fetch) }
            target = "refs/remotes/\(remote)/\(branch)"
        }
        let resolved = try git(["rev-parse", "--verify", "\(target)^{commit}"], tree, recorder, echo: false)
        guard resolved.succeeded else {
            throw DeliveryError(.vcsFailed, "git: the upstream revision '\(target)' does not exist")
        }
        return resolved.standardOutput.trimmingWhitespace()
    }

    func update(tree: String, path: String?, target: String?, recorder: CommandRecorder) throws(DeliveryError) {
        let latest = try fetchTarget(tree, recorder)
        let commit =
            try target.map { (target: String) throws(DeliveryError) in try commitId(target, tree, recorder) } ?? latest
        if !context.localFiles.isEmpty {
            let touched = try changed(between: "HEAD", and: commit, context.localFiles, tree, recorder)
            if !touched.isEmpty { throw context.localFilesChangedUpstream(touched) }
        }
        if let path {
            // Only what the upstream changed below the path: a site-local file there keeps the
            // site's version (the upstream does not change it, checked above).
            let files = try changed(between: "HEAD", and: commit, [path], tree, recorder).filter {
                !context.isLocal($0)
            }
            guard !files.isEmpty else { return }
            let restore = try git(
                ["restore", "--source=\(commit)", "--staged", "--worktree", "--"] + files, tree, recorder)
            guard restore.succeeded else { throw failure("git", "restore of \(path)", restore) }
            return
        }
        if context.upstream.pin != nil && !(context.upstream.pin ?? "").isEmpty {
            let checkout = try git(["checkout", "--quiet", "--detach", commit], tree, recorder)
            guard checkout.succeeded else { throw failure("git", "checkout", checkout) }
        } else {
            let branch = context.upstream.branch ?? "main"
            let current = try git(["symbolic-ref", "--quiet", "--short", "HEAD"], tree, recorder, echo: false)
            if !current.succeeded || current.standardOutput.trimmingWhitespace() != branch {
                let checkout = try git(["checkout", "--quiet", branch, "--"], tree, recorder)
                guard checkout.succeeded else { throw failure("git", "checkout of \(branch)", checkout) }
            }
            let merge = try git(["merge", "--ff-only", "--quiet", commit], tree, recorder)
            guard merge.succeeded else { throw failure("git", "fast-forward", merge) }
        }
    }

    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError) {
        let target =
            revision.branch.map { ["-B", $0, revision.id, "--"] } ?? ["--detach", revision.id, "--"]
        guard !(try modifiedLocalFiles(of: tree, recorder: recorder)).isEmpty else {
            let checkout = try git(["checkout", "--quiet", "--force"] + target, tree, recorder)
            guard checkout.succeeded else { throw failure("git", "return to \(revision.label)", checkout) }
            return
        }
        // Site-local files are changed here: everything else's changes are discarded (what a
        // partial update left), theirs are carried to the revision (which has the same file).
        let added = try git(["diff", "--cached", "--name-only", "--diff-filter=A"], tree, recorder, echo: false)
        let staged = added.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
            .filter { !context.isLocal($0) }
        if !staged.isEmpty {
            let remove = try git(["rm", "--quiet", "--force", "--"] + staged, tree, recorder)
            guard remove.succeeded else { throw failure("git", "removal of files a path update added", remove) }
        }
        let unstage = try git(["reset", "--quiet"], tree, recorder)
        guard unstage.succeeded else { throw failure("git", "reset of the index", unstage) }
        let others = try modifications(of: tree, recorder: recorder).map(\.path).filter { !context.isLocal($0) }
        if !others.isEmpty {
            let discard = try git(["checkout", "--quiet", "--"] + others, tree, recorder)
            guard discard.succeeded else { throw failure("git", "discarding of the update's changes", discard) }
        }
        let checkout = try git(["checkout", "--quiet"] + target, tree, recorder)
        guard checkout.succeeded else { throw failure("git", "return to \(revision.label)", checkout) }
    }
}
