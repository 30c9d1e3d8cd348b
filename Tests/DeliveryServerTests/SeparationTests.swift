import DeliveryCore
import Foundation
import Logging
import Testing

@testable import DeliveryServer

#if canImport(Glibc)
    import Glibc
#endif

/// The split helper: the request side as a user of its own, the engine in the root monitor, and
/// the monitor's closed set of calls, each checked again.
@Suite("privilege separation")
struct SeparationTests {
    /// The lines of `/proc/PID/status` by name.
    static func processStatus(_ pid: Int32) throws -> [String: String] {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return result
    }

    @Test(
        "as root the helper splits: requests are served by its own user, with no capability, no new privileges, not dumpable",
        .enabled(if: getuid() == 0, "only root can split"))
    func requestSideHoldsNoPrivilege() throws {
        let server = try TestServer()
        try server.start()
        let monitor = try #require(server.process?.processIdentifier)
        let requestSide = try server.requestSidePid()
        #expect(requestSide != monitor)
        // The request side drops its rights before it accepts: once it has answered, they are gone
        // (read earlier, its status may still show the moment between fork and the drop).
        #expect(try server.signed("GET", "/status").status == 200)
        let nobody = try #require(getpwnam(TestServer.requestUser)).pointee
        let status = try Self.processStatus(requestSide)
        let uid = "\(nobody.pw_uid)"
        let gid = "\(nobody.pw_gid)"
        #expect(status["Uid"]?.split(whereSeparator: \.isWhitespace).map(String.init) == [uid, uid, uid, uid])
        #expect(status["Gid"]?.split(whereSeparator: \.isWhitespace).map(String.init) == [gid, gid, gid, gid])
        #expect(status["Groups"] == gid)
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] { #expect(status[set] == "0000000000000000", "\(set)") }
        #expect(status["NoNewPrivs"] == "1")
        #expect(try Self.processStatus(monitor)["Uid"]?.hasPrefix("0\t") == true)
        // Not dumpable: another process of the same user cannot read its memory or environment
        // (the key is in there).
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        reader.arguments = [
            "--reuid", uid, "--regid", gid, "--clear-groups", "/bin/sh", "-c",
            "cat /proc/\(requestSide)/environ >/dev/null 2>&1 || exit 3; exit 0",
        ]
        try reader.run()
        reader.waitUntilExit()
        #expect(reader.terminationStatus == 3, "the request side's environ was readable by its own user")
        // And the engine answers through the monitor: status, then a job with its progress.
        #expect(try server.signed("GET", "/status").status == 200)
        let started = try server.post("/operations", ["operation": "secure"])
        #expect(started.status == 202, "\(started.text)")
        let (view, lines) = try server.follow(job: try #require(started.json["job"] as? String))
        #expect(view["state"] as? String == "succeeded", "\(view)")
        #expect(!lines.isEmpty)
        let history = try server.signed("GET", "/history", query: "limit=5")
        #expect((history.json["records"] as? [Any])?.isEmpty == false)
    }

    @Test(
        "the request side killed, the monitor stops too, with a failure status, and removes the socket file",
        .enabled(if: getuid() == 0, "only root can split"))
    func requestSideKilled() throws {
        let server = try TestServer()
        try server.start()
        let process = try #require(server.process)
        kill(try server.requestSidePid(), SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGKILL)
        #expect(!FileManager.default.fileExists(atPath: server.socketPath))
    }

    @Test(
        "requestUser may not be root, a peer, the web user or the code owner, and must exist",
        .enabled(if: getuid() == 0, "only root can split"))
    func requestUserRefusals() throws {
        let server = try TestServer()
        let configuration = try ServerConfiguration.load(from: server.configurationPath)
        let site = try SiteConfiguration.load(from: configuration.siteConfiguration)
        for (name, expected) in [
            ("root", "is root"), ("no-such-user-here", "does not exist"),
        ] {
            var changed = configuration
            changed.requestUser = name
            #expect {
                _ = try SeparatedServer.requestUserIdentity(changed, site: site)
            } throws: { ($0 as? ServerStartError)?.message.contains(expected) == true }
        }
        var peer = configuration
        peer.allowedUids.append(try #require(getpwnam("nobody")).pointee.pw_uid)
        #expect {
            _ = try SeparatedServer.requestUserIdentity(peer, site: site)
        } throws: { ($0 as? ServerStartError)?.message.contains("a peer of the socket") == true }
        var webSite = site
        webSite.webUser = "nobody"
        #expect {
            _ = try SeparatedServer.requestUserIdentity(configuration, site: webSite)
        } throws: { ($0 as? ServerStartError)?.message.contains("the web user") == true }
        #expect(try SeparatedServer.requestUserIdentity(configuration, site: site).name == "nobody")
    }

    /// A monitor on one end of a channel, as `deliveryd` runs it, in this process.
    final class MonitorHarness {
        let server: TestServer
        let channel: Int32
        let client: MonitorClient

        init(farmPeers: Set<UInt32> = []) throws {
            server = try TestServer()
            let configuration = try ServerConfiguration.load(from: server.configurationPath)
            let engine = try DeliveryServer.makeEngine(configuration, logger: Logger(label: "test"))
            let (monitorEnd, requestEnd) = try System.socketPair(seqpacket: true)
            channel = requestEnd
            client = MonitorClient(channel: requestEnd)
            let monitor = Monitor(engine: engine, logger: Logger(label: "test"), farmPeers: farmPeers)
            try System.startDetachedThread {
                monitor.serve(channel: monitorEnd)
                System.close(monitorEnd)
            }
        }

        deinit { System.close(channel) }

        /// Sends raw bytes as a call and returns the monitor's last frame.
        func raw(_ bytes: [UInt8], length: UInt32? = nil) throws -> MonitorReply? {
            let (ours, theirs) = try System.socketPair()
            defer { System.close(ours) }
            try System.sendDescriptor(theirs, over: channel)
            System.close(theirs)
            let count = length ?? UInt32(bytes.count)
            let header: [UInt8] = [
                UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff),
            ]
            _ = System.sendAll(ours, header + bytes)
            var last: MonitorReply?
            while let frame = try MonitorFrame.read(from: ours, limit: MonitorFrame.maxReplyBytes) {
                last = try JSONCoding.decode(MonitorReply.self, from: frame)
            }
            return last
        }
    }

    static func refusedAsBadRequest(_ reply: MonitorReply?) -> Bool {
        if case .failure(let code, _, _) = reply { return code == .badRequest }
        return false
    }

    @Test("the monitor answers its closed set: status, history, an operation with its progress, a refusal")
    func monitorAnswers() throws {
        let harness = try MonitorHarness()
        #expect(try harness.client.status().phase == .idle)
        let actor = Actor(name: "Ada", source: "moodle", moodleUserId: 2, peerUid: getuid(), claimed: true)
        harness.client.recordRefusal(try OperationRequest(.restore, actor: actor), DeliveryError(.wrongState, "no"))
        let records = try harness.client.history(limit: 10, offset: 0)
        #expect(records.count == 1)
        if getuid() == 0 {
            let events = EventList()
            let outcome = try harness.client.perform(
                OperationRequest(.secure, actor: actor), id: OperationIdentifier.make(), progress: { events.add($0) })
            #expect(outcome.operation == .secure)
            #expect(events.all.contains(.stepStarted(.secure)))
        }
    }

    @Test("the monitor refuses what the request side should never send, changing nothing")
    func monitorRefusals() throws {
        let harness = try MonitorHarness()
        let audit = "\(harness.server.directory)/state/audit.log"
        let before = try? Data(contentsOf: URL(fileURLWithPath: audit))
        // Not JSON, two calls in one, a duplicate member, an unknown call, a frame too large.
        #expect(Self.refusedAsBadRequest(try harness.raw(Array("garbage".utf8))))
        #expect(Self.refusedAsBadRequest(try harness.raw(Array(#"{"status":{},"plan":{}}"#.utf8))))
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(Array(#"{"history":{"limit":1,"limit":1000000,"offset":0}}"#.utf8))))
        #expect(Self.refusedAsBadRequest(try harness.raw(Array(#"{"runShell":{"command":"id"}}"#.utf8))))
        #expect(Self.refusedAsBadRequest(try harness.raw([], length: UInt32(MonitorFrame.maxCallBytes + 1))))
        // Out of range, a job id that is no job id, an actor the responder never makes.
        #expect(throws: DeliveryError.self) { try harness.client.history(limit: 100_000, offset: 0) }
        let forged = Actor(name: "Ada", source: "cli", moodleUserId: 2)
        let claimed = Actor(name: "Ada", source: "moodle", moodleUserId: 2, peerUid: 33, claimed: true)
        for (request, job) in [
            (try OperationRequest(.rollback, actor: forged), OperationIdentifier.make()),
            (try OperationRequest(.rollback, actor: claimed), "../../etc"),
        ] {
            #expect(throws: DeliveryError.self) { try harness.client.perform(request, id: job, progress: { _ in }) }
        }
        // A request the request side could not have built (it parses before it sends): a path
        // out of the tree, a comment too long. Decoding it runs the same checks: refused.
        let valid = try OperationRequest(
            .runAll, actor: claimed, securePath: try ComponentPath("mod"), comment: "c")
        let call = String(
            decoding: try JSONCoding.encode(
                MonitorCall.perform(request: valid, job: OperationIdentifier.make()), pretty: false),
            as: UTF8.self)
        #expect((try? JSONCoding.decode(MonitorCall.self, from: Array(call.utf8))) != nil, "the valid call decodes")
        #expect(call.contains(#""securePath":"mod""#) && call.contains(#""comment":"c""#), "\(call)")
        for forgedCall in [
            call.replacingOccurrences(of: #""securePath":"mod""#, with: #""securePath":"..\/..\/etc""#),
            call.replacingOccurrences(of: #""securePath":"mod""#, with: #""securePath":"mod\/.git""#),
            call.replacingOccurrences(
                of: #""comment":"c""#,
                with: "\"comment\":\"\(String(repeating: "c", count: OperationRequest.commentLimit + 1))\""),
        ] {
            #expect(Self.refusedAsBadRequest(try harness.raw(Array(forgedCall.utf8))), "\(forgedCall.prefix(200))")
        }
        // A refusal record carrying more notices than any refusal has (its words go into the
        // audit log) is refused, and nothing is written.
        let flooded = DeliveryError(
            .wrongState, message: "no", notices: Array(repeating: Notice(.refusedState), count: 21))
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(
                    try JSONCoding.encode(
                        MonitorCall.refusal(
                            request: try OperationRequest(.restore, actor: claimed), code: flooded.code,
                            message: flooded.message, notices: flooded.notices), pretty: false))))
        // Only the helper's own timer delivers a named revision, from the schedule it keeps: the
        // request side can neither name one nor claim a request was scheduled.
        for impersonated in [
            try OperationRequest(.runAll, actor: claimed, targetRevision: "0123abcd"),
            try OperationRequest(.runAll, actor: claimed, scheduled: true),
        ] {
            #expect(
                Self.refusedAsBadRequest(
                    try harness.raw(
                        try JSONCoding.encode(
                            MonitorCall.perform(request: impersonated, job: OperationIdentifier.make()), pretty: false))
                ))
        }
        // A schedule set or cancelled in the name of an actor the responder never makes, a
        // report of a path: refused.
        let schedule = try ScheduleRequest(at: Date().addingTimeInterval(3600), revision: "0123abcd", actor: forged)
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(try JSONCoding.encode(MonitorCall.setSchedule(request: schedule), pretty: false))))
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(try JSONCoding.encode(MonitorCall.cancelSchedule(actor: forged), pretty: false))))
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(
                    try JSONCoding.encode(MonitorCall.report(deliveryId: "../../etc/passwd"), pretty: false))))
        // A farm request where the helper has no farm socket (this one), or claiming the plugin
        // from the farm's peer, or a farm request with a database restore: refused.
        let farmActor = Actor(
            name: "farm coordinator", source: "farm", moodleUserId: 0, peerUid: 1, claimed: true,
            farmDelivery: "F20261204-monitortest")
        for impersonated in [
            try OperationRequest(.secure, actor: farmActor),
            try OperationRequest(.rollback, actor: farmActor, confirmDatabaseRestore: true),
            try OperationRequest(.update, actor: farmActor, targetRevision: "0123abcd"),
            try OperationRequest(.restore, actor: claimed, farmStage: .finish),
        ] {
            #expect(
                Self.refusedAsBadRequest(
                    try harness.raw(
                        try JSONCoding.encode(
                            MonitorCall.perform(request: impersonated, job: OperationIdentifier.make()), pretty: false))
                ))
        }
        // A refusal record with a forged actor is not written either.
        harness.client.recordRefusal(try OperationRequest(.restore, actor: forged), DeliveryError(.wrongState, "no"))
        #expect((try? Data(contentsOf: URL(fileURLWithPath: audit))) == before)
        // And it still answers.
        #expect(try harness.client.status().phase == .idle)
    }

    @Test("on a farm node the monitor takes farm requests from the farm's peers only, and never a database restore")
    func monitorFarmRequests() throws {
        let harness = try MonitorHarness(farmPeers: [1])
        let farmActor = Actor(
            name: "farm coordinator", source: "farm", moodleUserId: 0, peerUid: 1, claimed: true,
            farmDelivery: "F20261204-monitortest")
        let fromWebPeer = Actor(
            name: "farm coordinator", source: "farm", moodleUserId: 0, peerUid: 33, claimed: true,
            farmDelivery: "F20261204-monitortest")
        let pluginFromFarmPeer = Actor(name: "Ada", source: "moodle", moodleUserId: 2, peerUid: 1, claimed: true)
        for refused in [
            try OperationRequest(.rollback, actor: farmActor, confirmDatabaseRestore: true),
            try OperationRequest(.rollback, actor: farmActor, secondFactorCode: "123456"),
            try OperationRequest(.secure, actor: fromWebPeer),
            try OperationRequest(.secure, actor: pluginFromFarmPeer),
            try OperationRequest(.runAll, actor: farmActor, targetRevision: "0123abcd"),
            try OperationRequest(.restore, actor: pluginFromFarmPeer, farmStage: .serve),
        ] {
            #expect(
                Self.refusedAsBadRequest(
                    try harness.raw(
                        try JSONCoding.encode(
                            MonitorCall.perform(request: refused, job: OperationIdentifier.make()), pretty: false))),
                "\(refused.operation) \(refused.actor.source) \(refused.actor.peerUid ?? 0)")
        }
        let schedule = try ScheduleRequest(at: Date().addingTimeInterval(3600), revision: "0123abcd", actor: farmActor)
        #expect(
            Self.refusedAsBadRequest(
                try harness.raw(try JSONCoding.encode(MonitorCall.setSchedule(request: schedule), pretty: false))))
        // What a farm coordinator does send is run.
        let outcome = try harness.client.perform(
            try OperationRequest(.secure, actor: farmActor), id: OperationIdentifier.make(), progress: { _ in })
        #expect(outcome.operation == .secure)
        #expect(try harness.client.status().phase == .secured)
    }
}

/// Progress events gathered from the monitor's answer.
final class EventList: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ProgressEvent] = []

    func add(_ event: ProgressEvent) {
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    var all: [ProgressEvent] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }
}
