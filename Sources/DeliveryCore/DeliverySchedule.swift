#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A Run all of one upstream revision at a chosen time, kept by the helper (docs/protocol.md,
/// *Deliver later*): the helper's timer starts it, no browser and no Moodle cron needed.
public struct DeliverySchedule: Sendable, Codable, Equatable {
    public var id: String
    public var at: Date
    /// The revision to deliver: the one the administrator saw waiting, never a newer one.
    public var revision: Revision
    public var actor: Actor
    public var setAt: Date
    /// At its time the upstream is checked again; a blocking preflight skips the run.
    public var onlyIfPreflightPasses: Bool
    public var securityCopy: Bool
    public var comment: String?

    /// The soonest and latest times accepted, from now; how late a run may still start (the
    /// helper was down at its time); how often the helper's timer looks.
    public static let soonestSeconds: Double = 60
    public static let latestSeconds: Double = 30 * 86400
    public static let graceSeconds: Double = 30 * 60
    public static let timerSeconds: Double = 5
}

/// What `PUT /schedule` and `deliveryctl schedule` ask, checked once where it is made and again
/// where it is decoded (the monitor).
public struct ScheduleRequest: Sendable, Codable, Equatable {
    public let at: Date
    public let revision: String
    public let onlyIfPreflightPasses: Bool
    public let securityCopy: Bool
    public let comment: String?
    public let actor: Actor

    /// - Throws: `DeliveryError` `.badRequest` for a revision that is no revision, or a comment or
    ///   actor `OperationRequest` would refuse.
    public init(
        at: Date, revision: String, onlyIfPreflightPasses: Bool = true, securityCopy: Bool = false,
        comment: String? = nil, actor: Actor
    ) throws(DeliveryError) {
        // The same checks as a Run all of that revision.
        _ = try OperationRequest(.runAll, actor: actor, comment: comment, targetRevision: revision)
        self.at = at
        self.revision = revision
        self.onlyIfPreflightPasses = onlyIfPreflightPasses
        self.securityCopy = securityCopy
        self.comment = comment
        self.actor = actor
    }

    private enum CodingKeys: String, CodingKey {
        case at, revision, onlyIfPreflightPasses, securityCopy, comment, actor
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            try self.init(
                at: try container.decode(Date.self, forKey: .at),
                revision: try container.decode(String.self, forKey: .revision),
                onlyIfPreflightPasses: try container.decode(Bool.self, forKey: .onlyIfPreflightPasses),
                securityCopy: try container.decode(Bool.self, forKey: .securityCopy),
                comment: try container.decodeIfPresent(String.self, forKey: .comment),
                actor: try container.decode(Actor.self, forKey: .actor))
        } catch let error as DeliveryError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }
}

extension DeliveryEngine {
    var scheduleStore: JSONFileStore<DeliverySchedule?> {
        JSONFileStore(
            file: "\(configuration.stateDirectory)/schedule.json",
            mutexFile: "\(configuration.stateDirectory)/schedule.lock", mode: 0o640, what: "the delivery schedule"
        ) { nil }
    }

    /// The scheduled Run all, when one is set.
    public func schedule() -> DeliverySchedule? {
        (try? scheduleStore.read()) ?? nil
    }

    /// Schedules a Run all of the revision the last upstream check found waiting.
    /// - Throws: `DeliveryError`: `.badRequest` (time out of range), `.scheduleStale` (not the
    ///   revision waiting), `.scheduleExists` (one is set: never replaced silently).
    public func setSchedule(_ request: ScheduleRequest, now: Date = Date()) throws(DeliveryError) -> DeliverySchedule {
        let lead = request.at.timeIntervalSince(now)
        guard lead >= DeliverySchedule.soonestSeconds, lead <= DeliverySchedule.latestSeconds else {
            throw DeliveryError(
                .badRequest, "the time must be between 1 minute and 30 days from now (it is \(Int(lead)) s from now)")
        }
        let production = try store.read().productionRevision
        guard let upstream = lastUpstreamCheck()?.seen(from: production), upstream.waiting,
            upstream.upstream.id == request.revision
        else {
            throw DeliveryError(
                .scheduleStale,
                "the revision \(request.revision) is not the one waiting upstream; check the upstream again and schedule what it finds"
            )
        }
        let schedule = DeliverySchedule(
            id: OperationIdentifier.make(), at: request.at, revision: upstream.upstream, actor: request.actor,
            setAt: now, onlyIfPreflightPasses: request.onlyIfPreflightPasses, securityCopy: request.securityCopy,
            comment: request.comment)
        try scheduleStore.update { (kept: inout DeliverySchedule?) throws(DeliveryError) in
            if let kept {
                throw DeliveryError(
                    .scheduleExists,
                    "\(kept.actor.name) scheduled a Run all of \(kept.revision.label) for \(kept.at.formatted(.iso8601)); cancel it first"
                )
            }
            kept = schedule
        }
        auditSchedule(schedule, result: "scheduled", actor: request.actor, notice: .scheduleSet)
        return schedule
    }

    /// Cancels the scheduled Run all.
    /// - Throws: `DeliveryError` `.notFound` when none is set.
    public func cancelSchedule(actor: Actor) throws(DeliveryError) -> DeliverySchedule {
        let cancelled = try scheduleStore.update {
            (kept: inout DeliverySchedule?) throws(DeliveryError) -> DeliverySchedule in
            guard let schedule = kept else { throw DeliveryError(.notFound, "no delivery is scheduled") }
            kept = nil
            return schedule
        }
        auditSchedule(cancelled, result: "unscheduled", actor: actor, notice: .scheduleCancelled)
        return cancelled
    }

    /// Runs the scheduled Run all when it is due: exactly the scheduled revision, as the
    /// administrator who scheduled it. The schedule is removed first, so it runs at most once.
    /// - Returns: nil when nothing is due.
    /// - Throws: `DeliveryError` `.scheduleSkipped` (audited, nothing changed) or the Run all's own.
    public func runDueSchedule(
        id: String? = nil, now: Date = Date(), progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }
    ) throws(DeliveryError) -> OperationOutcome? {
        let due = try scheduleStore.update {
            (kept: inout DeliverySchedule?) throws(DeliveryError) -> DeliverySchedule? in
            guard let schedule = kept, schedule.at <= now else { return nil }
            kept = nil
            return schedule
        }
        guard let schedule = due else { return nil }
        let at: NoticeValue = .moment(schedule.at)
        let request = try OperationRequest(
            .runAll, actor: schedule.actor, securityCopy: schedule.securityCopy, comment: schedule.comment,
            targetRevision: schedule.revision.id, scheduled: true)
        let run = OperationRun(id: id ?? OperationIdentifier.make(), request: request, progress: progress, engine: self)
        func skip(_ code: NoticeCode, _ values: [String: NoticeValue]) -> DeliveryError {
            let error = DeliveryError(.scheduleSkipped, code, values.merging(["scheduledAt": at]) { $1 })
            run.skippedSchedule = schedule
            run.auditRefusal(error)
            return error
        }
        let late = now.timeIntervalSince(schedule.at)
        if late > DeliverySchedule.graceSeconds {
            throw skip(.scheduleSkippedLate, ["lateSeconds": .number(Int64(late))])
        }
        let state = try store.read()
        if state.phase != .idle || layout.servedTree() != .production || state.running != nil
            || DeliveryLock.isHeld(in: configuration.stateDirectory)
        {
            throw skip(.scheduleSkippedBusy, ["phase": .text(state.phase.rawValue)])
        }
        let recorder = CommandRecorder(onLine: { progress(.line($0)) })
        progress(.line("Scheduled Run all of \(schedule.revision.label), set by \(schedule.actor.name)."))
        do throws(DeliveryError) {
            let watch = try upstreamWatch(recorder)
            if schedule.onlyIfPreflightPasses {
                let current = try versionControl(recorder).revision(
                    of: layout.path(of: .production), recorder: recorder)
                let preview = try watch.preview(current: current, target: schedule.revision.id)
                if !preview.waiting { throw DeliveryError(.vcsFailed, "production is at that revision already") }
                if preview.blocking {
                    throw skip(
                        .scheduleSkippedPreflight,
                        ["revision": .text(schedule.revision.label), "count": .number(Int64(preview.blockers.count))])
                }
            } else {
                let changes = try watch.changes(target: schedule.revision.id)
                if changes.fileCount == 0 && changes.commitCount == 0 {
                    throw DeliveryError(.vcsFailed, "production is at that revision already")
                }
            }
        } catch {
            if error.code == .scheduleSkipped { throw error }
            progress(.line("The scheduled revision cannot be delivered: \(error.message)"))
            throw skip(.scheduleSkippedRevision, ["revision": .text(schedule.revision.label)])
        }
        var outcome = try perform(request, id: run.id, progress: progress)
        var notices = [Notice(.scheduledRunStarted, ["revision": .text(schedule.revision.label), "scheduledAt": at])]
        notices += outcome.notices
        if let newer = lastUpstreamCheck()?.upstream, newer.id != schedule.revision.id {
            notices.append(Notice(.newerUpstreamLeft, ["revision": .text(newer.label)]))
        }
        outcome.notices = notices
        outcome.message = notices.english
        return outcome
    }

    private func auditSchedule(_ schedule: DeliverySchedule, result: String, actor: Actor, notice: NoticeCode) {
        guard let request = try? OperationRequest(.runAll, actor: actor, comment: schedule.comment) else { return }
        let run = OperationRun(id: OperationIdentifier.make(), request: request, progress: { _ in }, engine: self)
        run.skippedSchedule = schedule
        run.writeAudit(
            result: result, error: nil,
            notices: [
                Notice(notice, ["revision": .text(schedule.revision.label), "scheduledAt": .moment(schedule.at)])
            ],
            phase: try? store.read().phase, served: layout.servedTree())
    }
}
