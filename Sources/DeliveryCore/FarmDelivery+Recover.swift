/// What `deliveryctl farm recover` did: each node brought in line, and how.
public struct FarmRecovery: Sendable, Codable, Equatable {
    /// The farm operation's id, in the audit log of every node it changed.
    public var id: String
    /// What was done on each node that was out of line, by node ("recover, cancel, secure…").
    public var done: [String: [String]]
}

extension FarmDelivery {
    /// Brings every node in line with this one, the coordinator: a node whose operation was
    /// interrupted (its process died) is recovered first; then, when this node is at rest serving
    /// production, a node that is in a delivery of its own cancels it, and a node whose production
    /// is not at this node's revision is delivered exactly that revision (secure, switch, update to
    /// the commit, restore: Moodle's upgrade, which the database already has, is not run there);
    /// when this node was rolled back, a node that was not is rolled back too. Nothing starts when
    /// a node cannot be asked or runs an operation, or when this node stands in a delivery (finish
    /// it with farm restore, cancel or rollback first).
    func recover() throws(DeliveryError) -> FarmRecovery {
        let lock = try takeFarmLock()
        defer { System.close(lock) }
        var done: [String: [String]] = [:]
        var nodes = try standings()
        // Interrupted operations first (the node's own `recover`), then where each node stands again.
        let interrupted = nodes.filter { $0.interrupted != nil }.map(\.node)
        if !interrupted.isEmpty {
            try run("recover", on: interrupted, into: &done)
            nodes = try standings()
        }
        let own = try engine.status()
        let reference = own.productionRevision
        switch (own.phase, own.served) {
        case (.idle, .production?):
            guard let commit = reference?.id else {
                throw DeliveryError(
                    .wrongState, "this node's production revision is not known yet: run secure here first")
            }
            let inDelivery = nodes.filter { $0.phase != .idle || $0.served != .production }.map(\.node)
            if !inDelivery.isEmpty { try run("cancel", on: inDelivery, into: &done) }
            nodes = try standings()
            let behind = nodes.filter { $0.revisionId != commit }.map(\.node)
            if !behind.isEmpty {
                say("recover: bringing \(behind.joined(separator: ", ")) to exactly \(reference?.label ?? commit)")
                for operation in ["secure", "switch"] { try run(operation, on: behind, into: &done) }
                // A node ahead of this one (it delivered a newer revision on its own) cannot be
                // taken back by an update: the nodes it failed on cancel what recover began.
                try run("update", on: behind, targetRevision: commit, into: &done, cancelsOnFailure: true)
                try run("restore", on: behind, into: &done)
            }
        case (.rolledBack, _):
            let late = nodes.filter { $0.phase != .rolledBack }.map(\.node)
            if !late.isEmpty { try run("rollback", on: late, into: &done) }
        default:
            throw DeliveryError(
                .wrongState,
                "farm recover brings the nodes in line with this node at rest (idle, serving production) or rolled back, and this node is \(own.phase.rawValue): end the farm's delivery first (deliveryctl farm restore, cancel or rollback); nothing was changed"
            )
        }
        say(
            done.isEmpty
                ? "Farm recover \(id): every node was in line with this one"
                : "Farm recover \(id): every node is in line with this one (\(done.keys.sorted().joined(separator: ", ")))"
        )
        return FarmRecovery(id: id, done: done)
    }

    /// Every other node's standing; refused when one cannot be asked or runs an operation.
    func standings() throws(DeliveryError) -> [FarmNodeStatus] {
        let nodes = try engine.farmStatus(connections: connections)
        for node in nodes {
            if let problem = node.problem {
                throw DeliveryError(.farmUnreachable, "farm recover: \(node.node): \(problem)")
            }
            if let running = node.running {
                throw DeliveryError(
                    .lockHeld, "farm recover: \(node.node) runs '\(running)': wait for it to end, then recover again")
            }
        }
        return nodes
    }

    /// One operation on the named nodes at once; a failure stops the recovery, naming the node
    /// and where every node stands. With `cancelsOnFailure`, the named nodes cancel first (each
    /// serves its production as before).
    func run(
        _ operation: String, on names: [String], targetRevision: String? = nil, into done: inout [String: [String]],
        cancelsOnFailure: Bool = false
    ) throws(DeliveryError) {
        let nodes = farm.nodes.filter { names.contains($0.name) }
        let result = try step(
            "recover: \(operation)", local: nil, call: Self.same(call(operation, targetRevision: targetRevision)),
            nodes: nodes)
        for name in result.succeeded.compactMap({ $0 }) { done[name, default: []].append(operation) }
        guard result.failed.isEmpty else {
            let why = result.failed.map { "\($0.0 ?? "this node"): \(Self.clause($0.1.message))" }.sorted()
            var after = ""
            if cancelsOnFailure {
                let stuck = bringBack(Set(names.map { Optional($0) }), with: "cancel")
                    .map { "\($0.key ?? "this node"): \(Self.clause($0.value.message))" }.sorted()
                after =
                    stuck.isEmpty
                    ? " Then \(names.joined(separator: ", ")) cancelled: each serves its production as before."
                    : " Bringing back failed on \(stuck.joined(separator: "; "))."
            }
            guard cancelsOnFailure else {
                throw DeliveryError(
                    .farmStepFailed,
                    "farm recover \(id): \(operation) failed on \(why.joined(separator: "; ")). Now: \(standingNow()); fix it there (deliveryctl status on that node), then recover again."
                )
            }
            throw DeliveryError(
                .farmStepFailed,
                "farm recover \(id): \(operation) failed on \(why.joined(separator: "; ")).\(after) Now: \(standingNow()). A node ahead of this one (it delivered a newer revision on its own) comes in line with deliveryctl farm run-all, which brings every node to the upstream's latest revision; otherwise fix what the \(operation) said there (deliveryctl status on that node), then recover again."
            )
        }
    }
}

extension DeliveryEngine {
    /// Brings every node of the farm in line with this one (`FarmDelivery.recover`): a node that
    /// was unreachable during a farm operation, or interrupted.
    /// - Throws: `.configuration` without a farm; `.lockHeld`, `.farmUnreachable` or `.wrongState`
    ///   before anything changed; `.farmStepFailed` when a node's step failed.
    public func recoverFarm(site: String, actor: Actor, say: @escaping @Sendable (String) -> Void)
        throws(DeliveryError) -> FarmRecovery
    {
        try farmDelivery(site: site, actor: actor, say: say).recover()
    }
}
