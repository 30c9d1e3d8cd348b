#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One synchronisation of `TreeCopier`, as the engine hands it to the copy worker.
public struct CopyJob: Sendable, Codable, Equatable {
    /// The tree to mirror.
    public var source: String
    /// The tree to change (its root exists and belongs to the worker's user).
    public var target: String
    /// A tree whose unchanged files may be hard-linked.
    public var linkFrom: String?
    /// Only this relative path below both roots.
    public var below: String?
    /// A relative path left alone on both sides.
    public var skipping: String?
    /// Relative paths also left alone on both sides.
    public var preserving: [String] = []
    /// Change nothing; say whether anything differs.
    public var checkOnly = false
    /// List the PHP scripts given a new file.
    public var recordingScripts = false

    /// Makes a job.
    public init(
        source: String, target: String, linkFrom: String? = nil, below: String? = nil, skipping: String? = nil,
        preserving: Set<String> = [], checkOnly: Bool = false, recordingScripts: Bool = false
    ) {
        self.source = source
        self.target = target
        self.linkFrom = linkFrom
        self.below = below
        self.skipping = skipping
        self.preserving = preserving.sorted()
        self.checkOnly = checkOnly
        self.recordingScripts = recordingScripts
    }

    /// Runs the job here, with this process's rights.
    func run(onProgress: (CopyProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true })
        throws(DeliveryError) -> CopyStatistics
    {
        try TreeCopier().synchronize(
            source: source, target: target, linkFrom: linkFrom, below: below, skipping: skipping,
            preserving: Set(preserving), checkOnly: checkOnly, recordingScripts: recordingScripts,
            onProgress: onProgress, shouldContinue: shouldContinue)
    }
}

/// A tree's prebuilt component cache (`$CFG->alternative_component_cache`), built by Moodle's
/// `alternative_component_cache.php --print` run as this process's user, read from its pipe,
/// checked to be PHP and written into the tree through descriptors (no symlink followed).
public struct ComponentCacheJob: Sendable, Codable, Equatable {
    /// The PHP CLI.
    public var php: String
    /// Moodle's `alternative_component_cache.php` in the tree.
    public var script: String
    /// The tree's code root (its `public/` in Moodle 5.1's layout), the script's working folder.
    public var codeRoot: String
    /// The tree's root (a copy's generation, or production), in `releases/`.
    public var treeRoot: String
    /// The cache file, relative to the tree root.
    public var file: String
    /// Seconds PHP may take.
    public var timeoutSeconds: Double

    /// Builds the cache here, with this process's rights; the file gets `owner` when given.
    func run(
        recorder: CommandRecorder, asUser user: UserIdentity? = nil, groups: [UInt32] = [],
        owner: (uid: UInt32, gid: UInt32)? = nil
    )
        throws(DeliveryError)
    {
        var command = Command(
            php, [script, "--print"], user: user, workingDirectory: codeRoot, timeoutSeconds: timeoutSeconds,
            outputLimit: 64 << 20)
        command.additionalGroups = groups
        let result = try recorder.run(command, echo: false)
        let bytes = Array(result.standardOutput.utf8)
        guard result.succeeded, bytes.starts(with: Array("<?php".utf8)), bytes.count < 64 << 20 else {
            let who = user?.name ?? UserIdentity.current.name
            throw DeliveryError(
                .upgradeFailed,
                "the component cache of \(treeRoot) could not be built as \(who) (with the web server's group, which must be able to read config.php and write the dataroot): \(terminalSafe(MoodleCLI.lastLines(result)))"
            )
        }
        do throws(SystemCallError) {
            let root = try System.openDirectory(at: AT_FDCWD, treeRoot)
            defer { System.close(root) }
            let folder = file.contains("/") ? try System.openDirectory(at: root, parentDirectory(of: file)) : root
            defer { if folder != root { System.close(folder) } }
            try System.writeFileAtomically(at: folder, lastComponent(of: file), bytes, mode: 0o644, owner: owner)
        } catch {
            throw DeliveryError.io("cannot put the component cache into \(treeRoot)", error)
        }
    }
}

/// What the engine hands the worker: one copy, one component cache, or emptying a tree.
public enum WorkerJob: Sendable, Codable, Equatable {
    case copy(CopyJob)
    case componentCache(ComponentCacheJob)
    /// Remove everything in this folder of `releases/` (root then removes the folder).
    case emptyFolder(String)
}

/// The copies are made by the code owner, not by root (docs/SECURITY.md, least privilege): the
/// engine running as root hands each `CopyJob` to `delivery-copy`, a program installed beside
/// `deliveryd` and `deliveryctl`, started as the code owner with the web server's group (to read
/// `config.php`) in a new session with a clean environment. It reports progress on its standard
/// error and its result, as JSON, on its standard output: a pipe the engine holds, never a file.
/// Root keeps what needs root: the generation's top folder in `releases/` (root's), switching
/// symlinks, the state file.
public enum CopyWorker {
    /// The worker's program name, looked for beside the running program.
    public static let programName = "delivery-copy"

    /// What the worker prints on its standard output when it ends.
    struct Reply: Codable {
        var statistics: CopyStatistics?
        var code: String?
        var message: String?
    }

    static let progressPrefix = "progress "

    /// The worker's `main`: `delivery-copy JOB` with a `WorkerJob` as JSON. Exit 0 when the job
    /// ran (its reply says whether it succeeded), 64 for a bad call.
    public static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 2, let job = try? JSONDecoder().decode(WorkerJob.self, from: Data(arguments[1].utf8))
        else {
            System.writeStandard(
                "usage: \(programName) JOB (a WorkerJob as JSON); the engine starts it as the code owner\n",
                toError: true)
            return 64
        }
        var reply = Reply()
        do throws(DeliveryError) {
            switch job {
            case .copy(let copy):
                reply.statistics = try copy.run(onProgress: { progress in
                    System.writeStandard(
                        "\(progressPrefix)\(progress.entries) \(progress.foldersDone) \(progress.foldersFound)\n",
                        toError: true)
                })
            case .componentCache(let cache):
                try cache.run(recorder: CommandRecorder(onLine: { _ in }))
                reply.statistics = CopyStatistics()
            case .emptyFolder(let path):
                do throws(SystemCallError) {
                    try TreeCopier.removeContents(of: path)
                } catch {
                    throw DeliveryError.io("cannot empty \(path)", error)
                }
                reply.statistics = CopyStatistics()
            }
        } catch {
            reply.code = error.code.rawValue
            reply.message = error.message
        }
        guard let data = try? JSONEncoder().encode(reply) else { return 70 }
        System.writeStandard(String(decoding: data, as: UTF8.self) + "\n", toError: false)
        return 0
    }

    /// Runs a copy as `owner`: in this process when it is this process's user (or when this
    /// process is not root and cannot change users), else in the worker.
    ///
    /// - Parameters:
    ///   - groups: groups the worker gets besides the owner's (the web server's).
    ///   - onProgress: how far the copy is, about ten times a second.
    ///   - shouldContinue: polled with each progress; false stops the worker (`.preempted`).
    static func run(
        _ job: CopyJob, as owner: UserIdentity, groups: [UInt32], recorder: CommandRecorder,
        onProgress: (CopyProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        guard usesWorker(for: owner) else {
            return try job.run(onProgress: onProgress, shouldContinue: shouldContinue)
        }
        return try perform(
            .copy(job), as: owner, groups: groups, recorder: recorder, onProgress: onProgress,
            shouldContinue: shouldContinue)
    }

    /// Builds a component cache as `owner`: PHP and the write both in the worker when this process
    /// is root and the owner is not; else here (PHP as the owner, the file given to it).
    static func buildComponentCache(
        _ job: ComponentCacheJob, as owner: UserIdentity, groups: [UInt32], recorder: CommandRecorder
    ) throws(DeliveryError) {
        guard usesWorker(for: owner) else {
            let changesUser = owner.uid != System.effectiveUserIdentifier
            try job.run(
                recorder: recorder, asUser: owner, groups: changesUser ? groups.filter { $0 != owner.gid } : [],
                owner: System.effectiveUserIdentifier == 0 ? (owner.uid, owner.gid) : nil)
            return
        }
        _ = try perform(.componentCache(job), as: owner, groups: groups, recorder: recorder)
    }

    /// Removes a tree of `releases/`: when it is the code owner's, the worker empties it as the
    /// code owner first; root then removes the emptied folder from its own `releases/`, and
    /// whatever the worker could not remove (a tree of root's, left by an older version),
    /// through descriptors.
    static func removeTree(_ path: String, owner: UserIdentity, recorder: CommandRecorder) throws(DeliveryError) {
        if usesWorker(for: owner), let status = try? System.lstatus(path), status.kind == .directory,
            status.uid == owner.uid
        {
            do {
                _ = try perform(.emptyFolder(path), as: owner, groups: [], recorder: recorder)
            } catch {
                recorder.onLine("The code owner could not empty \(lastComponent(of: path)): \(error.message)")
            }
        }
        try TreeCopier.removeTree(path)
    }

    /// Runs a job in the worker, as `owner`.
    private static func perform(
        _ job: WorkerJob, as owner: UserIdentity, groups: [UInt32], recorder: CommandRecorder,
        onProgress: (CopyProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        let program = try locateProgram()
        let text = String(decoding: (try? JSONEncoder().encode(job)) ?? Data(), as: UTF8.self)
        var command = Command(program, [text], user: owner, workingDirectory: "/", timeoutSeconds: 6 * 3600)
        command.outputLimit = 64 << 20
        command.additionalGroups = groups.filter { $0 != owner.gid }
        var workerProcess: Int32 = 0
        var stopped = false
        var lines: [String] = []
        let result = try recorder.run(
            command, echo: false, onStart: { workerProcess = $0 },
            onOutput: { line in
                if line.hasPrefix(progressPrefix) {
                    let numbers = line.dropFirst(progressPrefix.count).split(separator: " ").compactMap { Int($0) }
                    if numbers.count == 3 {
                        onProgress(CopyProgress(entries: numbers[0], foldersDone: numbers[1], foldersFound: numbers[2]))
                    }
                    if !stopped && !shouldContinue() {
                        stopped = true
                        System.signal(processGroup: workerProcess, SIGTERM)
                    }
                } else if !line.hasPrefix("{") {
                    lines.append(terminalSafe(line))
                    if lines.count > 5 { lines.removeFirst() }
                }
            })
        if stopped { throw DeliveryError(.preempted, "the copy was stopped before it finished") }
        let last = result.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
        guard result.succeeded, let reply = try? JSONDecoder().decode(Reply.self, from: Data(last.utf8)) else {
            let how =
                result.timedOut ? "ran out of time" : result.exitCode.map { "ended with status \($0)" } ?? "was killed"
            throw DeliveryError(
                .io,
                "the copy worker (\(programName), as \(owner.name)) \(how)\(lines.isEmpty ? "" : ": " + lines.joined(separator: " / "))"
            )
        }
        if let statistics = reply.statistics { return statistics }
        let code = reply.code.flatMap(DeliveryError.Code.init(rawValue:)) ?? .io
        throw DeliveryError(code, "as \(owner.name): \(reply.message ?? "the copy failed")")
    }

    /// True when jobs for `owner` run in the worker.
    static func usesWorker(for owner: UserIdentity) -> Bool {
        System.effectiveUserIdentifier == 0 && owner.uid != 0
    }

    /// Makes the root of a job's target, a folder of root's `releases/`, and gives it to `owner`
    /// (the worker, as the owner, cannot create entries in `releases/`). Through descriptors: the
    /// folder is opened without following a link and changed through its descriptor.
    static func prepareTarget(_ target: String, for owner: UserIdentity) throws(DeliveryError) {
        guard usesWorker(for: owner) else { return }
        do throws(SystemCallError) {
            let parent = try System.open(parentDirectory(of: target), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            defer { System.close(parent) }
            let name = lastComponent(of: target)
            let existing = try System.lstatusIfExists(at: parent, name)
            if existing?.kind != .directory {
                if existing != nil { try TreeCopier.removeEntry(at: parent, name) }
                try System.makeDirectory(at: parent, name, 0o700)
            }
            let folder = try System.openDirectory(at: parent, name)
            defer { System.close(folder) }
            let status = try System.fileStatus(folder)
            if status.uid != owner.uid || status.gid != owner.gid {
                try System.fileChangeOwner(folder, uid: owner.uid, gid: owner.gid)
            }
        } catch {
            throw DeliveryError.io("cannot give \(target) to \(owner.name) for the copy", error)
        }
    }

    /// The worker's program: beside the running one, a file of root's (or the helper's) that
    /// nobody else can change, in a folder nobody else can change.
    static func locateProgram() throws(DeliveryError) -> String {
        let running: String
        do {
            running = try System.readLink("/proc/self/exe")
        } catch {
            throw DeliveryError.io("cannot find the running program", error)
        }
        let folder = parentDirectory(of: running)
        let program = "\(folder)/\(programName)"
        let helper = System.effectiveUserIdentifier
        for (path, kind) in [(program, FileKind.regular), (folder, FileKind.directory)] {
            guard let status = try? System.lstatus(path) else {
                throw DeliveryError(
                    .configuration,
                    "\(program) is missing: the copies are made by it, as the code owner (install it beside \(lastComponent(of: running)); scripts/install does)"
                )
            }
            guard status.kind == kind, status.uid == 0 || status.uid == helper, status.mode & 0o022 == 0 else {
                throw DeliveryError(
                    .privileges,
                    "\(path) must be root's and writable by nobody else: the code owner runs it on the site's code"
                )
            }
        }
        return program
    }
}
