import DeliveryCore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Emergency console", .serialized)
struct ConsoleTests {
    @Test("a signed request gets a console token; the console page, status and rollback need it")
    func consoleNeedsToken() throws {
        let server = try TestServer()
        try server.start()
        // The page itself holds no data and needs no token; its only script is pinned by hash.
        let page = try server.client.send(method: "GET", path: "/delivery-console/")
        #expect(page.status == 200)
        #expect(page.headers["Content-Type"]?.hasPrefix("text/html") == true)
        #expect(page.headers["Content-Security-Policy"]?.contains("script-src 'sha256-") == true)
        #expect(page.text.contains("Emergency rollback"))
        // Its shell commands name this site's configuration (a server may have several sites).
        #expect(page.text.contains("<code>deliveryctl status --config \(server.directory)/site.json</code>"))

        // Without a token, or with a wrong one, no data and no rollback.
        for token in [nil, String(repeating: "a", count: 64), "short", "../x"] {
            let headers = token.map { ["X-Delivery-Console-Token": $0] } ?? [:]
            let status = try server.client.send(method: "GET", path: "/delivery-console/status", headers: headers)
            #expect(status.status == 401)
            #expect(status.errorCode == "unauthenticated")
            let rollback = try server.client.send(method: "POST", path: "/delivery-console/rollback", headers: headers)
            #expect(rollback.status == 401)
        }
        // Issuing a token needs a valid signature.
        let unsigned = try server.client.send(method: "POST", path: "/console-tokens")
        #expect(unsigned.status == 401)
        let issued = try server.post("/console-tokens", ["lifetimeSeconds": 600])
        #expect(issued.status == 201, "\(issued.text)")
        let token = try #require(issued.json["token"] as? String)
        #expect(token.count == 64)
        #expect(issued.json["path"] as? String == "/delivery-console/")

        let status = try server.client.send(
            method: "GET", path: "/delivery-console/status", headers: ["X-Delivery-Console-Token": token])
        #expect(status.status == 200, "\(status.text)")
        #expect(status.json["administrator"] as? String == "Test Admin")
        #expect(((status.json["site"] as? [String: Any])?["site"] as? [String: Any])?["phase"] as? String == "idle")
        // A wrong method is refused.
        let wrong = try server.client.send(
            method: "DELETE", path: "/delivery-console/status", headers: ["X-Delivery-Console-Token": token])
        #expect(wrong.status == 405)
        // No copy yet: the rollback job starts and fails with copy_missing, audited under the admin's name.
        let rollback = try server.client.send(
            method: "POST", path: "/delivery-console/rollback", headers: ["X-Delivery-Console-Token": token])
        #expect(rollback.status == 202, "\(rollback.text)")
        let id = try #require(rollback.json["job"] as? String)
        let (view, _) = try server.follow(job: id)
        #expect(view["state"] as? String == "failed")
        let history = try server.signed("GET", "/history", query: "limit=1")
        let record = (history.json["records"] as? [[String: Any]])?.first
        #expect((record?["actor"] as? [String: Any])?["source"] as? String == "console")
        #expect((record?["actor"] as? [String: Any])?["name"] as? String == "Test Admin")
    }

    @Test(
        "the console follows a job and its rollback serves the backup copy",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func consoleRollback() throws {
        let server = try TestServer()
        try server.start()
        let secured = try server.post("/operations", ["operation": "secure"])
        let secureJob = try #require(secured.json["job"] as? String)
        _ = try server.follow(job: secureJob)
        let token = try #require(try server.post("/console-tokens", [:]).json["token"] as? String)
        let rollback = try server.client.send(
            method: "POST", path: "/delivery-console/rollback", headers: ["X-Delivery-Console-Token": token])
        let id = try #require(rollback.json["job"] as? String)
        let (view, _) = try server.follow(job: id)
        #expect(view["state"] as? String == "succeeded", "\(view)")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: "\(server.siteRoot)/current")
        #expect(target == "releases/backup")
        let status = try server.client.send(
            method: "GET", path: "/delivery-console/status", headers: ["X-Delivery-Console-Token": token])
        let job = status.json["job"] as? [String: Any]
        #expect(job?["id"] as? String == id)
        #expect(job?["state"] as? String == "succeeded")
    }
}

extension ConsoleTests {
    /// Makes the state of a delivery whose upgrade changed the database and whose window closed:
    /// a rollback would restore the snapshot and lose what users wrote since.
    static func closeWindowAfterUpgrade(_ server: TestServer) throws {
        let file = "\(server.directory)/state/state.json"
        var state = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        let copies = try #require(state["copies"] as? [String: Any])
        let security = try #require(copies["security"] as? [String: Any])
        let dump = "\(server.directory)/state/snapshot.pgdump"
        try Data("not a real dump".utf8).write(to: URL(fileURLWithPath: dump))
        state["databaseAhead"] = true
        state["deliveryWindowOpen"] = false
        state["snapshot"] = [
            "id": "s1", "file": dump, "databaseType": "pgsql", "database": "moodle", "tableCount": 3,
            "takenAt": "2026-11-25T15:56:50.000Z", "sizeBytes": 15, "seconds": 0.1,
            "codeRevision": security["revision"] ?? NSNull(),
        ]
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: file))
    }

    @Test(
        "the console asks for the administrator's second factor before a database restore outside the window",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func consoleSecondFactor() throws {
        let server = try TestServer()
        try server.start()
        let secured = try server.post("/operations", ["operation": "secure", "securityCopy": true])
        _ = try server.follow(job: try #require(secured.json["job"] as? String))
        try Self.closeWindowAfterUpgrade(server)
        let token = try #require(try server.post("/console-tokens", [:]).json["token"] as? String)
        let page = try server.client.send(method: "GET", path: "/delivery-console/")
        #expect(page.text.contains("Code of your authenticator app"))

        func rollback(_ code: String?) throws -> [String: Any] {
            var headers = ["X-Delivery-Console-Token": token]
            if let code { headers["X-Delivery-Second-Factor"] = code }
            let started = try server.client.send(
                method: "POST", path: "/delivery-console/rollback", query: "confirmDatabaseRestore=1",
                headers: headers)
            return try server.follow(job: try #require(started.json["job"] as? String)).0
        }
        let error = { (view: [String: Any]) in (view["error"] as? [String: Any])?["code"] as? String }
        #expect(error(try rollback(nil)) == "second_factor_required")
        let enrolment = try SecondFactor(stateDirectory: "\(server.directory)/state").enrol(
            moodleUserId: 7, name: "Test Admin")
        let secret = try #require(Base32.decode(enrolment.secret))
        let now = TOTP.step(at: Date())
        #expect(error(try rollback(TOTP.code(secret: secret, step: now - 100))) == "second_factor_refused")
        // The right code passes the second factor: the (fake) snapshot's restore is what fails next.
        let done = try rollback(TOTP.code(secret: secret, step: now))
        #expect(error(done)?.hasPrefix("second_factor") == false, "\(done)")
        let history = try server.signed("GET", "/history", query: "limit=3")
        let codes = (history.json["records"] as? [[String: Any]])?.compactMap { $0["errorCode"] as? String }
        #expect(codes?.contains("second_factor_refused") == true)
    }
}

@Suite("Refusals at the API")
struct APIRefusalAuditTests {
    @Test("a hostile path refused by the helper itself is written to the audit log")
    func hostilePathAudited() throws {
        let server = try TestServer()
        try server.start()
        let refused = try server.post("/operations", ["operation": "secure", "securePath": "../etc"])
        #expect(refused.status == 400)
        #expect(refused.errorCode == "bad_path")
        let history = try server.signed("GET", "/history", query: "limit=1")
        let record = try #require((history.json["records"] as? [[String: Any]])?.first)
        #expect(record["result"] as? String == "refused")
        #expect(record["errorCode"] as? String == "bad_path")
        #expect((record["actor"] as? [String: Any])?["name"] as? String == "Test Admin")
    }
}

@Suite("systemd socket activation")
struct SocketActivationTests {
    @Test(
        "deliveryd serves on the listening socket systemd passes (systemd-socket-activate)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
    func socketActivation() throws {
        let server = try TestServer()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        process.arguments = ["--listen=\(server.socketPath)", TestServer.binary, "--config", server.configurationPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var answered: ClientResponse?
        let deadline = Date().addingTimeInterval(15)
        while answered == nil, Date() < deadline {
            answered = try? server.signed("GET", "/status")
            if answered == nil { usleep(50_000) }
        }
        let status = try #require(answered)
        #expect(status.status == 200, "\(status.text)")
        #expect(((status.json["site"] as? [String: Any])?["phase"] as? String) == "idle")
    }
}
