import DeliveryCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The project's root folder, from this file's path.
let projectRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

/// Runs a program to its end and returns its result (test helper over the engine's own runner).
@discardableResult
func sh(_ program: String, _ arguments: [String], in directory: String? = nil, env: [String: String] = [:]) throws
    -> CommandResult
{
    let path = ChildProcess.locate(program) ?? program
    return try ChildProcess.run(
        Command(path, arguments, workingDirectory: directory, timeoutSeconds: 120, extraEnvironment: env))
}

/// A hermetic temporary folder, removed at the end.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/delivery-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil)
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(path, 0o755)
    }

    deinit {
        _ = try? sh("/bin/rm", ["-rf", path])
    }
}

/// A snapshot of a tree: every entry's kind, mode and contents (or link target), VCS metadata left out.
struct TreeSnapshot: Equatable, CustomStringConvertible {
    var entries: [String: String]

    init(_ root: String, includeTimes: Bool = false) {
        entries = [:]
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : "\(root)/\(relative)"
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names where ![".git", ".svn", "CVS"].contains(name) {
                let child = relative.isEmpty ? name : "\(relative)/\(name)"
                let path = "\(root)/\(child)"
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                let mode = String(info.st_mode & 0o7777, radix: 8)
                let time = includeTimes ? " t=\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)" : ""
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    entries[child] = "dir \(mode)\(time)"
                    pending.append(child)
                case S_IFLNK:
                    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
                    entries[child] = "link -> \(target)"
                default:
                    let data = FileManager.default.contents(atPath: path) ?? Data()
                    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
                    for byte in data {
                        hash ^= UInt64(byte)
                        hash = hash &* 0x100_0000_01b3
                    }
                    entries[child] = "file \(mode) \(data.count) \(String(hash, radix: 16))\(time)"
                }
            }
        }
    }

    var description: String { entries.keys.sorted().map { "\($0): \(entries[$0]!)" }.joined(separator: "\n") }

    /// The entries that differ, for readable failures.
    func difference(from other: TreeSnapshot) -> [String] {
        Set(entries.keys).union(other.entries.keys).sorted().compactMap { key in
            entries[key] == other.entries[key]
                ? nil : "\(key): \(other.entries[key] ?? "absent") → \(entries[key] ?? "absent")"
        }
    }
}

/// A Moodle-shaped FIXTURE site (Tests/Fixture/make-site) adopted into the release layout.
final class FixtureSite {
    let directory = TemporaryDirectory()
    let vcs: VersionControlKind
    let configuration: SiteConfiguration
    let engine: DeliveryEngine
    let configurationPath: String
    /// Snapshots of revision 1 and 2 of the code, taken from the author's working copy.
    let revision1: TreeSnapshot

    var root: String { directory.path }
    var siteRoot: String { "\(root)/site" }
    var production: String { "\(siteRoot)/releases/production" }
    var backup: String { "\(siteRoot)/releases/backup" }
    var security: String { "\(siteRoot)/releases/security" }
    var current: String { "\(siteRoot)/current" }
    var dataroot: String { "\(root)/moodledata" }

    /// - Parameter phpFpmSockets: the pools to configure; none by default, so that a test never
    ///   reaches a PHP-FPM pool of the machine it runs on.
    init(
        vcs: VersionControlKind = .git, webUser: String? = nil, phpFpmSockets: [String] = [],
        databaseSnapshots: Bool = false, healthCheck: HealthCheckSettings = HealthCheckSettings(mode: .off),
        makeSiteOptions: [String] = [], beforeAdoption: (String) throws -> Void = { _ in },
        adjust: (inout SiteConfiguration) -> Void = { _ in }
    ) throws {
        self.vcs = vcs
        let made = try sh(
            "/bin/bash",
            ["\(projectRoot)/Tests/Fixture/make-site", "--vcs", vcs.rawValue, "--dir", directory.path]
                + makeSiteOptions)
        guard made.succeeded else { throw FixtureError("make-site failed: \(made.combinedOutput)") }
        if let webUser {
            // The web user owns the dataroot, as on a real server; the code stays the owner's.
            try sh("/bin/chown", ["-R", webUser, "\(directory.path)/moodledata"])
        }
        try beforeAdoption(directory.path)
        revision1 = TreeSnapshot("\(directory.path)/moodle")
        configurationPath = "\(directory.path)/etc/site.json"
        let me = UserIdentity.current.name
        let result = try SiteAdoption.adopt(
            AdoptionRequest(
                moodleDirectory: "\(directory.path)/moodle", siteRoot: "\(directory.path)/site",
                stateDirectory: "\(directory.path)/state", configurationPath: configurationPath,
                webUser: webUser ?? me, codeOwner: me, php: "/usr/bin/php", phpFpmSockets: phpFpmSockets,
                databaseSnapshots: databaseSnapshots, healthCheck: healthCheck))
        var configuration = result.configuration
        adjust(&configuration)
        self.configuration = configuration
        engine = try DeliveryEngine(configuration: configuration)
    }

    /// Publishes revision 2 upstream.
    func publishRevision2() throws {
        let result = try sh("/bin/bash", ["\(root)/revision2"])
        guard result.succeeded else { throw FixtureError("revision2 failed: \(result.combinedOutput)") }
    }

    /// Commits files into the fixture's upstream (git) as a new revision (folders made as needed).
    func publish(_ files: [String: String]) throws {
        let author = "\(root)/author"
        for (path, content) in files {
            let file = URL(fileURLWithPath: "\(author)/\(path)")
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: file, atomically: false, encoding: .utf8)
        }
        try sh("git", ["add", "-A"], in: author)
        try sh("git", ["-c", "user.name=a", "-c", "user.email=a@x.invalid", "commit", "-qm", "change"], in: author)
        try sh("git", ["push", "-q", "origin", "main"], in: author)
    }

    /// The snapshot of what the site serves now.
    var served: TreeSnapshot { TreeSnapshot(current + "/") }

    /// The version the served tree declares.
    var servedVersion: String {
        let text =
            (try? String(contentsOfFile: "\(current)/version.php", encoding: .utf8))
            ?? (try? String(contentsOfFile: "\(current)/public/version.php", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").first { $0.hasPrefix("$version") }.map(String.init) ?? "none"
    }

    /// Lines of the fixture's call log (who ran which Moodle CLI script).
    /// Moodle's CLI scripts the engine ran, in order, leaving out the read-only question it asks
    /// every copy after each operation (`upgrade.php --is-pending`, for the rollback plan).
    var moodleCalls: [String] {
        allMoodleCalls.filter { !$0.contains("upgrade.php --is-pending") }
    }

    /// Every call of Moodle's CLI scripts, in order.
    var allMoodleCalls: [String] {
        ((try? String(contentsOfFile: "\(dataroot)/fixture-calls.log", encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    @discardableResult
    func perform(
        _ operation: DeliveryOperation, securePath: String? = nil, updatePath: String? = nil, security: Bool = false,
        comment: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> OperationOutcome {
        defer { checkInvariants(after: operation, sourceLocation: sourceLocation) }
        // As deliveryctl does: the paths as typed, parsed once, a refusal audited.
        let request = try OperationRequest.parse(
            operation, actor: Actor(name: "tester", source: "cli"), securePath: securePath, updatePath: updatePath,
            securityCopy: security, comment: comment, audit: engine.recordRefusal)
        return try engine.perform(request)
    }

    /// The invariants every operation keeps, whatever it did (issue 13), checked after every
    /// operation of every test that goes through `perform`: the served tree is there and complete;
    /// outside a delivery and after a rollback, the served code is the version the fixture's
    /// "database" (moodledata/fixture-db-version) is at, or the site stays in maintenance mode (a
    /// rollback without a snapshot after an upgrade: the rollback plan says so). The walk of
    /// Tests/Explore checks more, on a real database.
    func checkInvariants(after operation: DeliveryOperation, sourceLocation: SourceLocation = #_sourceLocation) {
        guard checksInvariants else { return }
        guard let status = try? engine.status() else {
            Issue.record("status failed after \(operation.rawValue)", sourceLocation: sourceLocation)
            return
        }
        let served = status.served
        guard
            FileManager.default.fileExists(atPath: "\(current)/version.php")
                || FileManager.default.fileExists(atPath: "\(current)/public/version.php")
        else {
            Issue.record(
                "after \(operation.rawValue): the served tree (\(served?.rawValue ?? "?")) is missing",
                sourceLocation: sourceLocation)
            return
        }
        if let served, served != .production, status.copies[served]?.complete != true {
            Issue.record(
                "after \(operation.rawValue): the served copy \(served.rawValue) is not complete",
                sourceLocation: sourceLocation)
        }
        let database = (try? String(contentsOfFile: "\(dataroot)/fixture-db-version", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let code = servedVersion.split(separator: "=", maxSplits: 1).last.map {
            String($0.drop(while: { $0 == " " }).prefix(while: { $0.isNumber || $0 == "." }))
        }.flatMap(Double.init)
        // A mismatch the site shows: maintenance mode stays on, and the rollback plan says why.
        if let database, let code, [.idle, .secured, .rolledBack].contains(status.phase), status.running == nil,
            code != Double(database), !status.maintenanceEnabled
        {
            Issue.record(
                "after \(operation.rawValue): state '\(status.phase.rawValue)' serves \(served?.rawValue ?? "?") at version \(code), the database is at \(database)",
                sourceLocation: sourceLocation)
        }
    }

    /// False in a test that changes the site behind the engine's back (a hand-made `git pull` in
    /// production): what it serves then is the test's doing, not the engine's.
    var checksInvariants = true

    /// The error code a refused or failed operation gives (nil when it succeeded).
    func refusal(_ operation: DeliveryOperation, securePath: String? = nil, updatePath: String? = nil) -> DeliveryError?
    {
        do {
            _ = try perform(operation, securePath: securePath, updatePath: updatePath)
            return nil
        } catch let error as DeliveryError {
            return error
        } catch {
            return DeliveryError(.io, "\(error)")
        }
    }

    /// Everything on disk that an operation could change: the site root and the state (audit log aside).
    var diskSnapshot: TreeSnapshot {
        var snapshot = TreeSnapshot(siteRoot, includeTimes: true)
        let state = TreeSnapshot("\(root)/state")
        for (key, value) in state.entries where !key.hasPrefix("audit.log") && !key.hasSuffix(".lock") {
            snapshot.entries["state/\(key)"] = value
        }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) {
            snapshot.entries["<current>"] = target
        }
        return snapshot
    }

    var auditLines: [String] {
        ((try? String(contentsOfFile: "\(root)/state/audit.log", encoding: .utf8)) ?? "").split(separator: "\n").map(
            String.init)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The built deliveryctl binary, next to the test bundle.
var deliveryctlPath: String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    var directory = String(executable[..<(executable.lastIndex(of: "/") ?? executable.endIndex)])
    if directory.hasSuffix(".xctest") || directory.contains(".xctest/") {
        directory = String(directory[..<directory.range(of: ".xctest")!.lowerBound])
        directory = String(directory[..<directory.lastIndex(of: "/")!])
    }
    return "\(directory)/deliveryctl"
}
