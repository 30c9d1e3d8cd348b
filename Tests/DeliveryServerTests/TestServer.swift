import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A temporary site, key and configuration, and the real `deliveryd` binary running on them.
final class TestServer {
    let directory: String
    let socketPath: String
    let key: [UInt8]
    let configurationPath: String
    let logPath: String
    private(set) var process: Process?
    /// The farm's key (`farm`).
    private(set) var farmKey: [UInt8] = []
    var farmSocketPath: String { "\(directory)/run/farm.sock" }
    var farmKeyPath: String { "\(directory)/farm.key" }
    /// The farm account of these tests (run as root): `daemon`, which nothing else here uses.
    static let farmPeer: (name: String, uid: UInt32, gid: UInt32) = ("daemon", 1, 1)

    var client: FastCGIClient { FastCGIClient(socketPath: socketPath) }
    var signer: Signer { Signer(key: key) }
    var siteRoot: String { "\(directory)/site" }

    /// The request side's user in these tests (run as root): one no test peer uses.
    static let requestUser = "nobody"

    /// Where the built `deliveryd` is: beside the test bundle in the build folder.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["DELIVERYD_BINARY"] { return path }
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // On Linux the tests run from <build>/debug/<package>PackageTests.xctest.
        while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("deliveryd").path)
            && folder.path != "/"
        {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("deliveryd").path
    }

    /// Makes the files: a git working copy as `releases/production`, `current` pointing at it,
    /// the engine's site configuration, a key and the helper's configuration.
    init(
        allowedUids: [UInt32] = [getuid()], workers: Int = 3, limits: [String: Any] = [:], productionFiles: Int = 3,
        socketPath: String? = nil, withUpstream: Bool = false, farm: Bool = false
    ) throws {
        var template = Array("/tmp/deliveryd-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw ClientError("mkdtemp failed") }
        directory = String(cString: made)
        self.socketPath = socketPath ?? "\(directory)/run/deliveryd.sock"
        configurationPath = "\(directory)/deliveryd.json"
        logPath = "\(directory)/deliveryd.log"
        let files = FileManager.default
        try files.createDirectory(atPath: "\(directory)/run", withIntermediateDirectories: true)
        let production = "\(directory)/site/releases/production"
        try files.createDirectory(atPath: "\(production)/mod/forum", withIntermediateDirectories: true)
        try "<?php\n$version = 2024100700;\n".write(
            toFile: "\(production)/version.php", atomically: true, encoding: .utf8)
        for index in 0..<productionFiles {
            let folder = "\(production)/mod/m\(index / 100)"
            if !files.fileExists(atPath: folder) {
                try files.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            try "<?php // \(index)\n".write(toFile: "\(folder)/f\(index).php", atomically: false, encoding: .utf8)
        }
        try Self.run("/usr/bin/git", ["init", "-q", "-b", "main"], in: production)
        try Self.run("/usr/bin/git", ["add", "-A"], in: production)
        try Self.run(
            "/usr/bin/git",
            ["-c", "user.email=test@example.org", "-c", "user.name=Test", "commit", "-q", "-m", "initial"],
            in: production)
        if withUpstream {
            // A bare upstream that production tracks, and an author's clone that pushes to it.
            try Self.run(
                "/usr/bin/git", ["clone", "-q", "--bare", production, "\(directory)/upstream.git"], in: directory)
            try Self.run("/usr/bin/git", ["remote", "add", "origin", "\(directory)/upstream.git"], in: production)
            try Self.run("/usr/bin/git", ["fetch", "-q", "origin"], in: production)
            try Self.run(
                "/usr/bin/git", ["clone", "-q", "\(directory)/upstream.git", "\(directory)/author"], in: directory)
        }
        try files.createSymbolicLink(atPath: "\(directory)/site/current", withDestinationPath: "releases/production")
        let site: [String: Any] = [
            "siteRoot": "\(directory)/site", "stateDirectory": "\(directory)/state", "publicLayout": false,
            "php": "/usr/bin/php", "webUser": "\(getuid())", "codeOwner": "\(getuid())",
            "upstream": ["kind": "git", "branch": "main"],
            "moodle": [
                "wwwroot": "https://moodle.example.org", "dataroot": "\(directory)/data", "admin": "admin",
                "dbtype": "pgsql",
                "dbhost": "localhost", "dbname": "moodle", "dbuser": "moodle", "prefix": "mdl_",
            ],
            "timeouts": ["versionControl": 60, "upgrade": 60, "phpScript": 60],
        ]
        try JSONSerialization.data(withJSONObject: site).write(to: URL(fileURLWithPath: "\(directory)/site.json"))
        key = Array((0..<48).map { _ in UInt8.random(in: 0...255) }.map { String(format: "%02x", $0) }.joined().utf8)
        try Data(key + [10]).write(to: URL(fileURLWithPath: "\(directory)/key"))
        chmod("\(directory)/key", 0o600)
        var limitsObject: [String: Any] = ["readTimeoutSeconds": 2]
        limitsObject.merge(limits) { $1 }
        var configuration: [String: Any] = [
            "socketPath": self.socketPath, "allowedUids": allowedUids, "keyFile": "\(directory)/key",
            "siteConfiguration": "\(directory)/site.json", "workers": workers, "limits": limitsObject,
        ]
        // As root the helper splits, and its request side needs a user of its own.
        if getuid() == 0 { configuration["requestUser"] = Self.requestUser }
        if farm {
            // The farm's socket, for `farmPeer` only, with a key of its own that its group reads;
            // the folder opened for that user to pass through.
            farmKey = Array((0..<48).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined().utf8)
            try Data(farmKey + [10]).write(to: URL(fileURLWithPath: farmKeyPath))
            chown(farmKeyPath, 0, Self.farmPeer.gid)
            chmod(farmKeyPath, 0o640)
            chmod(directory, 0o711)
            configuration["farm"] = [
                "socketPath": farmSocketPath, "socketGroup": "\(Self.farmPeer.gid)",
                "allowedUids": [Self.farmPeer.uid], "keyFile": farmKeyPath,
            ]
        }
        try JSONSerialization.data(withJSONObject: configuration).write(to: URL(fileURLWithPath: configurationPath))
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts `deliveryd` and waits until it answers on its socket (and its farm socket is there,
    /// when it has one: the helper binds that one after the web socket).
    func start() throws {
        let process = try launch()
        self.process = process
        let deadline = Date().addingTimeInterval(15)
        let farmConfigured = !farmKey.isEmpty
        while Date() < deadline {
            if let connection = try? client.connect() {
                connection.close()
                if !farmConfigured { return }
                if let farm = try? FastCGIClient(socketPath: farmSocketPath).connect() {
                    farm.close()
                    return
                }
            }
            if !process.isRunning { throw ClientError("deliveryd exited: \(log)") }
            usleep(20_000)
        }
        throw ClientError("deliveryd did not answer in time: \(log)")
    }

    /// Runs another `deliveryd` on the same configuration (it is expected to refuse to start).
    func launch() throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--config", configurationPath]
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
        return process
    }

    /// Stops it with SIGTERM and waits for it.
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
    }

    /// The pid of the process that serves requests: the request side's (the monitor's child)
    /// when the helper runs split as root, else the helper's own.
    func requestSidePid() throws -> Int32 {
        let pid = try #require(process?.processIdentifier)
        guard getuid() == 0 else { return pid }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            if let child = children.split(separator: " ").first.flatMap({ Int32($0) }) { return child }
            usleep(20_000)
        }
        throw ClientError("the helper has no request side")
    }

    /// What it logged.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signed request.
    func signed(_ method: String, _ path: String, query: String = "", body: [UInt8] = []) throws -> ClientResponse {
        try client.send(
            method: method, path: path, query: query,
            headers: signer.headers(method: method, path: path, query: query, body: body), body: body)
    }

    /// Sends a signed JSON body.
    func post(_ path: String, _ object: [String: Any]) throws -> ClientResponse {
        try signed("POST", path, body: Array(try JSONSerialization.data(withJSONObject: object)))
    }

    /// Polls a job until it is no longer running; returns its last view and all its lines.
    func follow(job id: String, timeoutSeconds: Double = 60) throws -> (view: [String: Any], lines: [String]) {
        var lines: [String] = []
        var offset = 0
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            let response = try signed("GET", "/jobs/\(id)", query: "offset=\(offset)")
            guard response.status == 200 else {
                throw ClientError("job read failed: \(response.status) \(response.text)")
            }
            let view = response.json
            lines += view["lines"] as? [String] ?? []
            offset = view["nextOffset"] as? Int ?? offset
            if view["state"] as? String != "running" { return (view, lines) }
            usleep(50_000)
        }
        throw ClientError("job \(id) did not finish")
    }

    /// Commits a file in the author's clone and pushes it upstream (`withUpstream`).
    func pushUpstream(_ path: String, _ text: String, message: String) throws {
        let author = "\(directory)/author"
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: "\(author)/\(path)").deletingLastPathComponent().path,
            withIntermediateDirectories: true)
        try text.write(toFile: "\(author)/\(path)", atomically: true, encoding: .utf8)
        try Self.run("/usr/bin/git", ["add", "-A"], in: author)
        try Self.run(
            "/usr/bin/git", ["-c", "user.email=ada@example.org", "-c", "user.name=Ada", "commit", "-q", "-m", message],
            in: author)
        try Self.run("/usr/bin/git", ["push", "-q", "origin", "HEAD:main"], in: author)
    }

    static func run(_ program: String, _ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ClientError("\(program) \(arguments) failed") }
    }
}
