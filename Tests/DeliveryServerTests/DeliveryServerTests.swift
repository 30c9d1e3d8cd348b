import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Black-box tests: the real `deliveryd` on a temporary socket, spoken to over FastCGI.
@Suite("deliveryd", .serialized)
struct DeliveryServerTests {
    // MARK: Accepted requests

    @Test("a signed status request is answered with the site's status")
    func signedStatus() throws {
        let server = try TestServer()
        try server.start()
        let response = try server.signed("GET", "/status")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.ended)
        #expect(response.headers["Content-Type"] == "application/json")
        let site = response.json["site"] as? [String: Any]
        #expect(site?["phase"] as? String == "idle")
        #expect(site?["served"] as? String == "production")
        #expect((site?["allowed"] as? [String])?.contains("secure") == true)
        #expect((site?["copies"] as? [String: Any])?["backup"] != nil)
    }

    @Test("a request drip-fed one byte at a time is answered")
    func dripFed() throws {
        let server = try TestServer()
        try server.start()
        let bytes = FastCGIClient.request(
            method: "GET", path: "/status", headers: server.signer.headers(method: "GET", path: "/status"))
        let connection = try server.client.connect()
        for byte in bytes { try connection.write([byte]) }
        let response = try connection.readResponse()
        #expect(response.status == 200, "\(response.text)")
    }

    @Test(
        "cgi-fcgi from libfcgi-bin gets the status",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/cgi-fcgi"), "needs libfcgi-bin"))
    func cgiFcgi() throws {
        let server = try TestServer()
        try server.start()
        let headers = server.signer.headers(method: "GET", path: "/status")
        var environment = [
            "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/status", "QUERY_STRING": "", "CONTENT_LENGTH": "0",
        ]
        for (name, value) in headers {
            environment["HTTP_" + name.uppercased().replacingOccurrences(of: "-", with: "_")] = value
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/cgi-fcgi")
        process.arguments = ["-bind", "-connect", server.socketPath]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasPrefix("Status: 200 OK\r\n"), "\(text)")
        #expect(text.contains(#""phase":"idle""#))
    }

    // MARK: Refusals

    @Test("a request without a signature is refused")
    func unsigned() throws {
        let server = try TestServer()
        try server.start()
        let response = try server.client.send(method: "GET", path: "/status")
        #expect(response.status == 401)
        #expect(response.errorCode == "unauthenticated")
    }

    @Test("a request signed with another key is refused")
    func wrongKey() throws {
        let server = try TestServer()
        try server.start()
        let other = Signer(key: Array(String(repeating: "k", count: 64).utf8))
        let response = try server.client.send(
            method: "GET", path: "/status", headers: other.headers(method: "GET", path: "/status"))
        #expect(response.status == 401)
        #expect(response.errorCode == "bad_signature")
    }

    @Test("a signature over another path or body is refused")
    func tamperedRequest() throws {
        let server = try TestServer()
        try server.start()
        let headers = server.signer.headers(method: "GET", path: "/history")
        let response = try server.client.send(method: "GET", path: "/status", headers: headers)
        #expect(response.errorCode == "bad_signature")
        let body = Array(#"{"operation":"secure"}"#.utf8)
        let signedOther = server.signer.headers(method: "POST", path: "/operations", body: Array("{}".utf8))
        let posted = try server.client.send(method: "POST", path: "/operations", headers: signedOther, body: body)
        #expect(posted.errorCode == "bad_signature")
    }

    @Test("a request with a stale timestamp is refused")
    func staleTimestamp() throws {
        let server = try TestServer()
        try server.start()
        let headers = server.signer.headers(method: "GET", path: "/status", timestamp: Int(time(nil)) - 600)
        let response = try server.client.send(method: "GET", path: "/status", headers: headers)
        #expect(response.status == 401)
        #expect(response.errorCode == "stale_request")
    }

    @Test("a replayed nonce is refused")
    func replayedNonce() throws {
        let server = try TestServer()
        try server.start()
        let headers = server.signer.headers(method: "GET", path: "/status")
        let first = try server.client.send(method: "GET", path: "/status", headers: headers)
        #expect(first.status == 200)
        let second = try server.client.send(method: "GET", path: "/status", headers: headers)
        #expect(second.status == 401)
        #expect(second.errorCode == "replayed_nonce")
    }

    @Test("a peer whose uid is not allowed is refused before its request is parsed")
    func disallowedUid() throws {
        let server = try TestServer(allowedUids: [getuid() == 4242 ? 4243 : 4242])
        try server.start()
        let response = try server.signed("GET", "/status")
        #expect(response.status == 403)
        #expect(response.errorCode == "peer_refused")
        #expect(server.log.contains("refused a peer"))
    }

    @Test("an oversized body is refused, with or without CONTENT_LENGTH")
    func oversizedBody() throws {
        let server = try TestServer()
        try server.start()
        let body = [UInt8](repeating: 0x20, count: 70_000)
        let declared = try server.signed("POST", "/operations", body: body)
        #expect(declared.status == 413)
        #expect(declared.errorCode == "body_too_large")
        let undeclared = try server.client.send(
            method: "POST", path: "/operations",
            headers: server.signer.headers(method: "POST", path: "/operations", body: body),
            body: body, contentLength: false)
        #expect(undeclared.status == 413)
    }

    @Test("too many parameters are refused")
    func tooManyParameters() throws {
        let server = try TestServer()
        try server.start()
        var headers = server.signer.headers(method: "GET", path: "/status")
        for index in 0..<100 { headers["X-Filler-\(index)"] = "x" }
        let response = try server.client.send(method: "GET", path: "/status", headers: headers)
        #expect(response.status == 431)
        #expect(response.errorCode == "parameters_too_large")
    }

    @Test("an unknown route and a wrong method are refused")
    func unknownRoute() throws {
        let server = try TestServer()
        try server.start()
        let unknown = try server.signed("GET", "/etc/passwd")
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "not_found")
        let wrongMethod = try server.signed("DELETE", "/status")
        #expect(wrongMethod.status == 405)
        let noJob = try server.signed("GET", "/jobs/nope")
        #expect(noJob.status == 404)
    }

    @Test("malformed JSON and unknown members are refused")
    func malformedJSON() throws {
        let server = try TestServer()
        try server.start()
        for body in [
            #"{"operation": "secure""#, "[1,2]", #"{"operation":"format-disk"}"#, #"{"operation":"secure","extra":1}"#,
        ] {
            let response = try server.signed("POST", "/operations", body: Array(body.utf8))
            #expect(response.status == 400, "\(body)")
            #expect(response.errorCode == "bad_request", "\(body)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(server.siteRoot)/releases/backup"))
    }

    @Test("hostile component paths are refused with bad_path and change nothing")
    func hostilePaths() throws {
        let server = try TestServer()
        try server.start()
        for path in ["../etc", "/etc", "mod/../../etc", "-rf", "mod/.git", "mod\u{0}x"] {
            let response = try server.post("/operations", ["operation": "secure", "securePath": path])
            #expect(response.status == 400, "\(path)")
            #expect(response.errorCode == "bad_path", "\(path)")
            let update = try server.post("/operations", ["operation": "update", "updatePath": path])
            #expect(update.errorCode == "bad_path", "\(path)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(server.siteRoot)/releases/backup"))
        let status = try server.signed("GET", "/status").json["site"] as? [String: Any]
        #expect(status?["phase"] as? String == "idle")
    }

    @Test("an option the operation does not take is refused with bad_request, naming it, and changes nothing")
    func optionNotTaken() throws {
        let server = try TestServer()
        try server.start()
        for (operation, member, value) in [
            ("switch", "comment", "x" as Any), ("secure", "updatePath", "mod"), ("rollback", "securityCopy", true),
            ("update", "securePath", "mod"), ("restore", "farmStage", "serve"),
            ("update", "targetRevision", "0123abcd"),
        ] {
            let response = try server.post("/operations", ["operation": operation, member: value])
            #expect(response.status == 400, "\(operation) \(member)")
            #expect(response.errorCode == "bad_request", "\(operation) \(member)")
            #expect(response.text.contains(member), "\(response.text)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(server.siteRoot)/releases/backup"))
        let status = try server.signed("GET", "/status").json["site"] as? [String: Any]
        #expect(status?["phase"] as? String == "idle")
    }

    @Test("a client that sends half a request and stalls does not keep another from being served")
    func stalledClient() throws {
        let server = try TestServer(workers: 2, limits: ["readTimeoutSeconds": 3])
        try server.start()
        let pid = try server.requestSidePid()
        let before = try Self.socketInodes(of: pid)
        let stalled = try server.client.connect()
        let whole = FastCGIClient.request(
            method: "GET", path: "/status", headers: server.signer.headers(method: "GET", path: "/status"))
        try stalled.write(Array(whole.prefix(40)))
        let started = Date()
        let response = try server.signed("GET", "/status")
        #expect(response.status == 200)
        #expect(Date().timeIntervalSince(started) < 1.5)
        // The connections the helper accepted (and the watchdog's duplicates) are close-on-exec.
        var sockets = 0
        for (entry, inode) in try Self.socketInodes(of: pid) where !before.values.contains(inode) {
            // A connection may close between the listing and this read (the one just answered).
            guard let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(entry)", encoding: .utf8) else {
                continue
            }
            sockets += 1
            let flags = info.split(separator: "\n").first { $0.hasPrefix("flags:") }.map {
                Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0
            }
            #expect((flags ?? 0) & Int(O_CLOEXEC) != 0, "fd \(entry) is not close-on-exec")
        }
        #expect(sockets >= 1)
        // The stalled client is cut at the read deadline, without a response.
        let cut = Date()
        let rest = stalled.readAll()
        #expect(rest.isEmpty)
        #expect(Date().timeIntervalSince(cut) < 6)
        // And the helper still serves.
        #expect(try server.signed("GET", "/status").status == 200)
    }

    @Test("more stalled connections than workers do not keep a status from being answered while they wait")
    func manyStalledClients() throws {
        let server = try TestServer(workers: 2, limits: ["readTimeoutSeconds": 30])
        try server.start()
        let whole = FastCGIClient.request(
            method: "GET", path: "/status", headers: server.signer.headers(method: "GET", path: "/status"))
        var stalled: [Connection] = []
        // Six from this process: three times the workers, below the bound per process (8).
        for index in 0..<6 {
            let connection = try server.client.connect()
            // Half of them send nothing, half send part of a request.
            if index % 2 == 1 { try connection.write(Array(whole.prefix(40))) }
            stalled.append(connection)
        }
        for _ in 0..<3 { #expect(try server.signed("GET", "/status").status == 200) }
        // Every stalled connection is still waiting (not cut to make room): the status did not
        // need their workers, because they never had one.
        for connection in stalled {
            var entry = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
            #expect(poll(&entry, 1, 0) == 0, "a stalled connection was answered or closed")
            connection.close()
        }
    }

    /// The sockets a process holds: descriptor number → `socket:[inode]`.
    static func socketInodes(of pid: Int32) throws -> [String: String] {
        var result: [String: String] = [:]
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(entry)")) ?? ""
            if target.hasPrefix("socket:") { result[entry] = target }
        }
        return result
    }

    @Test("garbage instead of FastCGI is dropped and the helper keeps serving")
    func garbage() throws {
        let server = try TestServer()
        try server.start()
        let connection = try server.client.connect()
        try connection.write(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(connection.readAll().isEmpty)
        #expect(try server.signed("GET", "/status").status == 200)
    }

    // MARK: Lifecycle

    @Test("a second instance refuses to start on a live socket; a stale socket file is replaced")
    func singleInstance() throws {
        let server = try TestServer()
        try server.start()
        let second = try server.launch()
        second.waitUntilExit()
        #expect(second.terminationStatus != 0)
        #expect(server.log.contains("another deliveryd answers"))
        #expect(try server.signed("GET", "/status").status == 200)
        // SIGTERM: the helper stops and removes its socket.
        server.stop()
        #expect(server.process?.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: server.socketPath))
        // A stale socket file (nobody listening) is removed at start.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(server.socketPath.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: server.socketPath))
        try server.start()
        #expect(try server.signed("GET", "/status").status == 200)
        var info = stat()
        lstat(server.socketPath, &info)
        #expect(info.st_mode & 0o777 == 0o660)
    }

    @Test("SIGTERM lets a request under way finish, then the helper exits")
    func gracefulStop() throws {
        let server = try TestServer()
        try server.start()
        let bytes = FastCGIClient.request(
            method: "GET", path: "/status", headers: server.signer.headers(method: "GET", path: "/status"))
        let connection = try server.client.connect()
        try connection.write(Array(bytes.prefix(bytes.count / 2)))
        usleep(200_000)
        let process = try #require(server.process)
        kill(process.processIdentifier, SIGTERM)
        usleep(200_000)
        #expect(process.isRunning)
        try connection.write(Array(bytes.suffix(from: bytes.count / 2)))
        let response = try connection.readResponse()
        #expect(response.status == 200)
        connection.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(server.log.contains("stopping on signal"))
        #expect(!FileManager.default.fileExists(atPath: server.socketPath))
    }

    // MARK: Jobs

    @Test(
        "secure runs as a job whose progress is read back to its end; a second delivery is refused meanwhile",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func secureJob() throws {
        let server = try TestServer(productionFiles: 3000)
        try server.start()
        let started = try server.post("/operations", ["operation": "secure", "securityCopy": false])
        #expect(started.status == 202, "\(started.text)")
        let id = try #require(started.json["job"] as? String)
        let second = try server.post("/operations", ["operation": "secure"])
        #expect(second.status == 409, "\(second.text)")
        #expect(second.errorCode == "lock_held")
        let holder = (second.json["error"] as? [String: Any])?["holder"] as? [String: Any]
        #expect(holder?["name"] as? String == "Test Admin")
        // Status stays answerable while the job runs.
        #expect(try server.signed("GET", "/status").status == 200)
        let (view, lines) = try server.follow(job: id)
        #expect(view["state"] as? String == "succeeded", "\(view)")
        #expect(!lines.isEmpty)
        let steps = view["steps"] as? [[String: Any]] ?? []
        #expect(steps.first?["operation"] as? String == "secure")
        #expect(steps.first?["fraction"] as? Double == 1)
        #expect((view["result"] as? [String: Any])?["phase"] as? String == "secured")
        #expect(FileManager.default.fileExists(atPath: "\(server.siteRoot)/releases/backup/mod/m0/f0.php"))
        let history = try server.signed("GET", "/history", query: "limit=5")
        let records = history.json["records"] as? [[String: Any]] ?? []
        let record = records.first { $0["id"] as? String == id }
        let actor = record?["actor"] as? [String: Any]
        #expect(actor?["name"] as? String == "Test Admin")
        #expect(actor?["source"] as? String == "moodle")
        #expect(actor?["moodleUserId"] as? Int == 7)
        // What the kernel says of the peer, beside what the request claims.
        #expect(actor?["peerUid"] as? Int == Int(getuid()))
        #expect(actor?["claimed"] as? Bool == true)
        // Offsets: reading from the end gives no lines.
        let tail = try server.signed("GET", "/jobs/\(id)", query: "offset=\(lines.count)")
        #expect((tail.json["lines"] as? [String])?.isEmpty == true)
    }
}

extension DeliveryServerTests {
    @Test(
        "SIGTERM while a job runs: the helper stops, and the next start reports the operation as interrupted",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func shutdownDuringJob() throws {
        // Enough files that the copy is still running when the signal comes, even on a busy machine.
        let server = try TestServer(productionFiles: 12000)
        try server.start()
        let started = try server.post("/operations", ["operation": "secure"])
        #expect(started.status == 202, "\(started.text)")
        // Stop while the engine holds the operation (status shows it running).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let site = try server.signed("GET", "/status").json["site"] as? [String: Any]
            if site?["running"] != nil { break }
            usleep(2_000)
        }
        server.stop()
        #expect(server.process?.terminationStatus == 0)
        #expect(server.log.contains("stopping while a job runs"), "\(server.log)")
        try server.start()
        let site = try server.signed("GET", "/status").json["site"] as? [String: Any]
        let interrupted = site?["interrupted"] as? [String: Any]
        #expect(interrupted?["operation"] as? String == "secure", "\(site ?? [:])")
        #expect((site?["allowed"] as? [String])?.contains("recover") == true)
        // recover records it and the site can be secured again.
        let recover = try server.post("/operations", ["operation": "recover"])
        #expect(recover.status == 202, "\(recover.text)")
        let id = try #require(recover.json["job"] as? String)
        let (view, _) = try server.follow(job: id)
        #expect(view["state"] as? String == "succeeded", "\(view)")
    }
}

extension DeliveryServerTests {
    @Test(
        "a flood of rollbacks runs one rollback job: the others are answered with it",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func rollbackFlood() throws {
        let server = try TestServer(productionFiles: 200)
        try server.start()
        let secured = try server.post("/operations", ["operation": "secure"])
        _ = try server.follow(job: try #require(secured.json["job"] as? String))
        // Twenty at once, from as many threads (the web user's flood).
        let answers = FloodAnswers()
        nonisolated(unsafe) let shared = server  // only read from the threads
        DispatchQueue.concurrentPerform(iterations: 20) { _ in
            guard let response = try? shared.post("/operations", ["operation": "rollback"]) else { return }
            let holder = (response.json["error"] as? [String: Any])?["holder"] as? [String: Any]
            answers.add(
                status: response.status, job: response.json["job"] as? String ?? holder?["job"] as? String,
                holding: holder?["operation"] as? String)
        }
        let all = answers.all
        #expect(all.count == 20)
        let started = Set(all.filter { $0.status == 202 }.compactMap(\.job))
        let refused = all.filter { $0.status == 409 }
        #expect(!started.isEmpty)
        #expect(started.count + refused.count == 20, "\(all)")
        // A refused one names the rollback job that runs: one of those started.
        #expect(refused.allSatisfy { $0.holding == "rollback" && $0.job.map(started.contains) == true }, "\(refused)")
        #expect(started.count < 20, "every rollback got a job of its own")
        for job in started { _ = try server.follow(job: job) }
    }
}

/// The answers of a flood of requests, gathered from several threads.
final class FloodAnswers: @unchecked Sendable {
    struct Answer {
        var status: Int
        var job: String?
        var holding: String?
    }

    private let lock = NSLock()
    private var answers: [Answer] = []

    func add(status: Int, job: String?, holding: String?) {
        lock.lock()
        answers.append(Answer(status: status, job: job, holding: holding))
        lock.unlock()
    }

    var all: [Answer] {
        lock.lock()
        defer { lock.unlock() }
        return answers
    }
}
