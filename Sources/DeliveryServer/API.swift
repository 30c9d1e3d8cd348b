import DeliveryCore
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A parsed, authenticated request.
struct APIRequest {
    var method: String
    var path: String
    var query: [String: String]
    var body: [UInt8]
    var actor: Actor
}

/// The site's status as the API sends it (`docs/protocol.md`): the engine's `SiteStatus`, plus
/// the helper's running job.
struct StatusView: Encodable {
    struct JobSummary: Encodable {
        var id: String
        var operation: String
        var state: JobState
        var actor: Actor
        var startedAt: Date
    }

    var site: SiteStatus
    var job: JobSummary?

    init(_ status: SiteStatus, job: Job?) {
        site = status
        self.job = job.map {
            JobSummary(
                id: $0.id, operation: $0.request.operation.rawValue, state: $0.view(offset: 0, maxLines: 0).state,
                actor: $0.request.actor, startedAt: $0.startedAt)
        }
    }
}

/// The body of `POST /operations`.
struct OperationBody: Decodable {
    var operation: String
    var securePath: String?
    var updatePath: String?
    var securityCopy: Bool?
    var comment: String?
    var confirmDatabaseRestore: Bool?
    var secondFactorCode: String?
    /// update, on the farm socket only: the revision the farm's coordinator resolved.
    var targetRevision: String?
    /// restore, on the farm socket only: this node's stage of the farm's lock-step upgrade.
    var farmStage: String?

    /// Every member an operation takes (`Operation.requestMembers` and `farmRequestMembers`) and
    /// `operation`.
    static let members: Set<String> = Set(
        Operation.allCases.flatMap { $0.requestMembers + $0.farmRequestMembers } + ["operation"])
}

/// The body of `PUT /schedule`.
struct ScheduleBody: Decodable {
    var at: String
    var revision: String
    var onlyIfPreflightPasses: Bool?
    var securityCopy: Bool?
    var comment: String?

    static let members: Set<String> = ["at", "revision", "onlyIfPreflightPasses", "securityCopy", "comment"]
}

/// The member names of a JSON object, to refuse unknown ones.
private struct MemberNames: Decodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let names: [String]

    init(from decoder: any Decoder) throws {
        names = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue)
    }
}

/// The lock holder sent with a `lock_held` refusal.
struct HolderView: Encodable {
    var name: String
    var moodleUserId: Int?
    var operation: String
    var job: String?
    var since: Date
}

private struct LockHeldBody: Encodable {
    struct Detail: Encodable {
        let code: String
        let message: String
        let holder: HolderView
    }
    let error: Detail
}

/// The routes of the API over one engine.
final class API: Sendable {
    let engine: any EngineAccess
    let jobs: JobRegistry
    let limits: ServerLimits
    let logger: Logger
    /// True while a preflight runs (one at a time).
    private let preflightRunning = Locked(false)
    let consoleTokens = ConsoleTokens()
    /// The site's configuration file: the console's shell commands name it (`--config`), so that
    /// they act on this site on a server with several.
    let siteConfiguration: String
    /// The helper's request threads: half of them at most wait for a job's end (`GET /jobs/{id}?wait=N`).
    let workers: Int
    /// The requests waiting for a job's end now.
    private let jobWaits = Locked(0)

    init(
        engine: any EngineAccess, jobs: JobRegistry, limits: ServerLimits, logger: Logger,
        siteConfiguration: String = SiteConfiguration.defaultPath, workers: Int = 4
    ) {
        self.engine = engine
        self.jobs = jobs
        self.limits = limits
        self.logger = logger
        self.siteConfiguration = siteConfiguration
        self.workers = workers
    }

    /// The routes: `GET /status`, `POST /operations`, `GET /jobs/{id}`, `GET /history`,
    /// `GET /preflight`, `POST /console-tokens`, `POST /upstream-checks`, `GET /reports/{id}`,
    /// `PUT` and `DELETE /schedule`.
    func handle(_ request: APIRequest) -> Response {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let route = parts.map(String.init)
        do throws(APIError) {
            switch (request.method, route) {
            case ("GET", ["status"]): return try status()
            case ("POST", ["operations"]): return try startOperation(request)
            case ("GET", let route) where route.count == 2 && route[0] == "jobs":
                return try job(route[1], request)
            case ("GET", ["history"]): return try history(request.query)
            case ("GET", ["preflight"]): return try preflight()
            case ("GET", ["farm"]): return try farm(request)
            case ("POST", ["console-tokens"]): return try issueConsoleToken(request)
            case ("POST", ["upstream-checks"]): return try checkUpstream(request)
            case ("GET", let route) where route.count == 2 && route[0] == "reports":
                return .json(
                    200, try engineCall { () throws(DeliveryError) in try engine.report(deliveryId: route[1]) })
            case ("PUT", ["schedule"]): return try setSchedule(request)
            case ("DELETE", ["schedule"]):
                return .json(
                    200, try engineCall { () throws(DeliveryError) in try engine.cancelSchedule(actor: request.actor) })
            case (_, ["status"]), (_, ["operations"]), (_, ["history"]), (_, ["console-tokens"]), (_, ["preflight"]),
                (_, ["upstream-checks"]), (_, ["schedule"]), (_, ["farm"]):
                throw APIError(.methodNotAllowed, "\(Self.printable(request.method)) is not allowed on \(request.path)")
            case (_, let route) where route.count == 2 && (route[0] == "jobs" || route[0] == "reports"):
                throw APIError(.methodNotAllowed, "\(Self.printable(request.method)) is not allowed on \(route[0])")
            default:
                throw APIError(.notFound, "no such route")
            }
        } catch {
            return .error(error)
        }
    }

    private func engineCall<T>(_ body: () throws(DeliveryError) -> T) throws(APIError) -> T {
        do {
            return try body()
        } catch {
            if [.io, .configuration, .privileges].contains(error.code) {
                logger.error(
                    "engine error", metadata: ["code": "\(error.code.rawValue)", "message": "\(error.message)"])
            }
            throw APIError(error)
        }
    }

    /// The preflight runs PHP and the VCS for seconds on a worker: one at a time, so that the
    /// other workers stay free for status, rollback and the console.
    private func preflight() throws(APIError) -> Response {
        let admitted = preflightRunning.withLock { running in
            defer { running = true }
            return !running
        }
        guard admitted else {
            throw APIError(.busy, "a check (preflight) is already running; retry in a moment")
        }
        defer { preflightRunning.withLock { $0 = false } }
        return .json(200, try engineCall { () throws(DeliveryError) in try engine.plan() }.withVerdict)
    }

    /// `POST /upstream-checks`: the body is `{}` (or empty).
    private func checkUpstream(_ request: APIRequest) throws(APIError) -> Response {
        if !request.body.isEmpty {
            guard let names = try? JSONCoding.decode(MemberNames.self, from: request.body).names, names.isEmpty else {
                throw APIError.badRequest("the body of an upstream check is {}")
            }
        }
        return .json(200, try engineCall { () throws(DeliveryError) in try engine.checkUpstream() })
    }

    /// `PUT /schedule`: a Run all of the waiting revision at a chosen time.
    private func setSchedule(_ request: APIRequest) throws(APIError) -> Response {
        let (body, _) = try Self.object(ScheduleBody.self, request.body, members: ScheduleBody.members)
        guard let at = try? Date(body.at, strategy: .iso8601) else {
            throw APIError.badRequest("'at' is not an ISO 8601 time with a zone")
        }
        let scheduleRequest: ScheduleRequest
        do {
            scheduleRequest = try ScheduleRequest(
                at: at, revision: body.revision, onlyIfPreflightPasses: body.onlyIfPreflightPasses ?? true,
                securityCopy: body.securityCopy ?? false, comment: body.comment, actor: request.actor)
        } catch {
            throw APIError(error)
        }
        return .json(201, try engineCall { () throws(DeliveryError) in try engine.setSchedule(scheduleRequest) })
    }

    /// A body that is one JSON object of `T`'s shape, every member among `members`; and its
    /// members' names. The one rule of the bodies the API takes.
    private static func object<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], members: Set<String>)
        throws(APIError) -> (T, [String])
    {
        let names: [String]
        let body: T
        do {
            names = try JSONCoding.decode(MemberNames.self, from: bytes).names
            body = try JSONCoding.decode(T.self, from: bytes)
        } catch {
            throw APIError.badRequest("the body is not a JSON object of the expected shape")
        }
        if let unknown = names.first(where: { !members.contains($0) }) {
            throw APIError.badRequest("unknown member '\(printable(unknown))'")
        }
        return (body, names)
    }

    /// The farm's other nodes, asked over SSH (none without a farm): for the plugin's page, never
    /// on the farm socket (a node does not ask its coordinator's farm).
    private func farm(_ request: APIRequest) throws(APIError) -> Response {
        guard !request.actor.isFromFarmCoordinator else {
            throw APIError.badRequest("the farm socket does not serve /farm")
        }
        return .json(200, ["nodes": try engineCall { () throws(DeliveryError) in try engine.farmNodes() }])
    }

    private func status() throws(APIError) -> Response {
        let status = try engineCall { () throws(DeliveryError) in try engine.status() }
        return .json(200, StatusView(status, job: jobs.running))
    }

    private func startOperation(_ request: APIRequest) throws(APIError) -> Response {
        let (body, names) = try Self.object(OperationBody.self, request.body, members: OperationBody.members)
        guard let operation = Operation(rawValue: body.operation) else {
            throw APIError.badRequest("unknown operation '\(Self.printable(body.operation))'")
        }
        // The members this operation takes, and on the farm socket those only a coordinator sends.
        let farm = request.actor.isFromFarmCoordinator
        let taken = Set(operation.requestMembers + (farm ? operation.farmRequestMembers : []) + ["operation"])
        if let other = names.sorted().first(where: { !taken.contains($0) }) {
            throw APIError.badRequest("'\(operation.rawValue)' takes no member '\(other)'")
        }
        // A farm's coordinator never restores a node's database: no confirmation nor second factor
        // is taken on the farm socket.
        if request.actor.isFromFarmCoordinator, body.confirmDatabaseRestore != nil || body.secondFactorCode != nil {
            throw APIError.badRequest("the farm socket takes no confirmDatabaseRestore nor secondFactorCode")
        }
        var farmStage: FarmStage?
        if let stage = body.farmStage {
            guard let known = FarmStage(rawValue: stage) else {
                throw APIError.badRequest("unknown farmStage '\(Self.printable(stage))'")
            }
            farmStage = known
        }
        let operationRequest: OperationRequest
        do {
            operationRequest = try OperationRequest.parse(
                operation, actor: request.actor, securePath: body.securePath, updatePath: body.updatePath,
                securityCopy: body.securityCopy ?? false, comment: body.comment,
                confirmDatabaseRestore: body.confirmDatabaseRestore, secondFactorCode: body.secondFactorCode,
                targetRevision: body.targetRevision, farmStage: farmStage, audit: engine.recordRefusal)
        } catch {
            logger.notice(
                "refused a request",
                metadata: [
                    "code": "\(error.code.rawValue)", "actor": "\(request.actor.name)",
                    "moodleUserId": "\(request.actor.moodleUserId ?? -1)",
                ])
            throw APIError(error)
        }
        return try startJob(operationRequest)
    }

    /// Starts an operation as a job on a thread of its own and answers 202 with its id.
    func startJob(_ operationRequest: OperationRequest) throws(APIError) -> Response {
        let operation = operationRequest.operation
        let request = operationRequest
        let job: Job
        switch jobs.start(operationRequest) {
        case .started(let started): job = started
        case .stopping: throw APIError(.busy, "the helper is stopping; retry when it is back")
        case .refused(let running):
            return lockHeld(
                HolderView(
                    name: running.request.actor.name, moodleUserId: running.request.actor.moodleUserId,
                    operation: running.request.operation.rawValue, job: running.id, since: running.startedAt),
                refusing: operationRequest)
        }
        let engine = self.engine
        let logger = self.logger
        do {
            try System.startDetachedThread {
                do throws(DeliveryError) {
                    let outcome = try engine.perform(operationRequest, id: job.id, progress: { job.receive($0) })
                    job.finish(.success(outcome))
                    logger.info("job finished", metadata: ["job": "\(job.id)"])
                } catch {
                    job.finish(.failure(error))
                    // The whole reason, for the server's administrator: the page may show only the
                    // code's sentence (an `io` error's own words are kept from the web user).
                    logger.warning(
                        "job failed: \(terminalSafe(error.message))",
                        metadata: ["job": "\(job.id)", "code": "\(error.code.rawValue)"])
                }
            }
        } catch {
            job.finish(.failure(DeliveryError(.io, "cannot start a thread")))
            logger.error("cannot start a job thread: \(error)")
            throw APIError(.internalError, "the helper could not start the job")
        }
        logger.info(
            "job started",
            metadata: [
                "job": "\(job.id)", "operation": "\(operation.rawValue)", "actor": "\(request.actor.name)",
                "moodleUserId": "\(request.actor.moodleUserId ?? -1)",
            ])
        return .json(202, ["job": job.id, "operation": operation.rawValue])
    }

    /// Starts the scheduled Run all as a job when it is due (the timer calls this): the screen
    /// follows it like any job. While another job runs it waits for the next tick; the engine
    /// skips it (audited) when the site is not idle or the time is long past.
    func startDueSchedule() {
        guard let status = try? engine.status(), let schedule = status.schedule, schedule.at <= Date(),
            jobs.running == nil,
            let request = try? OperationRequest(
                .runAll, actor: schedule.actor, securityCopy: schedule.securityCopy, comment: schedule.comment,
                targetRevision: schedule.revision.id, scheduled: true)
        else { return }
        guard case .started(let job) = jobs.start(request) else { return }
        let engine = self.engine
        let logger = self.logger
        logger.info("scheduled job started", metadata: ["job": "\(job.id)", "schedule": "\(schedule.id)"])
        do {
            try System.startDetachedThread {
                do throws(DeliveryError) {
                    if let outcome = try engine.runDueSchedule(id: job.id, progress: { job.receive($0) }) {
                        job.finish(.success(outcome))
                    } else {
                        job.finish(.failure(DeliveryError(.notFound, "the schedule was no longer due")))
                    }
                } catch {
                    job.finish(.failure(error))
                }
                logger.info("scheduled job finished", metadata: ["job": "\(job.id)"])
            }
        } catch {
            job.finish(Result<OperationOutcome, DeliveryError>.failure(DeliveryError(.io, "cannot start a thread")))
        }
    }

    private func lockHeld(_ holder: HolderView, refusing request: OperationRequest) -> Response {
        let message =
            "\(holder.name) is running '\(holder.operation)' since \(holder.since.formatted(.iso8601)); wait for it to finish"
        engine.recordRefusal(request, DeliveryError(.lockHeld, message))
        return .json(
            409,
            LockHeldBody(error: .init(code: DeliveryError.Code.lockHeld.rawValue, message: message, holder: holder)))
    }

    private func job(_ id: String, _ request: APIRequest) throws(APIError) -> Response {
        guard OperationIdentifier.isValid(id), let job = jobs.job(id) else {
            throw APIError(.notFound, "no such job")
        }
        let offset = try number(request.query["offset"], default: 0, name: "offset")
        let wait = try number(request.query["wait"], default: 0, name: "wait")
        guard (0...Self.maxJobWaitSeconds).contains(wait) else {
            throw APIError.badRequest("wait must be between 0 and \(Self.maxJobWaitSeconds) (seconds)")
        }
        guard wait == 0 || request.actor.isFromFarmCoordinator else {
            throw APIError.badRequest("wait is taken on the farm socket only")
        }
        if wait > 0 { waitForEnd(of: job, seconds: min(Double(wait), limits.readTimeoutSeconds / 2)) }
        return .json(200, job.view(offset: offset, maxLines: limits.maxLinesPerResponse))
    }

    /// The longest a `GET /jobs/{id}?wait=N` waits for the job's end.
    static let maxJobWaitSeconds = 2

    /// Waits for a job's end in a request's worker, unless half the workers wait already: then
    /// the answer comes at once (the follower asks again), so that waiting never takes the
    /// workers every other request needs.
    private func waitForEnd(of job: Job, seconds: Double) {
        let admitted = jobWaits.withLock { (waiting: inout Int) -> Bool in
            guard waiting < workers / 2 else { return false }
            waiting += 1
            return true
        }
        guard admitted else { return }
        defer { jobWaits.withLock { $0 -= 1 } }
        job.waitForEnd(seconds: seconds)
    }

    private func history(_ query: [String: String]) throws(APIError) -> Response {
        let limit = try number(query["limit"], default: 50, name: "limit")
        let offset = try number(query["offset"], default: 0, name: "offset")
        guard (1...1000).contains(limit) else { throw APIError.badRequest("limit must be between 1 and 1000") }
        let records = try engineCall { () throws(DeliveryError) in try engine.history(limit: limit, offset: offset) }
        return .json(200, ["records": records])
    }

    private func number(_ text: String?, default value: Int, name: String) throws(APIError) -> Int {
        guard let text else { return value }
        guard text.utf8.count <= 9, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let number = Int(text)
        else {
            throw APIError.badRequest("\(name) must be a non-negative integer")
        }
        return number
    }

    /// Parses a query string (`a=1&b=2`); nil when a key repeats or the string is malformed.
    static func parseQuery(_ query: String) -> [String: String]? {
        var result: [String: String] = [:]
        guard !query.isEmpty else { return result }
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, result[String(parts[0])] == nil else { return nil }
            result[String(parts[0])] = String(parts[1])
        }
        return result
    }

    /// A short, printable form of a peer's text for a message.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(60).map { $0.value < 32 || $0.value == 127 ? "?" : Character($0) })
    }
}
