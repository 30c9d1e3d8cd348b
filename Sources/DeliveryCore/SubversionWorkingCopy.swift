#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Production as a Subversion working copy.
struct SubversionWorkingCopy: VersionControl {
    let context: VersionControlContext

    func svn(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
        throws(DeliveryError) -> CommandResult
    {
        try recorder.run(context.command("svn", ["--non-interactive"] + arguments, in: tree), echo: echo)
    }

    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision {
        let info = try svn(["info", "--show-item", "revision", "--no-newline", "."], tree, recorder, echo: false)
        guard info.succeeded else { throw failure("svn", "info", info) }
        let id = info.standardOutput.trimmingWhitespace()
        return Revision(id: id, label: "r\(id)")
    }

    /// Versioned items changed locally: each `svn status` line and its path.
    func modifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> [(line: String, path: String)]
    {
        let status = try svn(["status", "--quiet", "--ignore-externals", "."], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("svn", "status", status) }
        return status.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
            .filter { !$0.hasPrefix("X") && $0.count > 8 }.map { ($0, String($0.dropFirst(8))) }
    }

    /// `svn status --show-updates` marks with `*` (column 9) what the repository has newer.
    func upstreamChangesToLocalFiles(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        let present = context.localFiles.filter { (try? System.lstatus("\(tree)/\($0)")) != nil }
        guard !present.isEmpty else { return [] }
        let status = try svn(["status", "--show-updates", "--quiet", "--"] + present, tree, recorder, echo: false)
        guard status.succeeded else { throw failure("svn", "status against the repository", status) }
        let outdated = status.standardOutput.split(whereSeparator: \.isNewline).map(String.init).filter {
            let characters = Array($0)
            return characters.count > 9 && characters[8] == "*"
        }
        return present.filter { file in outdated.contains { $0.hasSuffix(" \(file)") } }
    }

    /// svn's default global-ignores, and the helper's own files: `svn status` then leaves them out
    /// without any svn:ignore property to commit.
    private var ignoreOption: [String] {
        let defaults =
            "*.o *.lo *.la *.al .libs *.so *.so.[0-9]* *.a *.pyc *.pyo __pycache__ *.rej *~ #*# .#* .*.swp .DS_Store [Tt]humbs.db"
        return [
            "--config-option",
            "config:miscellany:global-ignores=\(([defaults] + context.ignoredFiles).joined(separator: " "))",
        ]
    }

    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    {
        let status = try svn(["status", "--ignore-externals"] + ignoreOption + ["."], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("svn", "status", status) }
        var untracked: [String] = []
        var missing: [String] = []
        for line in status.standardOutput.split(whereSeparator: \.isNewline).map(String.init) where line.count > 8 {
            let path = String(line.dropFirst(8))
            if line.hasPrefix("?") { untracked.append(path) }
            if line.hasPrefix("!") { missing.append(path) }
        }
        return (untracked, missing)
    }

    private func checkConflicts(_ tree: String, _ recorder: CommandRecorder) throws(DeliveryError) {
        let status = try svn(["status", "--quiet", "."], tree, recorder, echo: false)
        let conflicted = status.standardOutput.split(whereSeparator: \.isNewline).filter { line in
            let characters = Array(line)
            return characters.count > 6
                && (characters[0] == "C" || characters[1] == "C" || characters[6] == "C")
        }
        if !conflicted.isEmpty {
            throw DeliveryError(
                .vcsFailed, "svn update failed: conflict in \(conflicted.prefix(3).joined(separator: ", "))")
        }
    }

    func upstreamAddress(of tree: String, recorder: CommandRecorder) -> String? {
        guard let url = try? svn(["info", "--show-item", "url", "--no-newline", "."], tree, recorder, echo: false),
            url.succeeded
        else { return nil }
        return url.standardOutput.trimmingWhitespace()
    }

    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        let info = try svn(["info", "--revision", "HEAD", "--", "."], tree, recorder)
        guard info.succeeded else { throw failure("svn", "info of the repository", info) }
    }

    func update(tree: String, path: String?, target: String?, recorder: CommandRecorder) throws(DeliveryError) {
        let touched = try upstreamChangesToLocalFiles(of: tree, recorder: recorder)
        if !touched.isEmpty { throw context.localFilesChangedUpstream(touched) }
        var arguments = ["update", "--accept", "postpone"]
        if let target {
            arguments += ["--revision", target]
        } else if let pin = context.upstream.pin, !pin.isEmpty {
            arguments += ["--revision", pin]
        }
        arguments += ["--", path ?? "."]
        let update = try svn(arguments, tree, recorder)
        guard update.succeeded else { throw failure("svn", "update", update) }
        try checkConflicts(tree, recorder)
    }

    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError) {
        // Every change is reverted but the site-local files' (the update keeps those: the
        // revision has the same file).
        let changes = try modifications(of: tree, recorder: recorder)
        let kept = changes.contains { context.isLocal($0.path) }
        let others = changes.map(\.path).filter { !context.isLocal($0) }
        if !kept || !others.isEmpty {
            let revert = try svn(["revert", "--recursive", "--"] + (kept ? others : ["."]), tree, recorder)
            guard revert.succeeded else { throw failure("svn", "revert", revert) }
        }
        let update = try svn(
            ["update", "--accept", "theirs-full", "--revision", revision.id, "--", "."], tree, recorder)
        guard update.succeeded else { throw failure("svn", "return to \(revision.label)", update) }
        try checkConflicts(tree, recorder)
    }
}
