import Foundation
import Synchronization

/// One node's answer to `deliveryctl farm check`.
public struct FarmNodeCheck: Sendable, Codable, Equatable {
    /// The node's name.
    public var node: String
    /// Its address.
    public var address: String
    /// The site it serves, as it answered.
    public var site: String?
    /// Its moodle-delivery version, as it answered.
    public var product: String?
    /// Why it does not go with this node (another site, another version, its refusal); nil when it does.
    public var problem: String?

    /// True when the node answered for the same site with the same version.
    public var matches: Bool { problem == nil }

    /// One line for a person.
    public var summary: String {
        let answered = "\(node) (\(address)): site \(site ?? "?"), moodle-delivery \(product ?? "?")"
        return problem.map { "\(answered): \($0)" } ?? "\(answered): ok"
    }
}

// The coordinator's questions to its farm.
extension DeliveryEngine {
    /// Asks every node of the farm who it is, all at the same time, over its pinned SSH channel.
    /// - Parameter site: this node's site name, which every node must serve too.
    /// - Throws: `.configuration` when the site has no farm; `.farmUnreachable` naming each node
    ///   that could not be asked.
    public func checkFarm(site: String, connections: FarmConnections = FarmConnections()) throws(DeliveryError)
        -> [FarmNodeCheck]
    {
        guard let farm = configuration.farm else {
            throw DeliveryError(.configuration, "this site has no farm: its configuration has no farm.nodes")
        }
        let results = ask(farm, FarmRequest(request: "hello"), connections: connections)
        var unreachable: [String] = []
        var checks: [FarmNodeCheck] = []
        for (index, node) in farm.nodes.enumerated() {
            switch results[index] {
            case .success(let reply):
                var check = FarmNodeCheck(
                    node: node.name, address: node.address, site: reply.site, product: reply.product)
                if let error = reply.error {
                    check.problem = "it refused (\(error.code)): \(error.message)"
                } else if reply.site != site {
                    check.problem = "it serves the site '\(reply.site ?? "")', not '\(site)'"
                } else if reply.product != ProductVersion.number {
                    check.problem =
                        "it runs moodle-delivery \(reply.product ?? "?"), this node \(ProductVersion.number): install the same package on every node"
                }
                checks.append(check)
            case .failure(let error):
                unreachable.append(error.message)
            case nil:
                unreachable.append("node \(node.name): not asked")
            }
        }
        if !unreachable.isEmpty {
            throw DeliveryError(.farmUnreachable, unreachable.joined(separator: "; "))
        }
        return checks
    }

    /// Asks every node of the farm the same request, all at the same time (at most 16 at once),
    /// each over its connection in `connections`; the answers by the nodes' order.
    func ask(
        _ farm: FarmSettings, _ request: FarmRequest, connections: FarmConnections, waitSeconds: Double = 60
    ) -> [Int: Result<FarmReply, DeliveryError>] {
        ask(farm.nodes, { _ in request }, connections: connections, waitSeconds: waitSeconds)
    }

    /// Asks each of `nodes` its own request, all at the same time (at most 16 at once), over
    /// their connections in `connections` (opened on the first request); the answers by the
    /// nodes' order.
    func ask(
        _ nodes: [FarmNode], _ request: @escaping @Sendable (FarmNode) -> FarmRequest, connections: FarmConnections,
        waitSeconds: Double
    ) -> [Int: Result<FarmReply, DeliveryError>] {
        guard let farm = configuration.farm, !nodes.isEmpty else { return [:] }
        let channel = FarmChannel(settings: farm)
        let answers = Mutex<[Int: Result<FarmReply, DeliveryError>]>([:])
        let next = Mutex(0)
        System.runThreads(min(nodes.count, 16), interval: 3600, whileWaiting: {}) {
            while true {
                let index = next.withLock { (value: inout Int) -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < nodes.count else { return }
                let answer = Result { () throws(DeliveryError) in
                    try channel.ask(
                        nodes[index], request(nodes[index]), connections: connections, waitSeconds: waitSeconds)
                }
                answers.withLock { $0[index] = answer }
            }
        }
        return answers.withLock { $0 }
    }

    /// The farm's other nodes as `farmStatus` sees them; none for a site without a farm (the
    /// helper's `GET /farm`, the Moodle page's farm panel).
    public func farmNodes() throws(DeliveryError) -> [FarmNodeStatus] {
        configuration.farm == nil ? [] : try farmStatus()
    }

    /// Every node's state, served copy and revision, asked of its helper through the farm channel
    /// (`deliveryctl farm status`), over `connections` (a farm operation's own, or new ones); a
    /// node that cannot be asked is listed with the reason.
    /// - Throws: `.configuration` when the site has no farm.
    public func farmStatus(connections: FarmConnections = FarmConnections()) throws(DeliveryError)
        -> [FarmNodeStatus]
    {
        guard let farm = configuration.farm else {
            throw DeliveryError(.configuration, "this site has no farm: its configuration has no farm.nodes")
        }
        let results = ask(farm, FarmRequest(request: "status"), connections: connections)
        let own = try? status()
        return farm.nodes.enumerated().map { index, node in
            var status = FarmNodeStatus(node: node.name, address: node.address)
            switch results[index] {
            case .success(let reply):
                if let error = reply.error {
                    status.problem = "it refused (\(error.code)): \(error.message)"
                } else if reply.status != 200 {
                    status.problem = "its helper answered \(reply.status ?? 0): \((reply.answer ?? "").prefix(300))"
                } else if let answer = try? JSONCoding.decode(
                    FarmNodeStatus.Answer.self, from: Array((reply.answer ?? "").utf8))
                {
                    status.fill(
                        phase: answer.site.phase, served: answer.site.served,
                        revision: answer.site.productionRevision, running: answer.site.running,
                        interrupted: answer.site.interrupted, lastResults: answer.site.lastResults ?? [:])
                    // Both at rest, yet production differs: a delivery missed or made alone (farm recover).
                    if let own, own.phase == .idle, own.running == nil, answer.site.phase == .idle,
                        answer.site.running == nil
                    {
                        status.outOfLine = answer.site.productionRevision?.id != own.productionRevision?.id
                    }
                } else {
                    status.problem = "its helper's status could not be read"
                }
            case .failure(let error):
                // The channel's words name the node already; its status says the name once.
                let named = "node \(node.name) (\(node.address)): "
                status.problem =
                    error.message.hasPrefix(named) ? String(error.message.dropFirst(named.count)) : error.message
            case nil:
                status.problem = "not asked"
            }
            return status
        }
    }
}

/// One node's state as the coordinator sees it (`deliveryctl farm status`).
public struct FarmNodeStatus: Sendable, Codable, Equatable {
    /// The node's name.
    public var node: String
    /// Its address.
    public var address: String
    /// Its delivery state.
    public var phase: DeliveryPhase?
    /// The copy it serves.
    public var served: TreeName?
    /// Production's revision there (its label).
    public var revision: String?
    /// Production's revision there (the commit id or revision number).
    public var revisionId: String?
    /// The operation running there, if any.
    public var running: String?
    /// An operation whose process died there (its `recover` records it).
    public var interrupted: String?
    /// Its last operation that ended, whether it succeeded, and when.
    public var lastOperation: Operation?
    public var lastSucceeded: Bool?
    public var lastFinishedAt: Date?
    /// Why it could not be asked, or what it refused; nil when it answered.
    public var problem: String?
    /// True when this node and the coordinator are both at rest with production at different
    /// revisions (a delivery this node missed or made alone: `farm recover` brings it in line); nil when not
    /// both at rest.
    public var outOfLine: Bool?

    /// Makes a node's status.
    public init(node: String, address: String) {
        self.node = node
        self.address = address
    }

    /// The coordinator's own line (`this node (coordinator)`), from its status.
    public init(coordinator own: SiteStatus) {
        self.init(node: "this node", address: "coordinator")
        fill(
            phase: own.phase, served: own.served, revision: own.productionRevision, running: own.running,
            interrupted: own.interrupted, lastResults: own.lastResults)
    }

    /// Where the node stands, from its helper's status: its state, copy, revision, what runs or was
    /// interrupted, and its latest result.
    mutating func fill(
        phase: DeliveryPhase, served: TreeName?, revision: Revision?, running: RunningOperation?,
        interrupted: RunningOperation?, lastResults: [Operation: StepResult]
    ) {
        self.phase = phase
        self.served = served
        self.revision = revision?.label
        revisionId = revision?.id
        self.running = running?.operation.rawValue
        self.interrupted = interrupted?.operation.rawValue
        if let (operation, result) = lastResults.max(by: { $0.value.finishedAt < $1.value.finishedAt }) {
            lastOperation = operation
            lastSucceeded = result.succeeded
            lastFinishedAt = result.finishedAt
        }
    }

    /// What the coordinator reads of the node helper's `GET /status`.
    struct Answer: Decodable {
        struct Site: Decodable {
            var phase: DeliveryPhase
            var served: TreeName?
            var productionRevision: Revision?
            var running: RunningOperation?
            var interrupted: RunningOperation?
            var lastResults: [Operation: StepResult]?
        }
        var site: Site
    }

    /// One line for a person.
    public var summary: String {
        if let problem { return "\(node) (\(address)): \(problem)" }
        let serving = served.map { "serves \($0.rawValue)" } ?? "serves no known copy"
        let busy = running.map { ", running \($0)" } ?? ""
        let stopped = interrupted.map { ", '\($0)' interrupted (farm recover)" } ?? ""
        let last =
            lastOperation.map {
                "; last: \($0.rawValue) \(lastSucceeded == true ? "succeeded" : "failed")\(lastFinishedAt.map { " at \($0.formatted(.iso8601))" } ?? "")"
            } ?? ""
        let behind =
            outOfLine == true
            ? ", not the coordinator's revision (behind: farm recover brings it in line; ahead: farm run-all)" : ""
        return
            "\(node) (\(address)): \(phase?.rawValue ?? "?"), \(serving), production at \(revision ?? "a revision not read yet")\(behind)\(busy)\(stopped)\(last)"
    }
}
