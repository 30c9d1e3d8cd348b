#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Runs child processes for one operation and remembers them for the audit log.
final class CommandRecorder: @unchecked Sendable {
    private(set) var summaries: [CommandSummary] = []
    let onLine: (String) -> Void

    init(onLine: @escaping (String) -> Void) {
        self.onLine = onLine
    }

    /// Runs a command, streaming its lines to the progress log (with `echo`) and to `onOutput`,
    /// and records it.
    func run(
        _ command: Command, echo: Bool = true, onStart: (Int32) -> Void = { _ in },
        onOutput: (String) -> Void = { _ in }
    ) throws(DeliveryError) -> CommandResult {
        if echo { onLine("$ \(command.displayLine)") }
        let result = try ChildProcess.run(command, onStart: onStart) { [onLine] line in
            if echo { onLine("  \(terminalSafe(line))") }
            onOutput(line)
        }
        summaries.append(
            CommandSummary(
                command: result.command, user: result.user, exitCode: result.exitCode, timedOut: result.timedOut,
                durationSeconds: result.durationSeconds))
        return result
    }
}

/// Text that is safe to print on a terminal or show on a page: escape sequences (Moodle's CLI
/// colours its output; a hostile child could move the cursor, retitle the window or worse) and
/// every other control character are removed, except newlines and tabs. The one rule for all
/// output that carries a child's or a peer's text.
public func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var result = String.UnicodeScalarView()
    var inEscape = false
    for scalar in text.unicodeScalars {
        if inEscape {
            // CSI and similar sequences end with a letter (or '~'); a lone ESC takes one more.
            if (scalar.value >= 0x40 && scalar.value <= 0x7E && scalar != "[") || scalar == "\u{07}" {
                inEscape = false
            }
        } else if scalar == "\u{1B}" {
            inEscape = true
        } else if !isControl(scalar) || scalar == "\n" || scalar == "\t" {
            result.append(scalar)
        }
    }
    return String(result)
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    let value = scalar.value
    return (value < 0x20 && scalar != "\n" && scalar != "\t") || value == 0x7F || (value >= 0x80 && value <= 0x9F)
}

/// The version control operations the engine needs of a production working copy.
protocol VersionControl: Sendable {
    /// The revision checked out now.
    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision
    /// Tracked files changed locally (an update refuses to run over them).
    func localModifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String]
    /// Checks that the upstream answers the code owner, changing nothing.
    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
    /// Updates the whole tree, or one path, from the configured upstream.
    func update(tree: String, path: String?, recorder: CommandRecorder) throws(DeliveryError)
    /// Puts the tree back exactly at `revision` (cancel).
    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError)
    /// Files the VCS neither tracks nor ignores, and tracked files missing from the tree.
    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
}

/// Settings shared by the adapters.
struct VersionControlContext: Sendable {
    let upstream: UpstreamConfiguration
    let owner: UserIdentity
    let timeout: Double
    /// Files at the tree's root that the helper makes itself (the component cache): never
    /// reported as untracked.
    var ignoredFiles: [String] = []

    func command(_ program: String, _ arguments: [String], in directory: String) throws(DeliveryError) -> Command {
        guard let path = ChildProcess.locate(program) else {
            throw DeliveryError(.configuration, "\(program) is not installed")
        }
        return Command(
            path, arguments, user: owner, workingDirectory: directory, timeoutSeconds: timeout,
            extraEnvironment: [
                "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
                "GIT_LITERAL_PATHSPECS": "1",
            ])
    }

    static func make(_ context: VersionControlContext) -> any VersionControl {
        switch context.upstream.kind {
        case .git: GitRepository(context: context)
        case .svn: SubversionWorkingCopy(context: context)
        case .cvs: CVSWorkingCopy(context: context)
        }
    }
}

/// Turns a failed VCS command into one clear reason.
private func failure(_ tool: String, _ doing: String, _ result: CommandResult) -> DeliveryError {
    let output = result.combinedOutput
    let lowered = output.lowercased()
    var reason: String
    if result.timedOut {
        reason = "it ran longer than its time limit"
    } else if lowered.contains("conflict") {
        reason = "conflict"
    } else if lowered.contains("could not read from remote") || lowered.contains("unable to access")
        || lowered.contains("unable to connect") || lowered.contains("connection refused")
        || lowered.contains("does not appear to be a git repository") || lowered.contains("no repository found")
        || lowered.contains("unable to open") || lowered.contains("can't connect")
    {
        reason = "the remote is unreachable"
    } else if lowered.contains("not possible to fast-forward") || lowered.contains("not a fast-forward")
        || lowered.contains("diverging")
    {
        reason = "production has diverged from the upstream (not a fast-forward)"
    } else if lowered.contains("local changes") || lowered.contains("would be overwritten") {
        reason = "local modifications would be overwritten"
    } else {
        reason = "exit status \(result.exitCode.map(String.init) ?? "signal \(result.signal ?? 0)")"
    }
    // The tool's own explanation first (git's "fatal:" lines, which often come before the last
    // ones: "detected dubious ownership …"), then its last lines.
    let lines = output.split(whereSeparator: \.isNewline).map(String.init)
    let causes = lines.filter { $0.hasPrefix("fatal:") || $0.hasPrefix("error:") || $0.hasPrefix("svn: E") }.prefix(2)
    let shown = Array(causes) + lines.suffix(3).filter { !causes.contains($0) }
    if !shown.isEmpty { reason += ": \(shown.joined(separator: " | "))" }
    return DeliveryError(.vcsFailed, "\(tool) \(doing) failed: \(reason)")
}

struct GitRepository: VersionControl {
    let context: VersionControlContext

    private func git(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
        throws(DeliveryError) -> CommandResult
    {
        try recorder.run(context.command("git", ["-c", "core.quotepath=off"] + arguments, in: tree), echo: echo)
    }

    private var remote: String { context.upstream.remote ?? "origin" }

    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision {
        let head = try git(["rev-parse", "--verify", "HEAD"], tree, recorder, echo: false)
        guard head.succeeded else { throw failure("git", "rev-parse", head) }
        let id = head.standardOutput.trimmingWhitespace()
        let branchResult = try git(["symbolic-ref", "--quiet", "--short", "HEAD"], tree, recorder, echo: false)
        let branch = branchResult.succeeded ? branchResult.standardOutput.trimmingWhitespace() : nil
        return Revision(id: id, label: "\(branch ?? "detached") @ \(id.prefix(10))", branch: branch)
    }

    func localModifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        let status = try git(["status", "--porcelain", "--untracked-files=no"], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("git", "status", status) }
        return status.standardOutput.split(whereSeparator: \.isNewline).map { String($0) }
    }

    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    {
        let status = try git(["status", "--porcelain=v1", "--untracked-files=all"], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("git", "status", status) }
        var untracked: [String] = []
        var missing: [String] = []
        for line in status.standardOutput.split(whereSeparator: \.isNewline).map(String.init) where line.count > 3 {
            let path = String(line.dropFirst(3))
            if line.hasPrefix("?? ") && !context.ignoredFiles.contains(path) { untracked.append(path) }
            if line.hasPrefix(" D ") { missing.append(path) }
        }
        return (untracked, missing)
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

    func update(tree: String, path: String?, recorder: CommandRecorder) throws(DeliveryError) {
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
        let commit = resolved.standardOutput.trimmingWhitespace()
        if let path {
            let restore = try git(
                ["restore", "--source=\(commit)", "--staged", "--worktree", "--", path], tree, recorder)
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
        let arguments: [String]
        if let branch = revision.branch {
            arguments = ["checkout", "--quiet", "--force", "-B", branch, revision.id, "--"]
        } else {
            arguments = ["checkout", "--quiet", "--force", "--detach", revision.id, "--"]
        }
        let checkout = try git(arguments, tree, recorder)
        guard checkout.succeeded else { throw failure("git", "return to \(revision.label)", checkout) }
    }
}

struct SubversionWorkingCopy: VersionControl {
    let context: VersionControlContext

    private func svn(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
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

    func localModifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        let status = try svn(["status", "--quiet", "--ignore-externals", "."], tree, recorder, echo: false)
        guard status.succeeded else { throw failure("svn", "status", status) }
        return status.standardOutput.split(whereSeparator: \.isNewline).map { String($0) }.filter { !$0.hasPrefix("X") }
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

    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        let info = try svn(["info", "--revision", "HEAD", "--", "."], tree, recorder)
        guard info.succeeded else { throw failure("svn", "info of the repository", info) }
    }

    func update(tree: String, path: String?, recorder: CommandRecorder) throws(DeliveryError) {
        var arguments = ["update", "--accept", "postpone"]
        if let pin = context.upstream.pin, !pin.isEmpty { arguments += ["--revision", pin] }
        arguments += ["--", path ?? "."]
        let update = try svn(arguments, tree, recorder)
        guard update.succeeded else { throw failure("svn", "update", update) }
        try checkConflicts(tree, recorder)
    }

    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError) {
        let revert = try svn(["revert", "--recursive", "--", "."], tree, recorder)
        guard revert.succeeded else { throw failure("svn", "revert", revert) }
        let update = try svn(
            ["update", "--accept", "theirs-full", "--revision", revision.id, "--", "."], tree, recorder)
        guard update.succeeded else { throw failure("svn", "return to \(revision.label)", update) }
        try checkConflicts(tree, recorder)
    }
}

struct CVSWorkingCopy: VersionControl {
    let context: VersionControlContext

    private func cvs(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
        throws(DeliveryError) -> CommandResult
    {
        try recorder.run(context.command("cvs", ["-f", "-q"] + arguments, in: tree), echo: echo)
    }

    /// CVS has no tree revision: the fingerprint of every `CVS/Entries` file stands for it, and the
    /// time it was read is what cancel goes back to (`update -D`).
    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func visit(_ directory: String) {
            let entries = (try? System.listDirectory(directory))?.sorted { $0.name < $1.name } ?? []
            if let bytes = try? System.readFile("\(directory)/CVS/Entries", limit: 64 << 20) {
                for byte in bytes {
                    hash ^= UInt64(byte)
                    hash = hash &* 0x100_0000_01b3
                }
            }
            for entry in entries where entry.kind == .directory && entry.name != "CVS" {
                visit("\(directory)/\(entry.name)")
            }
        }
        visit(tree)
        let now = Date()
        let id = String(hash, radix: 16)
        return Revision(id: id, label: "cvs \(id.prefix(10)) at \(Self.cvsDate(now))", readAt: now)
    }

    /// A date CVS reads back exactly (`2026-11-25 15:00:00 +0000`).
    static func cvsDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }

    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    {
        let ignores = context.ignoredFiles.flatMap { ["-I", $0] }
        let status = try cvs(["-n", "update"] + ignores, tree, recorder, echo: false)
        let untracked = status.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
            .filter { $0.hasPrefix("? ") }.map { String($0.dropFirst(2)) }
        // cvs says "cvs update: warning: `path' was lost" for a tracked file deleted by hand.
        let missing = status.standardError.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let start = line.firstIndex(of: "`"), let end = line.lastIndex(of: "'"), start < end,
                line.contains("was lost")
            else { return nil }
            return String(line[line.index(after: start)..<end])
        }
        return (untracked, missing)
    }

    func localModifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        let status = try cvs(["-n", "update"], tree, recorder, echo: false)
        return status.standardOutput.split(whereSeparator: \.isNewline).map { String($0) }.filter {
            $0.hasPrefix("M ") || $0.hasPrefix("A ") || $0.hasPrefix("R ") || $0.hasPrefix("C ")
        }
    }

    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        // A dry run of the update (-n): it asks the server and changes nothing.
        let dryRun = try cvs(["-n", "update", "-A", "-d", "-P"], tree, recorder)
        guard dryRun.succeeded else { throw failure("cvs", "update -n", dryRun) }
    }

    func update(tree: String, path: String?, recorder: CommandRecorder) throws(DeliveryError) {
        var arguments = ["update", "-A", "-d", "-P"]
        if let path { arguments.append(path) }
        let update = try cvs(arguments, tree, recorder)
        let conflicts = update.standardOutput.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("C ") }
        if !conflicts.isEmpty {
            throw DeliveryError(
                .vcsFailed, "cvs update failed: conflict in \(conflicts.prefix(3).joined(separator: ", "))")
        }
        guard update.succeeded else { throw failure("cvs", "update", update) }
    }

    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError) {
        let update = try cvs(["update", "-C", "-d", "-P", "-D", Self.cvsDate(revision.readAt)], tree, recorder)
        guard update.succeeded else { throw failure("cvs", "return to \(revision.label)", update) }
    }
}
