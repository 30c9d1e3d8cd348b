import Foundation

/// The two ends of a farm's transport: `FarmChannel` asks a node over OpenSSH, `FarmFollower`
/// answers on the node (`deliveryctl follow`, the forced command of the node's farm account).
public enum FarmFollower {
    /// The most bytes of one request.
    public static let requestLimit = 64 * 1024

    /// The answer to what the coordinator sent. `originalCommand` is what the client asked sshd to
    /// run (`SSH_ORIGINAL_COMMAND`): the coordinator asks for none, so anything there is refused.
    /// `helper` reaches the node's helper through its farm socket (nil, with the reason, when this
    /// node cannot: no farm socket configured, the key unreadable).
    public static func answer(
        _ input: [UInt8], site: String, originalCommand: String?,
        helper: Result<HelperClient, FarmError> = .failure(FarmError(code: "not_following", message: "no farm socket"))
    ) -> FarmReply {
        if let originalCommand, !originalCommand.isEmpty {
            return refusal(
                "command_given",
                "this account runs deliveryctl follow only; it takes its request on standard input, not the command '\(originalCommand.prefix(80))'"
            )
        }
        guard input.count <= requestLimit else {
            return refusal("bad_request", "the request is over \(requestLimit) bytes")
        }
        let request: FarmRequest
        do {
            request = try JSONCoding.decode(FarmRequest.self, from: input)
        } catch {
            return refusal("bad_request", "the request is not a farm request: \(error)")
        }
        guard request.version == 1 else {
            return refusal(
                "unsupported_version", "this node speaks version 1 of the farm protocol, not \(request.version)")
        }
        if let id = request.farmDelivery, !isDeliveryId(id) {
            return refusal("bad_request", "farmDelivery must be 8 to 64 letters, digits, '-' or '_'")
        }
        switch request.request {
        case "hello":
            return FarmReply(site: site, product: ProductVersion.number)
        case "status", "operation":
            switch helper {
            case .failure(let error): return FarmReply(error: error)
            case .success(let client): return pass(request, to: client)
            }
        default:
            return refusal(
                "unknown_request",
                "'\(request.request.prefix(40))' is not a farm request (hello, status, operation)")
        }
    }

    /// Answers every request of one connection, one line each, in order, until its input ends:
    /// `next` gives the next request line (nil at the end), `write` sends an answer line. A
    /// connection without any request is answered as an empty request; one whose input cannot be
    /// read, or that asked for a command, is answered once and ends.
    /// - Returns: true when every request was answered without a refusal.
    public static func serve(
        next: () throws -> [UInt8]?, write: ([UInt8]) -> Void, site: String, originalCommand: String?,
        helper: Result<HelperClient, FarmError>
    ) -> Bool {
        var answered = 0
        var refused = false
        while true {
            let reply: FarmReply
            var last = false
            do {
                guard let line = try next() ?? (answered == 0 ? [] : nil) else { break }
                reply = answer(line, site: site, originalCommand: originalCommand, helper: helper)
            } catch {
                reply = refusal("bad_request", "cannot read the request: \(error)")
                last = true
            }
            answered += 1
            write(((try? JSONCoding.encode(reply, pretty: false)) ?? []) + [10])
            if reply.error != nil { refused = true }
            if last || reply.error?.code == "command_given" { break }
        }
        return !refused
    }

    /// A farm delivery's id: 8 to 64 letters, digits, `-` or `_` (the node's helper checks it too).
    public static func isDeliveryId(_ id: String) -> Bool {
        (8...64).contains(id.utf8.count)
            && id.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || $0 == 45 || $0 == 95
            }
    }

    /// The query member that names the farm delivery to the node's helper.
    public static let deliveryQueryMember = "farmDelivery"

    /// How long each question about a running job waits for its end on the helper
    /// (`GET /jobs/{id}?wait=N`): the answer comes as soon as the job ends.
    static let jobWaitSeconds = 2
    /// The pause before asking again when the helper answered at once while the job still ran
    /// (it waits for less than asked, or not at all).
    static let pollSeconds = 0.05

    /// `status` and `operation` passed on to the node's helper; an operation is waited for, and its
    /// finished job is the answer.
    static func pass(_ request: FarmRequest, to helper: HelperClient) -> FarmReply {
        let delivery = request.farmDelivery.map { "\(deliveryQueryMember)=\($0)" }
        do throws(DeliveryError) {
            if request.request == "status" {
                let response = try helper.send(method: "GET", path: "/\(request.request)", query: delivery ?? "")
                return FarmReply(status: response.status, answer: String(decoding: response.body, as: UTF8.self))
            }
            guard request.farmDelivery != nil, let call = request.call else {
                return refusal("bad_request", "an operation comes with its farmDelivery and its call")
            }
            let started = try helper.send(
                method: "POST", path: "/operations", query: delivery ?? "", body: Array(call.utf8))
            guard started.status == 202, let job = jobId(started.body) else {
                return FarmReply(status: started.status, answer: String(decoding: started.body, as: UTF8.self))
            }
            var offset = 0
            while true {
                let asked = System.monotonicSeconds()
                let view = try helper.send(
                    method: "GET", path: "/jobs/\(job)",
                    query: [delivery, "offset=\(offset)", "wait=\(jobWaitSeconds)"].compactMap { $0 }.joined(
                        separator: "&"))
                let progress = jobProgress(view.body)
                if view.status != 200 || progress.finished {
                    return FarmReply(status: view.status, answer: String(decoding: view.body, as: UTF8.self))
                }
                offset = progress.nextOffset
                if System.monotonicSeconds() - asked < Double(jobWaitSeconds) / 4 { System.sleep(seconds: pollSeconds) }
            }
        } catch {
            return refusal("helper_unreachable", error.message)
        }
    }

    private struct Started: Decodable { var job: String }
    private struct Progress: Decodable {
        var state: String
        var nextOffset: Int
    }

    static func jobId(_ body: [UInt8]) -> String? {
        (try? JSONCoding.decode(Started.self, from: body)).map(\.job).flatMap {
            OperationIdentifier.isValid($0) ? $0 : nil
        }
    }

    static func jobProgress(_ body: [UInt8]) -> (finished: Bool, nextOffset: Int) {
        guard let view = try? JSONCoding.decode(Progress.self, from: body) else { return (true, 0) }
        return (view.state != "running", view.nextOffset)
    }

    static func refusal(_ code: String, _ message: String) -> FarmReply {
        FarmReply(error: FarmError(code: code, message: message))
    }
}

/// The coordinator's end: requests to one node, over one `ssh` run as the farm account with a fixed
/// set of options — no configuration file read, the node's host key checked against the pinned
/// one (under the node's name), only the farm key offered, no agent, no forwarding, no terminal,
/// no command (the node's forced command decides what runs).
public struct FarmChannel: Sendable {
    /// The farm's settings.
    public let settings: FarmSettings

    /// The OpenSSH client.
    static let sshPath = "/usr/bin/ssh"

    /// Makes a channel.
    public init(settings: FarmSettings) {
        self.settings = settings
    }

    /// `ssh`'s arguments for a node.
    func arguments(for node: FarmNode) -> [String] {
        let options = [
            "BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=\(settings.knownHostsFile)",
            "GlobalKnownHostsFile=/dev/null", "HostKeyAlias=\(node.name)", "UpdateHostKeys=no", "CheckHostIP=no",
            "IdentitiesOnly=yes", "IdentityFile=\(settings.identityFile)", "IdentityAgent=none",
            "PasswordAuthentication=no", "KbdInteractiveAuthentication=no", "PubkeyAuthentication=yes",
            "ConnectTimeout=\(settings.connectTimeoutSeconds ?? 5)", "ServerAliveInterval=5", "ServerAliveCountMax=3",
            "ClearAllForwardings=yes", "ForwardAgent=no", "ForwardX11=no", "RequestTTY=no", "ControlMaster=no",
            "ControlPath=none", "PermitLocalCommand=no", "LogLevel=ERROR",
        ]
        return ["-F", "/dev/null", "-T", "-p", String(node.sshPort)] + options.flatMap { ["-o", $0] }
            + ["--", "\(settings.account)@\(node.address)"]
    }

    /// Asks a node over its connection in `connections` (opened on the first request); its
    /// refusal comes back as the reply's `error`.
    /// - Throws: `DeliveryError` `.farmUnreachable` naming the node and what `ssh` said (no
    ///   connection, a host key that is not the pinned one, the key refused, no answer); the
    ///   connection is then dropped, and the next request opens a new one.
    func ask(_ node: FarmNode, _ request: FarmRequest, connections: FarmConnections, waitSeconds: Double = 60)
        throws(DeliveryError) -> FarmReply
    {
        let line: [UInt8]
        do {
            line = try JSONCoding.encode(request, pretty: false)
        } catch {
            throw DeliveryError(.io, "cannot write the request for \(node.name): \(error)")
        }
        let conversation = try connections.conversation(with: node.name) { () throws(DeliveryError) in
            try ChildConversation(
                Command(
                    Self.sshPath, arguments(for: node), user: try UserIdentity.lookup(settings.account),
                    workingDirectory: "/", timeoutSeconds: 0, outputLimit: 8 << 20))
        }
        let answer: [UInt8]
        do {
            answer = try conversation.exchange(
                line, seconds: Double(settings.connectTimeoutSeconds ?? 5) + waitSeconds)
        } catch {
            connections.drop(node.name)
            throw DeliveryError(.farmUnreachable, "node \(node.name) (\(node.address)): \(Self.reason(error.result))")
        }
        guard let reply = try? JSONCoding.decode(FarmReply.self, from: answer) else {
            connections.drop(node.name)
            throw DeliveryError(
                .farmUnreachable,
                "node \(node.name) (\(node.address)): its answer is not a farm reply: \(String(decoding: answer.prefix(200), as: UTF8.self))"
            )
        }
        return reply
    }

    /// What went wrong, in the words an admin can act on.
    static func reason(_ result: CommandResult) -> String {
        let lines = result.standardError.split(whereSeparator: \.isNewline).map { String($0).trimmingWhitespace() }
            .filter { !$0.isEmpty }
        if result.timedOut { return "no answer in time" }
        if lines.contains(where: { $0.contains("Host key verification failed") }) {
            // ssh's own words: "Host key for web2 has changed…", or "No ED25519 host key is known for web2…".
            let why =
                lines.first { $0.hasPrefix("Host key for") || $0.hasPrefix("No ") } ?? "Host key verification failed."
            return "its host key is not the one pinned at install (ssh: \(why))"
        }
        if let denied = lines.first(where: { $0.contains("Permission denied") }) {
            return "it refused the farm key (ssh: \(denied))"
        }
        return lines.last.map { $0.hasPrefix("ssh:") ? $0 : "ssh: \($0)" }
            ?? "no answer (ssh exit \(result.exitCode.map(String.init) ?? "by a signal"))"
    }
}

/// The farm channel's open connections: one `ssh` per node, kept for one farm operation (each of
/// its requests to that node goes over it, one at a time), all closed when the operation ends
/// (`closeAll`, or when the last reference goes).
public final class FarmConnections: Sendable {
    private let open = Locked<[String: ChildConversation]>([:])

    /// No connection yet.
    public init() {}

    deinit { closeAll() }

    /// The node's connection, started by `start` when there is none.
    func conversation(with node: String, start: () throws(DeliveryError) -> ChildConversation)
        throws(DeliveryError) -> ChildConversation
    {
        try open.withLock { (open: inout [String: ChildConversation]) throws(DeliveryError) -> ChildConversation in
            if let existing = open[node] { return existing }
            let started = try start()
            open[node] = started
            return started
        }
    }

    /// Forgets a node's connection (broken, or its state unknown after a timeout), ending it.
    func drop(_ node: String) {
        open.withLock { $0.removeValue(forKey: node) }?.close()
    }

    /// Ends every connection: each node's `deliveryctl follow` reads the end of its input and leaves.
    public func closeAll() {
        for conversation in open.withLock({ open in
            defer { open = [:] }; return Array(open.values)
        }) {
            conversation.close()
        }
    }
}
