import Foundation
import Synchronization

/// What a farm delivery brought (`deliveryctl farm run-all`).
public struct FarmDeliveryOutcome: Sendable, Codable, Equatable {
    /// The farm delivery's id, in every node's audit log.
    public var id: String
    /// The revision every node serves now.
    public var revision: String?
    /// The nodes, this one first.
    public var nodes: [String]
}

/// One delivery across a web farm, in lock-step: each step on every node (this one, the
/// coordinator, and the others over the farm channel) before the next begins. Secure on all,
/// switch all, update this node and then every other to the very commit this node reached, restore
/// this node and then the others. Before anything, every node must answer with the same site and
/// version and be at rest. Before any node restores, every node's preflight. Without a Moodle
/// upgrade every node restores at once; with one, the restore is the lock-step upgrade
/// (`FarmDelivery+Restore`): maintenance mode and the snapshot once, on this node, every node
/// switched to production, Moodle's upgrade once, here, then every node's health check. When a
/// step fails on a node, every node is brought back to the code all of them served before:
/// `cancel` where the step left a copy serving, `rollback` (the other nodes first, then this node
/// with the database) once a restore began; the error says where each node stands.
struct FarmDelivery {
    let engine: DeliveryEngine
    let farm: FarmSettings
    let site: String
    let actor: Actor
    var comment: String?
    var securityCopy: Bool
    let say: @Sendable (String) -> Void

    /// The farm delivery's id: `F` and an operation id (8 to 64 letters, digits, `-`).
    var id = "F" + OperationIdentifier.make()

    /// One SSH connection per node for the whole operation (its first request opens it); all
    /// closed when the operation ends.
    let connections = FarmConnections()

    /// The longest a node's step is waited for.
    static let stepSeconds = 6.0 * 3600

    /// What a step did on every participant (the coordinator is `nil`): where it succeeded,
    /// where it failed and why, and the codes of the notices each success said.
    struct StepOutcome {
        var succeeded: Set<String?> = []
        var failed: [(String?, DeliveryError)] = []
        var notices: [String?: [String]] = [:]
    }

    func run() throws(DeliveryError) -> FarmDeliveryOutcome {
        let lock = try takeFarmLock()
        defer { System.close(lock) }
        try checkAtRest()
        say(
            "Farm delivery \(id): \(farm.nodes.count + 1) nodes (this one and \(farm.nodes.map(\.name).joined(separator: ", ")))"
        )

        try secureEverywhere()
        try switchEverywhere()
        let (commit, label) = try updateEverywhere()
        try restoreEverywhere(cancelsWhenNotReady: true)
        say("Farm delivery \(id): every node serves \(label)")
        return FarmDeliveryOutcome(id: id, revision: commit, nodes: [site] + farm.nodes.map(\.name))
    }

    /// Secure on every node at once; a failure changes nothing served.
    func secureEverywhere(path: ComponentPath? = nil) throws(DeliveryError) {
        let done = try step(
            "secure", local: localRequest(.secure, securePath: path), call: Self.same(call("secure", path: path)))
        guard done.failed.isEmpty else {
            throw failure("secure", done, undone: [:], standing: "Production still serves on every node")
        }
    }

    /// Switch on every node at once; the nodes that switched cancel when one fails.
    func switchEverywhere() throws(DeliveryError) {
        let done = try step("switch", local: localRequest(.switchToDelivery), call: Self.same(call("switch")))
        guard done.failed.isEmpty else {
            let undone = bringBack(done.succeeded, with: "cancel")
            throw failure("switch", done, undone: undone, standing: "Production serves on every node again")
        }
    }

    /// Update: every node to the same commit, the one this node's update resolves (the upstream's
    /// latest, or what a passed rehearsal tried). A whole update with git or svn names it before
    /// it changes production: every other node then checks out exactly that commit while this
    /// node's update goes on. Otherwise (cvs, a component path) the other nodes follow once this
    /// node's update ended, to the commit it reached. Every node cancels when one fails.
    /// - Returns: the commit and its label.
    func updateEverywhere(path: ComponentPath? = nil) throws(DeliveryError) -> (commit: String, label: String) {
        let handoff = UpdateTargetHandoff()
        var done = try step(
            "update", local: localRequest(.update, comment: comment, updatePath: path),
            call: { _ in call("update", targetRevision: handoff.revision?.id, path: path) }, handoff: handoff)
        guard done.failed.isEmpty else {
            let undone = bringBack(allParticipants, with: "cancel")
            throw failure(
                "update", done, undone: undone, standing: "Production serves the code before the delivery on every node"
            )
        }
        let revision = try engine.status().productionRevision
        guard let commit = revision?.id else {
            throw DeliveryError(.io, "this node's update left no revision to bring the other nodes to")
        }
        if let target = handoff.revision {
            guard target.id == commit else {
                let undone = bringBack(allParticipants, with: "cancel")
                let reached = DeliveryError(
                    .vcsFailed, "its update reached \(revision?.label ?? commit), not \(target.label) as it said")
                throw failure(
                    "update", StepOutcome(failed: [(nil, reached)]), undone: undone,
                    standing: "Production serves the code before the delivery on every node")
            }
            return (commit, revision?.label ?? commit)
        }
        say("update: this node is at \(revision?.label ?? commit); bringing every node to exactly \(commit)")
        done = try step("update", local: nil, call: Self.same(call("update", targetRevision: commit, path: path)))
        guard done.failed.isEmpty else {
            let undone = bringBack(allParticipants, with: "cancel")
            throw failure(
                "update", done, undone: undone, standing: "Production serves the code before the delivery on every node"
            )
        }
        return (commit, revision?.label ?? commit)
    }

    /// Every other node's state, asked before a farm operation starts; refused, naming the node,
    /// when one cannot be asked (`what` names the operation in the refusal).
    func answeringNodes(before what: String) throws(DeliveryError) -> [FarmNodeStatus] {
        let nodes = try engine.farmStatus(connections: connections)
        if let silent = nodes.first(where: { $0.problem != nil }) {
            throw DeliveryError(
                .farmUnreachable,
                "\(what) did not start: \(silent.node): \(silent.problem ?? "not asked"); nothing was changed")
        }
        return nodes
    }

    /// Every participant: this node (`nil`) and the others by name.
    var allParticipants: Set<String?> { Set([nil] + farm.nodes.map { Optional($0.name) }) }

    /// One farm-wide delivery at a time on this coordinator (an OFD lock on `farm.lock`).
    func takeFarmLock() throws(DeliveryError) -> Int32 {
        let fd: Int32
        let taken: Bool
        do {
            fd = try System.open("\(engine.configuration.stateDirectory)/farm.lock", O_RDWR | O_CREAT, 0o600)
        } catch {
            throw DeliveryError.io("cannot open the farm lock", error)
        }
        do {
            taken = try System.lockFile(fd, wait: false)
        } catch {
            System.close(fd)
            throw DeliveryError.io("cannot take the farm lock", error)
        }
        guard taken else {
            System.close(fd)
            throw DeliveryError(.lockHeld, "another farm delivery of this site runs on this node")
        }
        return fd
    }

    /// Every node answers with this site and version, at rest (idle or secured, nothing running);
    /// otherwise nothing starts anywhere.
    func checkAtRest() throws(DeliveryError) {
        let checks = try engine.checkFarm(site: site, connections: connections)
        let mismatched = checks.filter { !$0.matches }.map(\.summary)
        guard mismatched.isEmpty else {
            throw DeliveryError(
                .wrongState,
                "the farm delivery did not start: \(mismatched.joined(separator: "; ")); nothing was changed")
        }
        var busy: [String] = []
        let own = try engine.status()
        if ![.idle, .secured].contains(own.phase) || own.running != nil {
            busy.append(
                "this node is \(own.phase.rawValue)\(own.running.map { ", running \($0.operation.rawValue)" } ?? "")")
        }
        for node in try answeringNodes(before: "the farm delivery") {
            if ![.idle, .secured].contains(node.phase) || node.running != nil { busy.append(node.summary) }
        }
        guard busy.isEmpty else {
            throw DeliveryError(
                .wrongState,
                "the farm delivery did not start: every node must be at rest (idle or secured), and \(busy.joined(separator: "; ")); nothing was changed"
            )
        }
    }

    func localRequest(
        _ operation: Operation, comment: String? = nil, securePath: ComponentPath? = nil,
        updatePath: ComponentPath? = nil, farmStage: FarmStage? = nil
    ) throws(DeliveryError) -> OperationRequest {
        var local = actor
        local.farmDelivery = id
        return try OperationRequest(
            operation, actor: local, securePath: securePath, updatePath: updatePath,
            securityCopy: operation == .secure && securityCopy, comment: comment, farmStage: farmStage)
    }

    /// The body of a node helper's `POST /operations`.
    func call(
        _ operation: String, targetRevision: String? = nil, farmStage: FarmStage? = nil, path: ComponentPath? = nil
    ) -> String {
        struct Call: Encodable {
            var operation: String
            var securityCopy: Bool?
            var securePath: String?
            var updatePath: String?
            var comment: String?
            var targetRevision: String?
            var farmStage: FarmStage?
        }
        let body = Call(
            operation: operation, securityCopy: operation == "secure" && securityCopy ? true : nil,
            securePath: operation == "secure" ? path?.value : nil,
            updatePath: operation == "update" ? path?.value : nil,
            comment: operation == "update" ? comment : nil, targetRevision: targetRevision, farmStage: farmStage)
        return (try? JSONCoding.encode(body, pretty: false)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Runs a step on this node (`local`) and on `nodes` (every other node by default) at once,
    /// and waits for all of them. With a `handoff` (an update), the other nodes are asked once
    /// this node's update named its revision, and not at all when it ended without naming one.
    func step(
        _ name: String, local: OperationRequest?, call: (@Sendable (FarmNode) -> String)?, nodes: [FarmNode]? = nil,
        handoff: UpdateTargetHandoff? = nil
    ) throws(DeliveryError) -> StepOutcome {
        let others = call == nil ? [] : (nodes ?? farm.nodes)
        let started = System.monotonicSeconds()
        let (localResult, remote) = concurrently(
            { () -> Result<[String], DeliveryError>? in
                defer { handoff?.give(nil) }
                guard let local else { return nil }
                return Result { () throws(DeliveryError) in
                    try engine.perform(
                        local, progress: { _ in }, farmHooks: nil, onUpdateTarget: handoff.map { $0.give }
                    ).notices.map(\.code)
                }
            },
            { () -> [Int: Result<FarmReply, DeliveryError>]? in
                guard let call else { return [:] }
                if let handoff {
                    guard let target = handoff.wait() else { return nil }
                    say(
                        "\(name): this node goes to \(target.label); bringing every node to exactly \(target.id) at once"
                    )
                }
                return engine.ask(
                    others, { FarmRequest(request: "operation", farmDelivery: id, call: call($0)) },
                    connections: connections, waitSeconds: Self.stepSeconds)
            })
        var outcome = StepOutcome()
        for (participant, result) in [(nil, localResult)]
            + (remote == nil ? [] : others).enumerated().map({
                (Optional($1.name), Optional(Self.jobResult(remote?[$0])))
            })
        {
            switch result {
            case .success(let notices):
                outcome.succeeded.insert(participant)
                outcome.notices[participant] = notices
            case .failure(let error): outcome.failed.append((participant, error))
            case nil: continue
            }
        }
        let (succeeded, failed) = (outcome.succeeded, outcome.failed)
        let seconds = String(format: "%.1f", System.monotonicSeconds() - started)
        let names = succeeded.map { $0 ?? "this node" }.sorted()
        say(
            "\(name): \(names.isEmpty ? "no node" : names.joined(separator: ", ")) done in \(seconds) s\(failed.isEmpty ? "" : "; failed on \(failed.map { $0.0 ?? "this node" }.joined(separator: ", "))")"
        )
        return outcome
    }

    /// A node's answer to an operation: the codes of its finished job's notices, or why it failed
    /// (its job's error, or its helper's refusal).
    static func jobResult(_ answer: Result<FarmReply, DeliveryError>?) -> Result<[String], DeliveryError> {
        guard let answer else { return .failure(DeliveryError(.farmUnreachable, "not asked")) }
        let reply: FarmReply
        switch answer {
        case .failure(let error): return .failure(error)
        case .success(let value): reply = value
        }
        if let error = reply.error {
            return .failure(DeliveryError(.farmUnreachable, "it refused (\(error.code)): \(error.message)"))
        }
        struct Job: Decodable {
            struct Failure: Decodable {
                var code: String
                var message: String
            }
            struct Result: Decodable {
                struct Said: Decodable { var code: String }
                var notices: [Said]?
            }
            var state: String?
            var error: Failure?
            var result: Result?
        }
        let job = try? JSONCoding.decode(Job.self, from: Array((reply.answer ?? "").utf8))
        if reply.status == 200, job?.state == "succeeded" {
            return .success(job?.result?.notices?.map(\.code) ?? [])
        }
        let code = DeliveryError.Code(rawValue: job?.error?.code ?? "") ?? .io
        return .failure(
            DeliveryError(
                code,
                job?.error?.message ?? "its helper answered \(reply.status ?? 0): \((reply.answer ?? "").prefix(300))"))
    }

    /// Brings participants back with `cancel` or `rollback`, all at once; what could not be.
    func bringBack(_ participants: Set<String?>, with operation: String) -> [String?: DeliveryError] {
        guard !participants.isEmpty else { return [:] }
        say("Bringing \(participants.map { $0 ?? "this node" }.sorted().joined(separator: ", ")) back (\(operation))…")
        let local: OperationRequest? =
            participants.contains(nil) ? try? localRequest(operation == "cancel" ? .cancel : .rollback) : nil
        let nodes = farm.nodes.filter { participants.contains($0.name) }
        guard
            let done = try? step(
                "\(operation) (bringing back)", local: local, call: nodes.isEmpty ? nil : Self.same(call(operation)),
                nodes: nodes)
        else {
            return [nil: DeliveryError(.io, "the \(operation) could not be started")]
        }
        return Dictionary(done.failed, uniquingKeysWith: { first, _ in first })
    }

    /// The same call for every node.
    static func same(_ body: String) -> @Sendable (FarmNode) -> String {
        { _ in body }
    }

    /// The error of a failed step: which nodes, why, what was brought back, where the farm stands.
    func failure(
        _ name: String, _ done: StepOutcome,
        undone: [String?: DeliveryError], standing: String
    ) -> DeliveryError {
        let why = done.failed.map { "\($0.0 ?? "this node"): \(Self.clause($0.1.message))" }.joined(separator: "; ")
        if undone.isEmpty {
            return DeliveryError(.farmStepFailed, "farm delivery \(id): \(name) failed on \(why). \(standing).")
        }
        let stuck = undone.map { "\($0.key ?? "this node"): \(Self.clause($0.value.message))" }.sorted()
            .joined(separator: "; ")
        return DeliveryError(
            .farmStepFailed,
            "farm delivery \(id): \(name) failed on \(why). Bringing back failed on \(stuck). Now: \(standingNow()). Once every node answers, deliveryctl farm recover brings them in line with this node; until then a node that cannot be reached may still serve what it served: take it out of the load balancer."
        )
    }
}

extension FarmDelivery {
    /// Where each node stands now, as its helper says: its state, the copy it serves, production's revision.
    func standingNow() -> String {
        var parts: [String] = []
        if let own = try? engine.status() {
            parts.append(
                "this node is \(own.phase.rawValue), serves \(own.served?.rawValue ?? "no known copy"), production at \(own.productionRevision?.label ?? "?")"
            )
        }
        for node in (try? engine.farmStatus(connections: connections)) ?? [] {
            parts.append(
                node.problem == nil
                    ? "\(node.node) is \(node.summary.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "")"
                    : node.summary)
        }
        return parts.joined(separator: "; ")
    }

    /// A node's message as a clause of the farm's sentence: no outer spaces, no final period.
    static func clause(_ message: String) -> String {
        var text = message.trimmingWhitespace()
        while text.hasSuffix(".") { text.removeLast() }
        return text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}

extension DeliveryEngine {
    /// Delivers the upstream's latest revision across the site's web farm in lock-step
    /// (`FarmDelivery`); `say` gets a line per step.
    /// - Throws: `.configuration` without a farm; `.farmUnreachable` or `.wrongState` before
    ///   anything changed; `.farmStepFailed` when a step failed on a node (the farm brought back).
    public func runFarmDelivery(
        site: String, actor: Actor, comment: String?, securityCopy: Bool, say: @escaping @Sendable (String) -> Void
    ) throws(DeliveryError) -> FarmDeliveryOutcome {
        var delivery = try farmDelivery(site: site, actor: actor, say: say)
        (delivery.comment, delivery.securityCopy) = (comment, securityCopy)
        return try delivery.run()
    }
}

/// The revision a coordinator's update goes to, handed from that update (on one thread) to the
/// other nodes' requests (on another) as soon as it is known; nil once the update ended without
/// naming one (cvs, a component path, a failure before it).
final class UpdateTargetHandoff: Sendable {
    private let given = Mutex<(done: Bool, revision: Revision?)>((false, nil))
    private let ready = OneTimeEvent()

    /// The first call counts: the revision, or nil for none.
    func give(_ revision: Revision?) {
        let first = given.withLock { (value: inout (done: Bool, revision: Revision?)) -> Bool in
            guard !value.done else { return false }
            value = (true, revision)
            return true
        }
        if first { ready.set() }
    }

    /// Waits for `give`; its revision.
    func wait() -> Revision? {
        ready.wait()
        return revision
    }

    /// What was given so far.
    var revision: Revision? { given.withLock { $0.revision } }
}
