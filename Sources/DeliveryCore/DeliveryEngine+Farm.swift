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
    public func checkFarm(site: String) throws(DeliveryError) -> [FarmNodeCheck] {
        guard let farm = configuration.farm else {
            throw DeliveryError(.configuration, "this site has no farm: its configuration has no farm.nodes")
        }
        let channel = FarmChannel(settings: farm, scratch: configuration.stateDirectory)
        let recorder = CommandRecorder(onLine: { _ in })
        let nodes = farm.nodes
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
                    try channel.ask(nodes[index], FarmRequest(request: "hello"), recorder: recorder)
                }
                answers.withLock { $0[index] = answer }
            }
        }
        let results = answers.withLock { $0 }
        var unreachable: [String] = []
        var checks: [FarmNodeCheck] = []
        for (index, node) in nodes.enumerated() {
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
}
