/// The Moodle page's buttons on a farm's coordinator: each operation acts on every node of the
/// farm, as `deliveryctl farm …` does, so that the page never leaves the nodes on different code.
extension DeliveryEngine {
    /// Whether an emergency rollback may go ahead with this plan: a copy to serve; a database
    /// restore outside the delivery's window confirmed; then, asked with the plugin's key (any
    /// process of the web user could ask it), the administrator's second factor, unless checked
    /// already. The one rule of a node's rollback and of the farm's, checked before anything changes.
    func admitRollback(_ request: OperationRequest, plan: RollbackPlan, secondFactorChecked: Bool)
        throws(DeliveryError)
    {
        guard plan.target != nil else { throw DeliveryError(.copyMissing, .rollbackImpossible) }
        guard plan.kind == .codeAndDatabase && plan.needsConfirmation else { return }
        guard request.confirmDatabaseRestore == true else {
            throw DeliveryError(
                .confirmationRequired,
                [Notice(.rollbackNeedsConfirmation)] + plan.notices + [Notice(.rollbackHowToConfirm)])
        }
        if request.actor.viaKey && !secondFactorChecked {
            try secondFactor.verify(request.secondFactorCode, for: request.actor)
        }
    }

    /// Runs an operation the plugin asked for on every node of the farm: secure, switch and update
    /// step by step on every node (`FarmDelivery`), restore (the lock-step upgrade when Moodle
    /// reports one), run-all, cancel, and the emergency rollback (the other nodes first, then this
    /// node with the database). Its lines go to `progress`; its farm id is `F` and the job's id.
    /// - Throws: `.badRequest` for what a farm does not deliver (a component path, a rehearsal,
    ///   `recover`: node by node with deliveryctl); the refusals and `.farmStepFailed` of the farm
    ///   operations.
    func performOnFarm(
        _ request: OperationRequest, id: String, progress: @escaping @Sendable (ProgressEvent) -> Void
    ) throws(DeliveryError) -> OperationOutcome {
        let say: @Sendable (String) -> Void = { progress(.line($0)) }
        var delivery = try farmDelivery(site: siteName, actor: request.actor, id: "F" + id, say: say)
        (delivery.comment, delivery.securityCopy) = (request.comment, request.securityCopy)
        progress(.stepStarted(request.operation))
        do {
            try runOnFarm(request, delivery)
        } catch {
            progress(.stepFinished(request.operation, succeeded: false, notices: error.said))
            // A farm step that failed is in each node's audit log; a refusal is recorded here.
            if error.code != .farmStepFailed { recordRefusal(request, error) }
            throw error
        }
        let nodes = ([siteName + " (this node)"] + delivery.farm.nodes.map(\.name)).joined(separator: ", ")
        let notices = [Notice(.farmDone, ["nodes": .text(nodes)])]
        progress(.stepFinished(request.operation, succeeded: true, notices: notices))
        let own = try status()
        return OperationOutcome(
            id: id, operation: request.operation, message: notices.english, notices: notices, phase: own.phase,
            served: own.served)
    }

    private func runOnFarm(_ request: OperationRequest, _ delivery: FarmDelivery) throws(DeliveryError) {
        switch request.operation {
        case .runAll:
            guard request.securePath == nil, request.updatePath == nil else {
                throw DeliveryError(
                    .badRequest,
                    "a farm delivery takes the whole tree: deliver a component path step by step (Secure, Switch, Update, Restore)"
                )
            }
            _ = try delivery.run()
        case .secure, .switchToDelivery, .update:
            let lock = try delivery.takeFarmLock()
            defer { System.close(lock) }
            try delivery.checkSamePhase(for: request.operation)
            switch request.operation {
            case .secure: try delivery.secureEverywhere(path: request.securePath)
            case .switchToDelivery: try delivery.switchEverywhere()
            default: _ = try delivery.updateEverywhere(path: request.updatePath)
            }
        case .restore:
            _ = try restoreFarm(site: siteName, actor: request.actor, id: delivery.id, say: delivery.say)
        case .cancel:
            _ = try cancelFarm(site: siteName, actor: request.actor, id: delivery.id, say: delivery.say)
        case .rollback:
            try delivery.checkRollbackAllowed(request)
            let failed = delivery.rollBackFarm(
                confirmDatabaseRestore: request.confirmDatabaseRestore, secondFactorChecked: true)
            guard failed.isEmpty else { throw delivery.bringingBackFailed("rollback", failed) }
        case .rehearse, .recover:
            throw DeliveryError(
                .badRequest,
                "on a web farm, '\(request.operation.rawValue)' runs node by node: deliveryctl \(request.operation.rawValue) on each node"
            )
        }
    }
}

extension FarmDelivery {
    /// Before a single step on every node: every node answers with this site and version, runs
    /// nothing, and stands where this node stands (the step's own checks then run on each).
    func checkSamePhase(for operation: Operation) throws(DeliveryError) {
        let checks = try engine.checkFarm(site: site, connections: connections)
        let mismatched = checks.filter { !$0.matches }.map(\.summary)
        guard mismatched.isEmpty else {
            throw DeliveryError(
                .wrongState, "the farm's \(operation.rawValue) did not start: \(mismatched.joined(separator: "; "))")
        }
        let own = try engine.status()
        var apart: [String] = []
        if own.running != nil { apart.append("this node runs \(own.running?.operation.rawValue ?? "")") }
        for node in try answeringNodes(before: "the farm's \(operation.rawValue)") {
            if node.phase != own.phase || node.running != nil { apart.append(node.summary) }
        }
        guard apart.isEmpty else {
            throw DeliveryError(
                .wrongState,
                "the farm's \(operation.rawValue) did not start: every node must stand where this node stands (\(own.phase.rawValue)) and run nothing, and \(apart.joined(separator: "; ")); nothing was changed"
            )
        }
    }

    /// Before the farm's emergency rollback (the page's or deliveryctl's): this node's rollback
    /// would be refused (no copy, a database restore not confirmed, with the plugin's key a second
    /// factor missing or wrong) — then nothing is asked of any node, which would otherwise serve
    /// the older code against the upgraded database. The second factor is checked here, once.
    func checkRollbackAllowed(_ request: OperationRequest) throws(DeliveryError) {
        try engine.admitRollback(request, plan: try engine.status().rollback, secondFactorChecked: false)
    }
}
