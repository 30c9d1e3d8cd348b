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
        case "status", "preflight", "operation":
            switch helper {
            case .failure(let error): return FarmReply(error: error)
            case .success(let client): return pass(request, to: client)
            }
        default:
            return refusal(
                "unknown_request",
                "'\(request.request.prefix(40))' is not a farm request (hello, status, preflight, operation)")
        }
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

    /// How often a running job is asked about.
    static let pollSeconds = 0.2

    /// `status`, `preflight` and `operation` passed on to the node's helper; an operation is waited for, and its
    /// finished job is the answer.
    static func pass(_ request: FarmRequest, to helper: HelperClient) -> FarmReply {
        let delivery = request.farmDelivery.map { "\(deliveryQueryMember)=\($0)" }
        do throws(DeliveryError) {
            if request.request == "status" || request.request == "preflight" {
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
                let view = try helper.send(
                    method: "GET", path: "/jobs/\(job)",
                    query: [delivery, "offset=\(offset)"].compactMap { $0 }.joined(separator: "&"))
                let progress = jobProgress(view.body)
                if view.status != 200 || progress.finished {
                    return FarmReply(status: view.status, answer: String(decoding: view.body, as: UTF8.self))
                }
                offset = progress.nextOffset
                System.sleep(seconds: pollSeconds)
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

/// The coordinator's end: one request to one node, by `ssh` run as the farm account with a fixed
/// set of options — no configuration file read, the node's host key checked against the pinned
/// one (under the node's name), only the farm key offered, no agent, no forwarding, no terminal,
/// no command (the node's forced command decides what runs).
public struct FarmChannel: Sendable {
    /// The farm's settings.
    public let settings: FarmSettings
    /// A folder of root's where the request file is written for `ssh`'s standard input.
    public let scratch: String

    /// The OpenSSH client.
    static let sshPath = "/usr/bin/ssh"

    /// Makes a channel.
    public init(settings: FarmSettings, scratch: String) {
        self.settings = settings
        self.scratch = scratch
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

    /// Asks a node; its refusal comes back as the reply's `error`.
    /// - Throws: `DeliveryError` `.farmUnreachable` naming the node and what `ssh` said (no
    ///   connection, a host key that is not the pinned one, the key refused, no answer).
    func ask(_ node: FarmNode, _ request: FarmRequest, recorder: CommandRecorder, waitSeconds: Double = 60)
        throws(DeliveryError) -> FarmReply
    {
        let account = try UserIdentity.lookup(settings.account)
        let file = "\(scratch)/farm-request-\(node.name)-\(UUID().uuidString).json"
        do {
            try System.writeFileAtomically(file, try JSONCoding.encode(request, pretty: false), mode: 0o600)
        } catch {
            throw DeliveryError(.io, "cannot write the request for \(node.name): \(error)")
        }
        defer { try? System.unlink(file) }
        var command = Command(
            Self.sshPath, arguments(for: node), user: account, workingDirectory: "/",
            timeoutSeconds: Double(settings.connectTimeoutSeconds ?? 5) + waitSeconds, outputLimit: 8 << 20)
        command.standardInputFile = file
        let result = try recorder.run(command)
        let lines = result.standardOutput.split(separator: "\n")
        if let last = lines.last, let reply = try? JSONCoding.decode(FarmReply.self, from: Array(last.utf8)) {
            return reply
        }
        throw DeliveryError(.farmUnreachable, "node \(node.name) (\(node.address)): \(Self.reason(result))")
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
