#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One operation from its start to its audit line.
final class OperationRun: @unchecked Sendable {
    let id: String
    let request: OperationRequest
    let progress: @Sendable (ProgressEvent) -> Void
    let engine: DeliveryEngine
    let startedAt = Date()
    let startedMonotonic = System.monotonicSeconds()
    let recorder: CommandRecorder
    /// `change` one at a time (`concurrently`).
    let changing = Locked(())
    var revisionBefore: Revision?
    var revisionAfter: Revision?
    var servedBefore: TreeName?
    /// Set when an emergency rollback's switch was not followed by the web server.
    var webServerLag: DeliveryError?
    /// Set at the first change to the site or the state: a failure before it is a refusal. An
    /// operation that opens a delivery writes its `started` record then (a refusal never does).
    var mutated = false {
        didSet { if mutated && !oldValue && opensDelivery { auditStart() } }
    }
    /// A Run all, or a secure from idle: the operation opens a delivery.
    var opensDelivery = false
    /// Set once the database is back at its snapshot (for the audit record).
    var databaseRestored = false
    /// update: what it brought; restore: the snapshot it took and the health check it ran.
    var upstreamChanges: UpstreamChanges?
    var snapshotTaken: DatabaseSnapshot?
    /// restore: what Moodle's upgrade took (a part of the maintenance window).
    var upgradeSeconds: Double?
    var healthReport: HealthReport?
    /// A skipped scheduled Run all: the schedule, for its audit record.
    var skippedSchedule: DeliverySchedule?
    /// The delivery this operation belongs to, as last seen in the state (restore and rollback
    /// close it; their records still carry it). A rollback after the delivery closed belongs to
    /// the delivery whose snapshot it would restore.
    var deliveryIdSeen: String?
    /// run-all: each of its steps, for the audit record.
    var stepRecords: [AuditStep] = []
    /// rehearse (or a Run all's rehearsal): its result, for the audit record.
    var rehearsalRecord: Rehearsal?
    /// restore / run-all: the administrator confirmed delivering a revision whose rehearsal failed.
    var rehearsalOverridden = false
    /// Copies whose match with the database this operation showed without asking Moodle (read by
    /// `refreshCopiesMatchingDatabase`).
    var copiesKnownToMatch: [TreeName: Bool] = [:]
    /// A farm's coordinator: what its restore asks of the other nodes (`FarmRestoreHooks`).
    var farmHooks: FarmRestoreHooks?
    /// A farm's coordinator: told the revision its whole update goes to as soon as it is known,
    /// before production changes, so that the other nodes update to it at the same time
    /// (`FarmDelivery.updateEverywhere`).
    var onUpdateTarget: (@Sendable (Revision) -> Void)?
    /// A farm's emergency rollback checked the administrator's second factor before it asked any
    /// node (`FarmDelivery.checkRollbackAllowed`): a code is accepted once.
    var secondFactorChecked = false

    init(
        id: String, request: OperationRequest, progress: @escaping @Sendable (ProgressEvent) -> Void,
        engine: DeliveryEngine
    ) {
        self.id = id
        self.request = request
        // One event at a time, whichever thread of the operation sends it (`concurrently`).
        let serial = Locked(())
        let gated: @Sendable (ProgressEvent) -> Void = { event in serial.withLock { _ in progress(event) } }
        self.progress = gated
        self.engine = engine
        self.recorder = CommandRecorder(onLine: { gated(.line($0)) })
        self.servedBefore = engine.layout.servedTree()
        if let state = try? engine.store.read() {
            deliveryIdSeen = state.deliveryId ?? (request.operation == .rollback ? state.snapshot?.id : nil)
            opensDelivery =
                request.operation == .runAll || (request.operation == .secure && state.deliveryId == nil)
        }
    }

    var layout: SiteLayout { engine.layout }
    var store: StateStore { engine.store }

    func note(_ line: String) { progress(.line(line)) }

    /// Changes the state, marking the operation as having changed something.
    @discardableResult
    func change<T>(_ body: (inout DeliveryState) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        // Two pieces of the operation may change the state at the same time (`concurrently`):
        // one at a time, for what this run remembers too.
        try changing.withLock { (_: inout Void) throws(DeliveryError) -> T in
            mutated = true
            return try store.update { (state: inout DeliveryState) throws(DeliveryError) -> T in
                try checkNotPreempted(state)
                if let open = state.deliveryId { deliveryIdSeen = open }
                defer { if let open = state.deliveryId { deliveryIdSeen = open } }
                return try body(&state)
            }
        }
    }

    /// Stops an operation that an emergency rollback took over (rollback itself is never stopped).
    func checkNotPreempted(_ state: DeliveryState) throws(DeliveryError) {
        guard request.operation != .rollback, let preempted = state.preemptedAt, preempted > startedAt else { return }
        throw DeliveryError(
            .preempted, .preempted, ["preemptedAt": .moment(preempted), "tree": .tree(layout.servedTree())])
    }

    /// Runs `body` under the switch mutex, after checking that no rollback took over: every change
    /// of what is served, and every swap of a copy into place, goes through here.
    func underSwitchMutex<T>(_ body: () throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        let mutexPath = "\(engine.configuration.stateDirectory)/switch.lock"
        let fd: Int32
        do {
            fd = try System.open(mutexPath, O_RDWR | O_CREAT, 0o640)
            _ = try System.lockFile(fd, wait: true)
        } catch {
            throw DeliveryError.io("cannot take the switch mutex", error)
        }
        defer { System.close(fd) }
        try checkNotPreempted(try store.read())
        return try body()
    }

    /// True for an error that stopped the operation before it changed anything.
    func isRefusal(_ error: DeliveryError) -> Bool {
        !mutated && error.code.isRefusal
    }

    // MARK: Dispatch

    /// Runs the operation under the lock; the caller holds it and has set `running`.
    func execute() throws(DeliveryError) -> OperationOutcome {
        var failure: DeliveryError?
        var notices: [Notice] = []
        do throws(DeliveryError) {
            switch request.operation {
            case .secure: notices = try step(.secure) { () throws(DeliveryError) in try secure() }
            case .switchToDelivery:
                notices = try step(.switchToDelivery) { () throws(DeliveryError) in try switchToDelivery() }
            case .update: notices = try step(.update) { () throws(DeliveryError) in try update() }
            case .restore: notices = try step(.restore) { () throws(DeliveryError) in try restore() }
            case .cancel: notices = try step(.cancel) { () throws(DeliveryError) in try cancel() }
            case .recover: notices = try step(.recover) { () throws(DeliveryError) in try recover() }
            case .runAll: notices = try runAll()
            case .rollback: notices = []  // rollback runs on its own path
            case .rehearse: notices = try step(.rehearse) { () throws(DeliveryError) in try rehearse() }
            }
        } catch {
            failure = error
        }
        if !(failure.map(isRefusal) ?? false) && failure?.code != .preempted && request.operation != .rehearse
            && !keepsCopiesMatchingDatabase(try? store.read())
        {
            refreshCopiesMatchingDatabase()
        }
        let served = layout.servedTree()
        let phase: DeliveryPhase
        do {
            let refused = failure.map(isRefusal) ?? false
            phase = try store.update { (state: inout DeliveryState) throws(DeliveryError) in
                if state.running?.id == id { state.running = nil }
                if refused { return state.phase }
                // What recover recorded is shown until an operation succeeds after it.
                if failure == nil && request.operation != .recover { state.interrupted = nil }
                state.lastResults[request.operation] = StepResult(
                    succeeded: failure == nil, finishedAt: Date(), message: failure?.message ?? notices.english,
                    errorCode: failure?.code, notices: failure?.said ?? notices)
                return state.phase
            }
        } catch {
            failure = failure ?? error
            phase = (try? store.read().phase) ?? .idle
        }
        let result = failure == nil ? "succeeded" : (isRefusal(failure!) ? "refused" : "failed")
        writeAudit(result: result, error: failure, notices: failure?.said ?? notices, phase: phase, served: served)
        if let failure { throw failure }
        return OperationOutcome(
            id: id, operation: request.operation, message: notices.english, notices: notices, phase: phase,
            served: served)
    }

    func step(_ operation: Operation, _ body: () throws(DeliveryError) -> [Notice]) throws(DeliveryError)
        -> [Notice]
    {
        progress(.stepStarted(operation))
        let stepStarted = (Date(), System.monotonicSeconds())
        func recordStep(_ result: String, _ error: DeliveryError?, _ notices: [Notice]) {
            guard request.operation == .runAll else { return }
            stepRecords.append(
                AuditStep(
                    operation: operation, startedAt: stepStarted.0,
                    durationSeconds: System.monotonicSeconds() - stepStarted.1, result: result,
                    errorCode: error?.code, notices: notices))
        }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            if state.running?.id == id { state.running?.step = operation }
        }
        do {
            let notices = try body()
            progress(.fraction(operation, 1))
            progress(.stepFinished(operation, succeeded: true, notices: notices))
            recordStepOfRunAll(operation, nil, notices)
            recordStep("succeeded", nil, notices)
            return notices
        } catch {
            progress(.stepFinished(operation, succeeded: false, notices: error.said))
            if !isRefusal(error) { recordStepOfRunAll(operation, error, error.said) }
            recordStep(isRefusal(error) ? "refused" : "failed", error, error.said)
            throw error
        }
    }

    /// Run all records each of its steps' results too, so that every step shows its latest result.
    func recordStepOfRunAll(_ operation: Operation, _ failure: DeliveryError?, _ notices: [Notice]) {
        guard request.operation == .runAll else { return }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            state.lastResults[operation] = StepResult(
                succeeded: failure == nil, finishedAt: Date(), message: failure?.message ?? notices.english,
                errorCode: failure?.code, notices: notices)
        }
    }

    func runAll() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        try requireAllowed(.runAll, state)
        try requireUpdatable()
        try requireRehearsalNotFailed(state, base: state.productionRevision) { () throws(DeliveryError) in
            try self.engine.upstreamWatch(self.recorder).changes(target: self.request.targetRevision).revision
        }
        if engine.configuration.rehearsalOptions.beforeRunAll {
            _ = try step(.rehearse) { () throws(DeliveryError) in try rehearse(automatic: true) }
        }
        _ = try step(.secure) { () throws(DeliveryError) in try secure() }
        _ = try step(.switchToDelivery) { () throws(DeliveryError) in try switchToDelivery() }
        _ = try step(.update) { () throws(DeliveryError) in try update() }
        return try step(.restore) { () throws(DeliveryError) in try restore() }
    }

    // MARK: Rules

    /// Refuses to deliver the revision whose last rehearsal failed, unless the administrator
    /// confirmed it (the audit record says so). Restore asks of production's `revision`. A Run all
    /// asks before the update, of the rehearsal that started from production's revision (`base`),
    /// and then of the revision its update would bring (`coming`, read from the upstream only
    /// then): an upstream that moved on since the failed rehearsal brings another revision, which
    /// the failure does not concern (a rehearsal of its own may run first, `beforeRunAll`).
    func requireRehearsalNotFailed(
        _ state: DeliveryState, base: Revision? = nil, revision: Revision? = nil,
        coming: (() throws(DeliveryError) -> Revision)? = nil
    ) throws(DeliveryError) {
        guard let rehearsal = state.rehearsal, !rehearsal.passed else { return }
        var concerned = false
        if let revision {
            concerned = rehearsal.revision.id == revision.id
        } else if let base, rehearsal.base.id == base.id, !rehearsal.updatedProduction {
            // When the upstream cannot be read now, the update would fail anyway: refused as failed.
            let next = coming.flatMap { read in try? read() }
            concerned = (next?.id ?? rehearsal.revision.id) == rehearsal.revision.id
        }
        guard concerned else { return }
        if request.confirmFailedRehearsal == true {
            rehearsalOverridden = true
            note(
                Notice(
                    .rehearsalOverridden,
                    ["revision": .revision(rehearsal.revision), "actor": .text(request.actor.name)]
                ).english)
            return
        }
        throw DeliveryError(
            .blockedByRehearsal,
            [
                Notice(
                    .refusedRehearsalFailed,
                    ["operation": .text(request.operation.rawValue), "revision": .revision(rehearsal.revision)])
            ])
    }

    /// Refuses an operation the state does not allow, with the reason in the site's terms.
    func requireAllowed(_ operation: Operation, _ state: DeliveryState) throws(DeliveryError) {
        let served = layout.servedTree()
        let copies = engine.copyStatuses(state)
        if DeliveryEngine.allowed(state, served: served, copies: copies).contains(operation) { return }
        let reason: NoticeCode
        switch operation {
        case .secure, .runAll:
            reason = served != .production ? .refusedServingCopy : .refusedDeliveryInProgress
        case .switchToDelivery:
            reason =
                state.phase == .idle || copies[.backup]?.complete != true
                ? .refusedSecureFirst : .refusedAlreadyDelivering
        case .update:
            reason = served == .production ? .refusedProductionServed : .refusedState
        case .restore:
            reason = .refusedNothingToRestore
        case .cancel:
            reason = .refusedNothingToCancel
        default:
            reason = .refusedState
        }
        throw DeliveryError(
            .wrongState, reason,
            ["operation": .text(operation.rawValue), "servedTree": .tree(served), "phase": .text(state.phase.rawValue)])
    }

    // MARK: Audit

    /// Writes the `started` record of an operation that opens a delivery (a secure from idle, a
    /// Run all), once it is allowed: the administrators hear of a delivery when it starts.
    private func auditStart() {
        deliveryIdSeen = deliveryIdSeen ?? id
        // A record of its own (its own id): the operation's record, with the operation's id, comes
        // when it ends.
        writeAudit(
            result: "started", error: nil,
            notices: [Notice(.deliveryStarted, ["operation": .text(request.operation.rawValue)])],
            phase: try? store.read().phase, served: layout.servedTree(), recordId: OperationIdentifier.make(),
            withRevisions: false)
    }

    /// Moodle's maintenance mode as this operation turned it on and off, with what the upgrade
    /// and the snapshot took of it.
    var maintenanceWindow: MaintenanceWindow? {
        MaintenanceWindow.of(
            recorder.maintenanceChanges, upgradeSeconds: upgradeSeconds, snapshotSeconds: snapshotTaken?.seconds)
    }

    func auditRefusal(_ error: DeliveryError) {
        writeAudit(
            result: "refused", error: error, notices: error.said, phase: try? store.read().phase,
            served: layout.servedTree())
    }

    func writeAudit(
        result: String, error: DeliveryError?, notices: [Notice], phase: DeliveryPhase?, served: TreeName?,
        recordId: String? = nil, withRevisions: Bool = true
    ) {
        let deliveryId = (try? store.read().deliveryId) ?? deliveryIdSeen
        let record = AuditRecord(
            id: recordId ?? id, deliveryId: deliveryId ?? nil, time: startedAt, actor: request.actor,
            operation: request.operation,
            result: result, securePath: request.securePath?.value, updatePath: request.updatePath?.value,
            securityCopy: [.secure, .runAll].contains(request.operation) ? request.securityCopy : nil,
            comment: request.comment, revisionBefore: withRevisions ? revisionBefore : nil,
            revisionAfter: withRevisions ? revisionAfter : nil,
            servedBefore: servedBefore, servedAfter: served, phaseAfter: phase, commands: recorder.summaries,
            durationSeconds: System.monotonicSeconds() - startedMonotonic, errorCode: error?.code,
            message: error?.message ?? notices.english,
            notices: notices, databaseRestored: databaseRestored ? true : nil, upstreamChanges: upstreamChanges,
            maintenance: maintenanceWindow, snapshot: snapshotTaken,
            healthCheck: healthReport, scheduled: request.scheduled ? true : nil, schedule: skippedSchedule,
            steps: stepRecords.isEmpty ? nil : stepRecords, rehearsal: rehearsalRecord,
            rehearsalOverridden: rehearsalOverridden ? true : nil)
        do {
            try engine.audit.append(record)
        } catch {
            engine.logger.error("audit log write failed: \(error.message)")
            progress(.line("Warning: \(error.message)"))
        }
    }
}
