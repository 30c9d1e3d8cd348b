import DeliveryCore
import Foundation
import Testing

@testable import DeliveryServer

#if canImport(Glibc)
    import Glibc
#endif

/// The farm's socket of a node's helper, against the real `deliveryd`: `deliveryctl follow` run
/// as the farm account passes the coordinator's requests on; the web socket's peer and key cannot
/// use it, nor the farm's key the web socket.
@Suite(
    "The farm socket", .serialized,
    .enabled(if: getuid() == 0, "needs root: the farm account is another user, the helper runs split"))
struct FarmSocketTests {
    /// Runs `deliveryctl follow` as the farm account (the way sshd runs it), with `request` on its
    /// standard input; returns its exit status and its one line of answer.
    static func follow(_ server: TestServer, _ request: String) throws -> (status: Int32, reply: FarmReply?) {
        let deliveryctl = URL(fileURLWithPath: TestServer.binary).deletingLastPathComponent()
            .appendingPathComponent("deliveryctl").path
        let input = "\(server.directory)/farm-request.json"
        try request.write(toFile: input, atomically: true, encoding: .utf8)
        chmod(input, 0o644)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=\(TestServer.farmPeer.uid)", "--regid=\(TestServer.farmPeer.gid)", "--clear-groups", "--",
            deliveryctl, "follow", "--site", "school", "--farm-socket", server.farmSocketPath, "--farm-key",
            server.farmKeyPath,
        ]
        process.standardInput = FileHandle(forReadingAtPath: input)
        let output = Pipe()
        process.standardOutput = output
        process.environment = ["PATH": "/usr/bin:/bin"]
        try process.run()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        return (process.terminationStatus, try? JSONCoding.decode(FarmReply.self, from: Array(line.utf8)))
    }

    static func json(_ text: String?) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data((text ?? "").utf8))) as? [String: Any] ?? [:]
    }

    @Test(
        "follow, as the farm account, asks the node's helper for its status and runs an operation recorded with the farm delivery"
    )
    func followPassesOn() throws {
        let server = try TestServer(farm: true)
        try server.start()
        let status = try Self.follow(server, #"{"version": 1, "request": "status"}"#)
        #expect(status.status == 0)
        #expect(status.reply?.status == 200)
        #expect(Self.json(status.reply?.answer)["site"] != nil, "\(String(describing: status.reply))")

        let delivery = "F20261204-farmtest"
        let call = #"{\"operation\": \"secure\"}"#
        let secured = try Self.follow(
            server, #"{"version": 1, "request": "operation", "farmDelivery": "\#(delivery)", "call": "\#(call)"}"#)
        #expect(secured.status == 0)
        #expect(secured.reply?.status == 200)
        let job = Self.json(secured.reply?.answer)
        #expect(job["state"] as? String == "succeeded", "\(job)")
        let actor = job["actor"] as? [String: Any] ?? [:]
        #expect(actor["source"] as? String == "farm")
        #expect(actor["farmDelivery"] as? String == delivery)
        #expect(actor["peerUid"] as? Int == Int(TestServer.farmPeer.uid))

        // The node's audit log (its history) ties the operation to the farm delivery.
        let history = try server.signed("GET", "/history", query: "limit=1")
        let record = (history.json["records"] as? [[String: Any]])?.first ?? [:]
        let recorded = record["actor"] as? [String: Any] ?? [:]
        #expect(recorded["farmDelivery"] as? String == delivery, "\(record)")

        // A database restore is never taken on the farm socket, nor a second factor.
        for member in [#"\"confirmDatabaseRestore\": true"#, #"\"secondFactorCode\": \"123456\""#] {
            let restore = try Self.follow(
                server,
                #"{"version": 1, "request": "operation", "farmDelivery": "\#(delivery)", "call": "{\"operation\": \"rollback\", \#(member)}"}"#
            )
            #expect(restore.reply?.status == 400, "\(member): \(String(describing: restore.reply))")
            #expect(restore.reply?.answer?.contains("farm socket takes no") == true)
        }
        // A member of another operation is refused beside the farm's named revision, whichever
        // comes first; a named revision is the update's only.
        for call in [
            #"{\"operation\": \"update\", \"targetRevision\": \"0123abcd\", \"securityCopy\": true}"#,
            #"{\"confirmFailedRehearsal\": true, \"operation\": \"update\", \"targetRevision\": \"0123abcd\"}"#,
            #"{\"operation\": \"secure\", \"targetRevision\": \"0123abcd\"}"#,
            #"{\"operation\": \"update\", \"farmStage\": \"serve\"}"#,
            #"{\"farmStage\": \"finish\", \"operation\": \"cancel\"}"#,
        ] {
            let refused = try Self.follow(
                server, #"{"version": 1, "request": "operation", "farmDelivery": "\#(delivery)", "call": "\#(call)"}"#)
            #expect(refused.reply?.status == 400, "\(call): \(String(describing: refused.reply))")
            #expect(refused.reply?.answer?.contains("takes no member") == true, "\(call)")
        }
        // A stage of the lock-step upgrade is a restore's, and one of the two known.
        let unknownStage = try Self.follow(
            server,
            #"{"version": 1, "request": "operation", "farmDelivery": "\#(delivery)", "call": "{\"operation\": \"restore\", \"farmStage\": \"upgrade\"}"}"#
        )
        #expect(unknownStage.reply?.status == 400, "\(String(describing: unknownStage.reply))")
        #expect(unknownStage.reply?.answer?.contains("unknown farmStage") == true)
        // An operation without its farm delivery is refused by follow, changing nothing.
        let bare = try Self.follow(server, #"{"version": 1, "request": "operation", "call": "{}"}"#)
        #expect(bare.status == 2)
        #expect(bare.reply?.error?.code == "bad_request")
    }

    @Test("the web socket's peer and key cannot use the farm socket, nor the farm's key the web socket")
    func socketsApart() throws {
        let server = try TestServer(farm: true)
        try server.start()
        // The web socket's peer (this process) on the farm socket, signing with the farm's key: refused by uid.
        let onFarm = try HelperClient(socketPath: server.farmSocketPath, key: server.farmKey, userName: "web")
            .send(method: "GET", path: "/status")
        #expect(onFarm.status == 403)
        // The farm's key on the web socket: the signature does not match the web key.
        let onWeb = try HelperClient(socketPath: server.socketPath, key: server.farmKey, userName: "farm")
            .send(method: "GET", path: "/status")
        #expect(onWeb.status == 401)
        #expect(String(decoding: onWeb.body, as: UTF8.self).contains("bad_signature"))
        // The web key works on the web socket (the same client, so the refusals above are the sockets').
        let web = try HelperClient(socketPath: server.socketPath, key: server.key, userName: "web")
            .send(method: "GET", path: "/status")
        #expect(web.status == 200)
        // The farm socket is the farm account's group's, mode 0660.
        var info = stat()
        #expect(stat(server.farmSocketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660)
        #expect(info.st_gid == TestServer.farmPeer.gid)
        // Stopped: both socket files are gone.
        server.stop()
        #expect(access(server.farmSocketPath, F_OK) != 0)
    }

    @Test("a farm listener must be apart from the web one: its own socket, key, peers and group")
    func configurationRefusals() throws {
        let web = ServerConfiguration(
            socketPath: "/run/d/web.sock", socketGroup: "www-data", allowedUids: [33], keyFile: "/etc/d/key",
            siteConfiguration: "/etc/d/site.json")
        let good = FarmListenerConfiguration(
            socketPath: "/run/d-farm.sock", socketGroup: "moodle-farm", allowedUids: [990], keyFile: "/etc/d/farm.key")
        var configuration = web
        configuration.farm = good
        #expect(throws: Never.self) { try configuration.validate() }
        for bad in [
            FarmListenerConfiguration(
                socketPath: "/run/d/web.sock", socketGroup: "moodle-farm", allowedUids: [990],
                keyFile: "/etc/d/farm.key"),
            FarmListenerConfiguration(
                socketPath: "/run/d-farm.sock", socketGroup: "moodle-farm", allowedUids: [990], keyFile: "/etc/d/key"),
            FarmListenerConfiguration(
                socketPath: "/run/d-farm.sock", socketGroup: "moodle-farm", allowedUids: [33],
                keyFile: "/etc/d/farm.key"),
            FarmListenerConfiguration(
                socketPath: "/run/d-farm.sock", socketGroup: "moodle-farm", allowedUids: [0], keyFile: "/etc/d/farm.key"
            ),
            FarmListenerConfiguration(
                socketPath: "/run/d-farm.sock", socketGroup: "www-data", allowedUids: [990], keyFile: "/etc/d/farm.key"),
            FarmListenerConfiguration(
                socketPath: "relative.sock", socketGroup: "moodle-farm", allowedUids: [990], keyFile: "/etc/d/farm.key"),
        ] {
            configuration.farm = bad
            #expect(throws: ServerStartError.self) { try configuration.validate() }
        }
    }

    @Test("a request on the farm socket is marked farm; an operation must name its farm delivery")
    func marking() throws {
        var actor = Actor(name: "farm coordinator", source: "moodle", moodleUserId: 0, claimed: true)
        var query = ["farmDelivery": "F20261204-abcdef", "offset": "3"]
        try FarmEndpoint.mark(&actor, method: "POST", query: &query)
        #expect(actor.source == "farm" && actor.farmDelivery == "F20261204-abcdef" && query == ["offset": "3"])
        var noId: [String: String] = [:]
        #expect(throws: APIError.self) { try FarmEndpoint.mark(&actor, method: "POST", query: &noId) }
        var badId = ["farmDelivery": "x;rm"]
        #expect(throws: APIError.self) { try FarmEndpoint.mark(&actor, method: "GET", query: &badId) }
        var reading: [String: String] = [:]
        var reader = Actor(name: "farm coordinator", source: "moodle")
        try FarmEndpoint.mark(&reader, method: "GET", query: &reading)
        #expect(reader.source == "farm" && reader.farmDelivery == nil)
    }
}
