import Synchronization

/// What a farm coordinator's restore asks of the other nodes at the two points of the lock-step
/// upgrade (`OperationRun.restore`): each call returns once every other node has done its stage,
/// or throws naming the nodes that failed.
struct FarmRestoreHooks: Sendable {
    /// Every other node serves production (`FarmStage.serve`): called with this node's
    /// maintenance mode on and its snapshot taken, production served here, before the upgrade.
    let serveEverywhere: @Sendable () throws(DeliveryError) -> Void
    /// Every other node's health check and end of the delivery (`FarmStage.finish`): called after
    /// the upgrade, maintenance mode off and this node's own health check passed.
    let finishEverywhere: @Sendable () throws(DeliveryError) -> Void
}

extension FarmDelivery {
    /// The restore of every node. First every node's `ready` stage (`FarmStage.ready`), while its
    /// copy still serves: its preflight and Moodle's forecast, then, without an upgrade, production
    /// readied (OPcache); a blocker anywhere, or nodes that disagree on the upgrade, and no node
    /// serves production (in a delivery, `cancelsWhenNotReady`, every node cancels). Without an
    /// upgrade every node then serves production at once, which takes each node a few
    /// milliseconds. With one (every node says `farm_upgrade_in_lock_step`), the lock-step
    /// upgrade: this node's restore turns maintenance mode on (once: the dataroot is
    /// shared), takes the snapshot (once: one database) and serves production; every other node
    /// then serves production (`FarmStage.serve`); this node runs `upgrade.php`, its health
    /// check, lifts maintenance mode; every other node runs its own health check against its
    /// own page (`FarmStage.finish`). Any failure brings every node back (`rollBackFarm`).
    func restoreEverywhere(cancelsWhenNotReady: Bool) throws(DeliveryError) {
        let readied = try step(
            "restore (every node's preflight; production readied; the copies still serve)",
            local: localRequest(.restore, farmStage: .ready), call: Self.same(call("restore", farmStage: .ready)))
        var refusals = readied.failed
        let upgradeOn = Set(
            readied.notices.filter { $0.value.contains(NoticeCode.farmUpgradeInLockStep.rawValue) }.keys)
        if refusals.isEmpty, !upgradeOn.isEmpty, upgradeOn != allParticipants {
            // The same commit everywhere, yet not the same answer: a node's code or checks differ.
            let names = { (nodes: Set<String?>) in nodes.map { $0 ?? "this node" }.sorted().joined(separator: ", ") }
            refusals.append(
                (
                    nil,
                    DeliveryError(
                        .preflightFailed,
                        "the nodes disagree on Moodle's upgrade: pending on \(names(upgradeOn)), not on \(names(allParticipants.subtracting(upgradeOn)))"
                    )
                ))
        }
        say(
            refusals.isEmpty
                ? "preflight: every node may restore\(upgradeOn.isEmpty ? "" : "; Moodle's upgrade runs once, on this node, in lock-step")"
                : "preflight: refused on \(refusals.map { $0.0 ?? "this node" }.joined(separator: ", "))")
        guard refusals.isEmpty else {
            guard cancelsWhenNotReady else {
                throw failure(
                    "restore", StepOutcome(failed: refusals), undone: [:],
                    standing: "No node restored; every node serves what it served before")
            }
            let undone = bringBack(allParticipants, with: "cancel")
            throw failure(
                "restore", StepOutcome(failed: refusals), undone: undone,
                standing: "No node restored; production serves the code before the delivery on every node")
        }
        guard !upgradeOn.isEmpty else {
            let done = try step("restore", local: localRequest(.restore), call: Self.same(call("restore")))
            guard done.failed.isEmpty else {
                let undone = rollBackFarm()
                throw failure("restore", done, undone: undone, standing: Self.rolledBackStanding)
            }
            return
        }
        let failedNodes = Mutex<[(String?, DeliveryError)]>([])
        let hook = { @Sendable (stage: FarmStage, name: String) throws(DeliveryError) -> Void in
            let done = try self.step(
                name, local: nil, call: Self.same(self.call("restore", farmStage: stage)))
            guard done.failed.isEmpty else {
                failedNodes.withLock { $0 = done.failed }
                let why = done.failed.map { "\($0.0 ?? "this node"): \(Self.clause($0.1.message))" }
                throw DeliveryError(
                    .farmStepFailed, "\(name) failed on \(why.joined(separator: "; "))")
            }
        }
        let hooks = FarmRestoreHooks(
            serveEverywhere: { () throws(DeliveryError) in
                try hook(.serve, "restore (every other node serves production, before the upgrade)")
            },
            finishEverywhere: { () throws(DeliveryError) in
                try hook(.finish, "restore (every other node's health check, after the upgrade)")
            })
        say("restore: maintenance mode and the database snapshot on this node, then every node serves production…")
        let started = System.monotonicSeconds()
        do {
            _ = try engine.perform(localRequest(.restore), progress: { _ in }, farmHooks: hooks)
        } catch {
            let nodes = failedNodes.withLock { $0 }
            if nodes.isEmpty, let own = try? engine.status(), [.delivering, .updated].contains(own.phase) {
                // Refused before anything changed here (the snapshot could not be taken…): no node
                // served the new code; every node cancels.
                let undone = bringBack(allParticipants, with: "cancel")
                throw failure(
                    "restore", StepOutcome(failed: [(nil, error)]), undone: undone,
                    standing: "No node restored; production serves the code before the delivery on every node")
            }
            let undone = rollBackFarm()
            throw failure(
                "restore", StepOutcome(failed: nodes.isEmpty ? [(nil, error)] : nodes), undone: undone,
                standing: Self.rolledBackStanding)
        }
        say(
            "restore: every node serves production; Moodle's upgrade ran once, on this node (\(String(format: "%.1f", System.monotonicSeconds() - started)) s)"
        )
    }

    /// Where the farm stands once `rollBackFarm` brought every node back.
    static let rolledBackStanding =
        "Every node was rolled back: it serves its backup copy (the code before the delivery), the database is back at its snapshot where the upgrade ran, production holds the new revision on every node; next, deliveryctl farm cancel when the code before the delivery matches the database, or deliveryctl farm restore (production again, once what failed is fixed)"

    /// Brings every node back with its emergency rollback: the other nodes first, all at once
    /// (each serves its backup copy; their helpers leave maintenance mode and the database to
    /// this node), then this node, whose rollback restores the database snapshot when the upgrade
    /// ran, under the maintenance mode it holds, and lifts it. This node is rolled back even when
    /// another could not be: what could not be is returned, by node.
    /// - Parameter secondFactorChecked: the caller checked the administrator's second factor for
    ///   this rollback (`checkRollbackAllowed`): this node's rollback does not ask it again.
    func rollBackFarm(confirmDatabaseRestore: Bool? = nil, secondFactorChecked: Bool = false) -> [String?:
        DeliveryError]
    {
        say("Bringing every node back (rollback): the other nodes first, then this node…")
        var stuck: [String?: DeliveryError] = [:]
        if !farm.nodes.isEmpty {
            if let done = try? step("rollback (bringing back)", local: nil, call: Self.same(call("rollback"))) {
                for (node, error) in done.failed { stuck[node] = error }
            } else {
                for node in farm.nodes { stuck[node.name] = DeliveryError(.io, "its rollback could not be asked") }
            }
        }
        do {
            var local = actor
            local.farmDelivery = id
            _ = try engine.perform(
                try OperationRequest(.rollback, actor: local, confirmDatabaseRestore: confirmDatabaseRestore),
                progress: { _ in }, farmHooks: nil, secondFactorChecked: secondFactorChecked)
            say("rollback: this node is back")
        } catch {
            say("rollback: this node failed: \(Self.clause(error.message))")
            stuck[nil] = error
        }
        return stuck
    }
}

extension DeliveryEngine {
    /// Cancels the delivery on every node of the farm that is not at rest serving production, all
    /// at once (one farm-wide operation at a time: the farm lock).
    /// - Throws: `.configuration` without a farm; `.lockHeld` while a farm delivery runs;
    ///   `.farmStepFailed` naming each node whose cancel failed (the others cancelled).
    public func cancelFarm(
        site: String, actor: Actor, id: String? = nil, say: @escaping @Sendable (String) -> Void
    ) throws(DeliveryError) -> FarmDeliveryOutcome {
        let delivery = try farmDelivery(site: site, actor: actor, id: id, say: say)
        let lock = try delivery.takeFarmLock()
        defer { System.close(lock) }
        var participants: Set<String?> = []
        let own = try status()
        if own.phase != .idle || own.served != .production { participants.insert(nil) }
        var unreachable: [String?: DeliveryError] = [:]
        for node in try farmStatus(connections: delivery.connections) {
            if let problem = node.problem {
                unreachable[node.node] = DeliveryError(.farmUnreachable, problem)
            } else if node.phase != .idle || node.served != .production {
                participants.insert(node.node)
            }
        }
        let failed = delivery.bringBack(participants, with: "cancel").merging(unreachable) { first, _ in first }
        guard failed.isEmpty else { throw delivery.bringingBackFailed("cancel", failed) }
        say(
            "Farm cancel \(delivery.id): every node serves production\(participants.isEmpty ? " (nothing to cancel)" : "")"
        )
        return FarmDeliveryOutcome(
            id: delivery.id, revision: nil, nodes: [site] + (configuration.farm?.nodes.map(\.name) ?? []))
    }

    /// The emergency rollback of every node of the farm: the other nodes first, then this node,
    /// which restores the database snapshot when an upgrade changed it (`FarmDelivery.rollBackFarm`).
    /// Like a node's emergency rollback, it does not wait for a farm delivery that runs.
    /// - Throws: `.configuration` without a farm; `.farmStepFailed` naming each node that could
    ///   not be rolled back (every other one was).
    public func rollBackFarm(
        site: String, actor: Actor, confirmDatabaseRestore: Bool?, say: @escaping @Sendable (String) -> Void
    ) throws(DeliveryError) -> FarmDeliveryOutcome {
        let delivery = try farmDelivery(site: site, actor: actor, say: say)
        // This node's rollback would be refused (a database restore not confirmed…): no other
        // node is asked either, or it would serve the older code against the upgraded database.
        do {
            try delivery.checkRollbackAllowed(
                try OperationRequest(.rollback, actor: actor, confirmDatabaseRestore: confirmDatabaseRestore))
        } catch  where error.code == .confirmationRequired {
            // Said for the farm: a node's own rollback would leave the other nodes behind.
            throw DeliveryError(
                error.code,
                message:
                    "\(error.message) On this farm: deliveryctl farm rollback --restore-database (not deliveryctl rollback on one node alone).",
                notices: error.notices)
        }
        let failed = delivery.rollBackFarm(confirmDatabaseRestore: confirmDatabaseRestore, secondFactorChecked: true)
        guard failed.isEmpty else { throw delivery.bringingBackFailed("rollback", failed) }
        say("Farm rollback \(delivery.id): every node serves its rollback copy")
        return FarmDeliveryOutcome(
            id: delivery.id, revision: nil, nodes: [site] + (configuration.farm?.nodes.map(\.name) ?? []))
    }

    /// Restores every node of the farm whose delivery stopped before its end (a farm delivery
    /// rolled back, a restore refused): every node must be in a phase a restore may start from,
    /// with production at this node's revision; then every node's preflight and the restore of
    /// `farm run-all` (the lock-step upgrade when Moodle reports one).
    /// - Throws: `.configuration` without a farm; `.lockHeld`, `.farmUnreachable` or `.wrongState`
    ///   before anything changed; `.farmStepFailed` when a node failed (the farm brought back).
    public func restoreFarm(
        site: String, actor: Actor, id: String? = nil, say: @escaping @Sendable (String) -> Void
    ) throws(DeliveryError) -> FarmDeliveryOutcome {
        let delivery = try farmDelivery(site: site, actor: actor, id: id, say: say)
        let lock = try delivery.takeFarmLock()
        defer { System.close(lock) }
        let restorable: Set<DeliveryPhase> = [.delivering, .updated, .restoring, .rolledBack]
        let own = try status()
        var problems: [String] = []
        if !restorable.contains(own.phase) || own.running != nil {
            problems.append("this node is \(own.phase.rawValue)")
        }
        for node in try delivery.answeringNodes(before: "the farm restore") {
            if node.phase.map({ !restorable.contains($0) }) ?? true || node.running != nil {
                problems.append(node.summary)
            } else if node.revisionId != own.productionRevision?.id {
                problems.append(
                    "\(node.node)'s production is at \(node.revision ?? "?"), this node's at \(own.productionRevision?.label ?? "?")"
                )
            }
        }
        guard problems.isEmpty else {
            throw DeliveryError(
                .wrongState,
                "the farm restore did not start: every node must be in a delivery a restore may end (delivering, updated, restoring or rolled back) with production at the same revision, and \(problems.joined(separator: "; ")); nothing was changed"
            )
        }
        say("Farm restore \(delivery.id): \((configuration.farm?.nodes.count ?? 0) + 1) nodes")
        try delivery.restoreEverywhere(cancelsWhenNotReady: false)
        say("Farm restore \(delivery.id): every node serves \(own.productionRevision?.label ?? "production")")
        return FarmDeliveryOutcome(
            id: delivery.id, revision: own.productionRevision?.id,
            nodes: [site] + (configuration.farm?.nodes.map(\.name) ?? []))
    }

    /// A farm operation of this coordinator; `id` (a farm id) names it, a new one when nil.
    func farmDelivery(site: String, actor: Actor, id: String? = nil, say: @escaping @Sendable (String) -> Void)
        throws(DeliveryError) -> FarmDelivery
    {
        guard let farm = configuration.farm else {
            throw DeliveryError(.configuration, "this site has no farm: its configuration has no farm.nodes")
        }
        var delivery = FarmDelivery(
            engine: self, farm: farm, site: site, actor: actor, comment: nil, securityCopy: false, say: say)
        if let id { delivery.id = id }
        return delivery
    }
}

extension FarmDelivery {
    /// The error of a farm-wide cancel or rollback that failed on some nodes: which, why, and
    /// where every node stands now.
    func bringingBackFailed(_ operation: String, _ failed: [String?: DeliveryError]) -> DeliveryError {
        let why = failed.map { "\($0.key ?? "this node"): \(Self.clause($0.value.message))" }.sorted()
        return DeliveryError(
            .farmStepFailed,
            "farm \(operation) \(id) failed on \(why.joined(separator: "; ")); every other node was brought back. Now: \(standingNow()); run \(operation) on those nodes once they answer (deliveryctl farm \(operation) again, or deliveryctl \(operation) there)."
        )
    }
}
