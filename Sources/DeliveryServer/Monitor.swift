import DeliveryCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the API asks of the engine: the whole of it. In one process it is the `DeliveryEngine`
/// itself; split (`SeparatedServer`), it is a `MonitorClient` that asks the root monitor.
protocol EngineAccess: Sendable {
    func status() throws(DeliveryError) -> SiteStatus
    func plan() throws(DeliveryError) -> PreflightReport
    func history(limit: Int, offset: Int) throws(DeliveryError) -> [AuditRecord]
    func farmNodes() throws(DeliveryError) -> [FarmNodeStatus]
    func perform(
        _ request: OperationRequest, id: String?, progress: @escaping @Sendable (ProgressEvent) -> Void
    ) throws(DeliveryError) -> OperationOutcome
    func recordRefusal(_ request: OperationRequest, _ error: DeliveryError)
    func checkUpstream() throws(DeliveryError) -> UpstreamPreview
    func report(deliveryId: String) throws(DeliveryError) -> DeliveryReport
    func setSchedule(_ request: ScheduleRequest) throws(DeliveryError) -> DeliverySchedule
    func cancelSchedule(actor: Actor) throws(DeliveryError) -> DeliverySchedule
    /// Runs the scheduled Run all as job `id` when it is due; nil when nothing is.
    func runDueSchedule(id: String, progress: @escaping @Sendable (ProgressEvent) -> Void) throws(DeliveryError)
        -> OperationOutcome?
}

extension DeliveryEngine: EngineAccess {
    func checkUpstream() throws(DeliveryError) -> UpstreamPreview { try checkUpstream(onLine: { _ in }) }
    func setSchedule(_ request: ScheduleRequest) throws(DeliveryError) -> DeliverySchedule {
        try setSchedule(request, now: Date())
    }
    func runDueSchedule(id: String, progress: @escaping @Sendable (ProgressEvent) -> Void) throws(DeliveryError)
        -> OperationOutcome?
    {
        try runDueSchedule(id: id, now: Date(), progress: progress)
    }
}

/// One call of the request-facing process to the monitor: the closed set, nothing else.
enum MonitorCall: Codable, Equatable {
    case status
    case plan
    case history(limit: Int, offset: Int)
    case perform(request: OperationRequest, job: String)
    case refusal(request: OperationRequest, code: DeliveryError.Code, message: String, notices: [Notice])
    case checkUpstream
    case report(deliveryId: String)
    case setSchedule(request: ScheduleRequest)
    case cancelSchedule(actor: Actor)
    case runDueSchedule(job: String)
    case farmNodes
}

/// One frame of the monitor's answer: progress events, then exactly one of the others.
enum MonitorReply: Codable {
    case progress(ProgressEvent)
    case status(SiteStatus)
    case plan(PreflightReport)
    case history([AuditRecord])
    case outcome(OperationOutcome)
    case recorded
    case failure(code: DeliveryError.Code, message: String, notices: [Notice])
    case upstream(UpstreamPreview)
    case report(DeliveryReport)
    case schedule(DeliverySchedule)
    case scheduleRan(OperationOutcome?)
    case farm([FarmNodeStatus])
}

/// The frames on a call's socket: a 4-byte big-endian length, then that many bytes of JSON.
enum MonitorFrame {
    /// The largest call the monitor reads (a call holds one request: a comment of 2,000
    /// characters, names and paths).
    static let maxCallBytes = 1 << 20
    /// The largest answer the client reads (a history page of 1,000 records).
    static let maxReplyBytes = 64 << 20

    static func write<T: Encodable>(_ value: T, to fd: Int32) -> Bool {
        guard let body = try? JSONCoding.encode(value, pretty: false) else { return false }
        let count = UInt32(body.count)
        let header: [UInt8] = [
            UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff),
        ]
        return System.sendAll(fd, header + body)
    }

    /// The next frame's bytes; nil at the end of the stream.
    static func read(from fd: Int32, limit: Int) throws(DeliveryError) -> [UInt8]? {
        do {
            guard let header = try System.readExactly(fd, count: 4) else { return nil }
            let count = header.reduce(0) { $0 << 8 | Int($1) }
            guard count <= limit else { throw DeliveryError(.badRequest, "a frame of \(count) bytes is too large") }
            guard let body = try System.readExactly(fd, count: count) else {
                throw DeliveryError(.io, "the stream ended inside a frame")
            }
            return body
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "reading a frame: \(error)")
        }
    }
}

/// The root side of the split: it holds the engine and answers the request-facing process's
/// calls, one thread per call, each on a socket of its own passed over the channel. It trusts
/// nothing it is sent: every call is decoded strictly (one member, no duplicate key), checked
/// again (the engine validates each request itself), and bounded (calls in flight, one preflight,
/// one rollback and one other operation at a time).
final class Monitor: Sendable {
    struct InFlight {
        var calls = 0
        var plan = false
        var rollback = false
        var operation = false
        var upstream = false
    }

    /// The most calls answered at once.
    static let maxCalls = 96
    /// How long the other side has to send its call once the socket is passed.
    static let callReadTimeoutSeconds = 10.0

    let engine: DeliveryEngine
    let logger: Logger
    /// The farm socket's peers (`farm.allowedUids`; empty without a farm socket): the only uids a
    /// `farm` request can come from.
    let farmPeers: Set<UInt32>
    private let inFlight = Locked(InFlight())

    init(engine: DeliveryEngine, logger: Logger, farmPeers: Set<UInt32> = []) {
        self.engine = engine
        self.logger = logger
        self.farmPeers = farmPeers
    }

    /// Answers calls until the other side closes the channel.
    func serve(channel: Int32) {
        while true {
            let received: Int32?
            do {
                received = try System.receiveDescriptor(over: channel)
            } catch {
                logger.error("monitor: a message on the channel carried no socket: \(error)")
                continue
            }
            guard let fd = received else { return }
            let admitted = inFlight.withLock { state in
                guard state.calls < Self.maxCalls else { return false }
                state.calls += 1
                return true
            }
            guard admitted else {
                _ = MonitorFrame.write(
                    MonitorReply.failure(code: .badRequest, message: "too many calls at once", notices: []), to: fd)
                System.close(fd)
                continue
            }
            do {
                try System.startDetachedThread { [self] in
                    answer(fd)
                    inFlight.withLock { $0.calls -= 1 }
                }
            } catch {
                System.close(fd)
                inFlight.withLock { $0.calls -= 1 }
            }
        }
    }

    /// Reads one call on `fd`, answers it and closes `fd`.
    func answer(_ fd: Int32) {
        defer { System.close(fd) }
        let reply: MonitorReply
        do throws(DeliveryError) {
            try? System.setTimeouts(fd, seconds: Self.callReadTimeoutSeconds)
            guard let bytes = try MonitorFrame.read(from: fd, limit: MonitorFrame.maxCallBytes) else { return }
            let call: MonitorCall
            do {
                call = try JSONCoding.decode(MonitorCall.self, from: bytes)
            } catch {
                throw DeliveryError(.badRequest, "the monitor refused a call it cannot read")
            }
            // The answer of a long operation may take an hour: no deadline on writes.
            try? System.setTimeouts(fd, seconds: 0)
            reply = try run(call, progress: { event in _ = MonitorFrame.write(MonitorReply.progress(event), to: fd) })
        } catch {
            reply = .failure(code: error.code, message: error.message, notices: error.notices)
        }
        _ = MonitorFrame.write(reply, to: fd)
    }

    /// Checks and runs one call.
    func run(_ call: MonitorCall, progress: @escaping @Sendable (ProgressEvent) -> Void) throws(DeliveryError)
        -> MonitorReply
    {
        switch call {
        case .status:
            return .status(try engine.status())
        case .plan:
            try claim(\.plan, "a check (preflight) is already running")
            defer { release(\.plan) }
            return .plan(try engine.plan())
        case .history(let limit, let offset):
            guard (1...1000).contains(limit), (0...100_000_000).contains(offset) else {
                throw DeliveryError(.badRequest, "history limit or offset out of range")
            }
            return .history(try engine.history(limit: limit, offset: offset))
        case .perform(let request, let job):
            guard OperationIdentifier.isValid(job) else { throw DeliveryError(.badRequest, "malformed job id") }
            try checkActor(request.actor)
            // A farm's coordinator never restores a node's database (the farm socket refuses it
            // too): no confirmation, no second factor from a farm request.
            if request.actor.isFromFarmCoordinator,
                request.confirmDatabaseRestore != nil || request.secondFactorCode != nil
            {
                throw DeliveryError(
                    .badRequest, "a farm request takes no database restore confirmation nor second factor")
            }
            // Only the helper's own timer asks for a revision, from the schedule it keeps, and a
            // farm's coordinator, for the update of its lock-step delivery.
            guard !request.scheduled,
                request.targetRevision == nil || (request.actor.isFromFarmCoordinator && request.operation == .update)
            else {
                throw DeliveryError(.badRequest, "a request may not name a revision or claim to be scheduled")
            }
            // The stages of a farm's lock-step upgrade are a coordinator's to ask.
            guard request.farmStage == nil || request.actor.isFromFarmCoordinator else {
                throw DeliveryError(.badRequest, "only a farm's coordinator asks for a stage of a restore")
            }
            let slot: WritableKeyPath<InFlight, Bool> = request.operation == .rollback ? \.rollback : \.operation
            try claim(slot, "'\(request.operation.rawValue)' is already running")
            defer { release(slot) }
            return .outcome(try engine.perform(request, id: job, progress: progress))
        case .refusal(let request, let code, let message, let notices):
            try checkActor(request.actor)
            guard message.count <= 4000, notices.count <= 20 else {
                throw DeliveryError(.badRequest, "refusal message too long")
            }
            engine.recordRefusal(request, DeliveryError(code, message: message, notices: notices))
            return .recorded
        case .checkUpstream:
            try claim(\.upstream, "an upstream check is already running")
            defer { release(\.upstream) }
            return .upstream(try engine.checkUpstream())
        case .report(let deliveryId):
            return .report(try engine.report(deliveryId: deliveryId))
        case .setSchedule(let request):
            try checkActor(request.actor, farm: false)
            return .schedule(try engine.setSchedule(request))
        case .cancelSchedule(let actor):
            try checkActor(actor, farm: false)
            return .schedule(try engine.cancelSchedule(actor: actor))
        case .farmNodes:
            return .farm(try engine.farmNodes())
        case .runDueSchedule(let job):
            guard OperationIdentifier.isValid(job) else { throw DeliveryError(.badRequest, "malformed job id") }
            try claim(\.operation, "an operation is already running")
            defer { release(\.operation) }
            return .scheduleRan(try engine.runDueSchedule(id: job, progress: progress))
        }
    }

    /// What the plugin (`moodle`), the console or a farm coordinator (`farm`, where `farm` allows
    /// it) can claim: a request of theirs, from a peer the kernel named — a farm request from a
    /// farm peer only, the others never from one.
    func checkActor(_ actor: Actor, farm: Bool = true) throws(DeliveryError) {
        guard Actor.socketSources.contains(actor.source), let peer = actor.peerUid, actor.claimed == true,
            actor.isFromFarmCoordinator || actor.farmDelivery == nil
        else {
            throw DeliveryError(.badRequest, "the request does not carry the peer and claim the responder records")
        }
        guard actor.isFromFarmCoordinator == farmPeers.contains(peer), !actor.isFromFarmCoordinator || farm else {
            throw DeliveryError(
                .badRequest, "a farm request comes from the farm socket's peers only, and only for operations")
        }
    }

    private func claim(_ slot: WritableKeyPath<InFlight, Bool>, _ message: String) throws(DeliveryError) {
        let taken = inFlight.withLock { state in
            if state[keyPath: slot] { return false }
            state[keyPath: slot] = true
            return true
        }
        guard taken else { throw DeliveryError(.lockHeld, message) }
    }

    private func release(_ slot: WritableKeyPath<InFlight, Bool>) {
        inFlight.withLock { $0[keyPath: slot] = false }
    }
}

/// The request-facing side's way to the engine: each call on a new socket pair whose other end is
/// passed to the monitor over the channel.
final class MonitorClient: EngineAccess {
    let channel: Int32

    init(channel: Int32) {
        self.channel = channel
    }

    func status() throws(DeliveryError) -> SiteStatus {
        guard case .status(let status) = try call(.status) else { throw Self.unexpected }
        return status
    }

    func plan() throws(DeliveryError) -> PreflightReport {
        guard case .plan(let report) = try call(.plan) else { throw Self.unexpected }
        return report
    }

    func history(limit: Int, offset: Int) throws(DeliveryError) -> [AuditRecord] {
        guard case .history(let records) = try call(.history(limit: limit, offset: offset)) else {
            throw Self.unexpected
        }
        return records
    }

    func perform(
        _ request: OperationRequest, id: String?, progress: @escaping @Sendable (ProgressEvent) -> Void
    ) throws(DeliveryError) -> OperationOutcome {
        guard let id else { throw DeliveryError(.badRequest, "an operation of the responder needs its job id") }
        guard case .outcome(let outcome) = try call(.perform(request: request, job: id), progress: progress) else {
            throw Self.unexpected
        }
        return outcome
    }

    func farmNodes() throws(DeliveryError) -> [FarmNodeStatus] {
        guard case .farm(let nodes) = try call(.farmNodes) else { throw Self.unexpected }
        return nodes
    }

    func recordRefusal(_ request: OperationRequest, _ error: DeliveryError) {
        _ = try? call(.refusal(request: request, code: error.code, message: error.message, notices: error.notices))
    }

    func checkUpstream() throws(DeliveryError) -> UpstreamPreview {
        guard case .upstream(let preview) = try call(.checkUpstream) else { throw Self.unexpected }
        return preview
    }

    func report(deliveryId: String) throws(DeliveryError) -> DeliveryReport {
        guard case .report(let report) = try call(.report(deliveryId: deliveryId)) else { throw Self.unexpected }
        return report
    }

    func setSchedule(_ request: ScheduleRequest) throws(DeliveryError) -> DeliverySchedule {
        guard case .schedule(let schedule) = try call(.setSchedule(request: request)) else { throw Self.unexpected }
        return schedule
    }

    func cancelSchedule(actor: Actor) throws(DeliveryError) -> DeliverySchedule {
        guard case .schedule(let schedule) = try call(.cancelSchedule(actor: actor)) else { throw Self.unexpected }
        return schedule
    }

    func runDueSchedule(id: String, progress: @escaping @Sendable (ProgressEvent) -> Void) throws(DeliveryError)
        -> OperationOutcome?
    {
        guard case .scheduleRan(let outcome) = try call(.runDueSchedule(job: id), progress: progress) else {
            throw Self.unexpected
        }
        return outcome
    }

    private static let unexpected = DeliveryError(.io, "the helper's monitor answered something unexpected")

    /// Sends one call and reads its answer, handing progress events to `progress` as they come.
    func call(_ call: MonitorCall, progress: ((ProgressEvent) -> Void)? = nil) throws(DeliveryError) -> MonitorReply {
        let ours: Int32
        let theirs: Int32
        do {
            (ours, theirs) = try System.socketPair()
        } catch {
            throw DeliveryError(.io, "cannot make a socket pair for the monitor: \(error)")
        }
        defer { System.close(ours) }
        do {
            defer { System.close(theirs) }
            try System.sendDescriptor(theirs, over: channel)
        } catch {
            throw DeliveryError(.io, "the helper's monitor is gone: \(error)")
        }
        guard MonitorFrame.write(call, to: ours) else {
            throw DeliveryError(.io, "the helper's monitor did not take the call")
        }
        while true {
            guard let bytes = try MonitorFrame.read(from: ours, limit: MonitorFrame.maxReplyBytes) else {
                throw DeliveryError(.io, "the helper's monitor ended the call without an answer")
            }
            let reply: MonitorReply
            do {
                reply = try JSONCoding.decode(MonitorReply.self, from: bytes)
            } catch {
                throw DeliveryError(.io, "the helper's monitor answered something unreadable: \(error)")
            }
            switch reply {
            case .progress(let event): progress?(event)
            case .failure(let code, let message, let notices):
                throw DeliveryError(code, message: message, notices: notices)
            default: return reply
            }
        }
    }
}
