import Synchronization

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Runs child processes for one operation and remembers them for the audit log. Commands may run
/// at the same time from two threads (`concurrently`): what it keeps is behind a lock.
final class CommandRecorder: @unchecked Sendable {
    private let kept = Mutex<(summaries: [CommandSummary], maintenance: [(enabled: Bool, at: Date)])>(([], []))
    private let lineLock = Mutex(())
    private let printLine: (String) -> Void

    /// The commands run so far, in the order they ended.
    var summaries: [CommandSummary] { kept.withLock { $0.summaries } }
    /// Moodle's maintenance mode as the operation turned it on and off, when each command finished.
    var maintenanceChanges: [(enabled: Bool, at: Date)] { kept.withLock { $0.maintenance } }

    init(onLine: @escaping (String) -> Void) {
        self.printLine = onLine
    }

    /// Passes one line to the progress log, whole even when two commands print at once.
    func onLine(_ line: String) {
        lineLock.withLock { _ in printLine(line) }
    }

    /// Notes that Moodle's maintenance mode is now on or off.
    func maintenanceChanged(_ enabled: Bool) {
        kept.withLock { $0.maintenance.append((enabled, Date())) }
    }

    /// Runs a command, streaming its lines to the progress log (with `echo`) and to `onOutput`,
    /// and records it.
    func run(
        _ command: Command, echo: Bool = true, onStart: (Int32) -> Void = { _ in },
        onOutput: (String) -> Void = { _ in }
    ) throws(DeliveryError) -> CommandResult {
        if echo { onLine("$ \(command.displayLine)") }
        let result = try ChildProcess.run(command, onStart: onStart) { line in
            if echo { self.onLine("  \(terminalSafe(line))") }
            onOutput(line)
        }
        let summary = CommandSummary(
            command: result.command, user: result.user, exitCode: result.exitCode, timedOut: result.timedOut,
            durationSeconds: result.durationSeconds)
        kept.withLock { $0.summaries.append(summary) }
        return result
    }
}

/// Runs two pieces of work at the same time, each on a thread of its own, and returns both
/// results once both are done (independent checks of Moodle, each a bootstrap of PHP).
func concurrently<A: Sendable, B: Sendable>(
    _ first: @escaping @Sendable () -> A, _ second: @escaping @Sendable () -> B
) -> (A, B) {
    // System.runThreads runs one body on each thread: each takes the next piece of work.
    let state = Mutex<(next: Int, first: A?, second: B?)>((0, nil, nil))
    System.runThreads(2, interval: 3600, whileWaiting: {}) {
        let index = state.withLock { (state) -> Int in
            defer { state.next += 1 }
            return state.next
        }
        if index == 0 {
            let value = first()
            state.withLock { $0.first = value }
        } else {
            let value = second()
            state.withLock { $0.second = value }
        }
    }
    return state.withLock { ($0.first!, $0.second!) }
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
    /// The adapter's settings.
    var context: VersionControlContext { get }
    /// Tracked files changed locally: each line of the VCS's status and its path.
    func modifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> [(line: String, path: String)]
    /// The site-local files the upstream would change (git fetches first): the update refuses them
    /// before it changes anything.
    func upstreamChangesToLocalFiles(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String]
    /// The upstream's address (git's remote URL, svn's repository URL, cvs's root), for advice.
    func upstreamAddress(of tree: String, recorder: CommandRecorder) -> String?
    /// Checks that the upstream answers the code owner, changing nothing.
    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
    /// Updates the whole tree, or one path, from the configured upstream: to `target` when given
    /// (a revision `upstreamChanges` returned), else to the upstream's latest.
    func update(tree: String, path: String?, target: String?, recorder: CommandRecorder) throws(DeliveryError)
    /// What the upstream holds beyond production — up to `target` when given — read as the code
    /// owner without changing the working tree (git fetches into a ref of its own).
    func upstreamChanges(of tree: String, target: String?, recorder: CommandRecorder) throws(DeliveryError)
        -> UpstreamChanges
    /// A file's text at the revision of `changes` (at most 4 MiB); nil when it cannot be read.
    func upstreamText(_ path: String, of tree: String, changes: UpstreamChanges, recorder: CommandRecorder) -> String?
    /// Brings a rehearsal's copy of `tree` to the revision of `changes` (`VersionControl+Rehearsal`).
    func applyUpstream(
        _ changes: UpstreamChanges, from tree: String, onto copy: String, recorder: CommandRecorder
    ) throws(DeliveryError)
    /// Puts the tree back exactly at `revision` (cancel).
    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError)
    /// Files the VCS neither tracks nor ignores, and tracked files missing from the tree.
    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    /// `modifications` and `untrackedAndMissing` together (git: one `status`; by default both).
    func treeState(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (modifications: [(line: String, path: String)], untracked: [String], missing: [String])
}

extension VersionControl {
    func treeState(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (modifications: [(line: String, path: String)], untracked: [String], missing: [String])
    {
        let modifications = try modifications(of: tree, recorder: recorder)
        let health = try untrackedAndMissing(in: tree, recorder: recorder)
        return (modifications, health.untracked, health.missing)
    }

    /// Tracked files changed locally (an update refuses to run over them), site-local files left out.
    func localModifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        context.split(try modifications(of: tree, recorder: recorder)).refusing
    }

    /// Checks that the next update could run, changing no tree: the upstream answers the code
    /// owner and changes no site-local file (switch, run-all and the preflight's warning ask it).
    func checkUpdatable(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        try checkUpstream(of: tree, recorder: recorder)
        let touched = try upstreamChangesToLocalFiles(of: tree, recorder: recorder)
        if !touched.isEmpty { throw context.localFilesChangedUpstream(touched) }
    }

    /// The site-local files changed locally: kept as they are through every update and cancel.
    func modifiedLocalFiles(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        context.split(try modifications(of: tree, recorder: recorder)).kept
    }
}

/// Settings shared by the adapters.
struct VersionControlContext: Sendable {
    let upstream: UpstreamConfiguration
    let owner: UserIdentity
    let timeout: Double
    /// Files at the tree's root that the helper makes itself (the component cache): never
    /// reported as untracked.
    var ignoredFiles: [String] = []
    /// Site-local files, relative to the tree's root (`config.php`, and what the site's
    /// configuration lists): the site's own, whatever the upstream holds. Their local changes are
    /// never refused, discarded or overwritten; an upstream change to one is refused before
    /// anything changes.
    var localFiles: [String] = []

    /// True for a site-local file.
    func isLocal(_ path: String) -> Bool { localFiles.contains(path) }

    /// The one rule for local modifications: the status lines of tracked files changed locally
    /// (an update refuses to run over them), and the paths of site-local files changed on the
    /// site (kept as they are through every update and cancel).
    func split(_ modifications: [(line: String, path: String)]) -> (refusing: [String], kept: [String]) {
        (
            modifications.filter { !isLocal($0.path) }.map(\.line),
            modifications.filter { isLocal($0.path) }.map(\.path)
        )
    }

    /// The refusal of an update whose upstream changes site-local files.
    func localFilesChangedUpstream(_ files: [String]) -> DeliveryError {
        DeliveryError(
            .notUpdatable,
            "the upstream changes \(files.joined(separator: ", ")), which this site keeps as its own (a site-local file: config.php holds this site's own settings); nothing was changed. The upstream must leave that file alone: revert that change upstream, or stop tracking the file there (git rm --cached, and ignore it), then deliver"
        )
    }

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

    /// The text a VCS command prints of one file (`git show`, `svn cat`, `cvs update -p`), run
    /// as the code owner; nil when it fails or the file is 4 MiB or more.
    func fileText(_ program: String, _ arguments: [String], in tree: String, recorder: CommandRecorder) -> String? {
        guard var command = try? command(program, arguments, in: tree) else { return nil }
        command.outputLimit = 4 << 20
        guard let shown = try? recorder.run(command, echo: false), shown.succeeded,
            shown.standardOutput.utf8.count < 4 << 20
        else { return nil }
        return shown.standardOutput
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
func failure(_ tool: String, _ doing: String, _ result: CommandResult) -> DeliveryError {
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
