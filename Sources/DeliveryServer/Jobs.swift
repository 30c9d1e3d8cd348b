import DeliveryCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where a job stands.
enum JobState: String, Sendable, Codable {
    case running, succeeded, failed
}

/// One step of a job as the API shows it.
struct JobStep: Sendable, Codable, Equatable {
    /// The step (`secure`, `switch`…).
    var operation: String
    /// `running`, `succeeded` or `failed`.
    var state: JobState
    /// How far the step is, from 0 to 1, when the engine can tell.
    var fraction: Double?
    /// The step's closing sentence, in English.
    var message: String?
    /// The same, as notices.
    var notices: [Notice]?
}

/// A job's view for `GET /jobs/{id}`.
struct JobView: Sendable, Codable, Equatable {
    var id: String
    var operation: String
    var actor: Actor
    var state: JobState
    var startedAt: Date
    var finishedAt: Date?
    var steps: [JobStep]
    /// The index of the first line in `lines`.
    var offset: Int
    /// Lines from `offset`, in order.
    var lines: [String]
    /// The offset to ask for next.
    var nextOffset: Int
    /// Lines produced so far (kept or not).
    var totalLines: Int
    /// True when lines past `maxJobLines` were dropped.
    var truncated: Bool
    /// The engine's outcome when the job succeeded.
    var result: OperationOutcome?
    /// The error when the job failed.
    var error: JobError?
}

/// A failed job's error.
struct JobError: Sendable, Codable, Equatable {
    var code: String
    var message: String
    /// What a person reads, as notices (absent when the code says it all).
    var notices: [Notice]?
}

/// One operation run by the helper on a thread of its own.
final class Job: Sendable {
    struct Record {
        var state: JobState = .running
        var finishedAt: Date?
        var steps: [JobStep] = []
        var lines: [String] = []
        var totalLines = 0
        var result: OperationOutcome?
        var error: JobError?
    }

    let id: String
    let request: OperationRequest
    let startedAt = Date()
    private let maxLines: Int
    private let record = Locked(Record())
    private let ended = OneTimeEvent()

    init(id: String, request: OperationRequest, maxLines: Int) {
        self.id = id
        self.request = request
        self.maxLines = maxLines
    }

    var isRunning: Bool { record.withLock { $0.state == .running } }

    /// Waits until the job ends, at most `seconds`.
    func waitForEnd(seconds: Double) {
        ended.wait(seconds: seconds)
    }

    /// Records a progress event of the engine.
    func receive(_ event: ProgressEvent) {
        record.withLock { record in
            switch event {
            case .stepStarted(let operation):
                record.steps.append(JobStep(operation: operation.rawValue, state: .running, fraction: 0, message: nil))
            case .line(let line):
                Self.append(line, to: &record, maxLines: maxLines)
            case .fraction(let operation, let fraction):
                if let index = record.steps.lastIndex(where: { $0.operation == operation.rawValue }) {
                    record.steps[index].fraction = max(0, min(1, fraction))
                }
            case .stepFinished(let operation, let succeeded, let notices):
                if let index = record.steps.lastIndex(where: { $0.operation == operation.rawValue }) {
                    record.steps[index].state = succeeded ? .succeeded : .failed
                    record.steps[index].message = notices.english
                    record.steps[index].notices = notices
                    if succeeded { record.steps[index].fraction = 1 }
                }
            }
        }
    }

    /// Adds a line of the helper's own.
    func note(_ line: String) {
        record.withLock { Self.append(line, to: &$0, maxLines: maxLines) }
    }

    private static func append(_ line: String, to record: inout Record, maxLines: Int) {
        record.totalLines += 1
        guard record.lines.count < maxLines else { return }
        record.lines.append(line.count > 4000 ? String(line.prefix(4000)) + "…" : line)
    }

    /// Records the end.
    func finish(_ outcome: Result<OperationOutcome, DeliveryError>) {
        record.withLock { record in
            record.finishedAt = Date()
            switch outcome {
            case .success(let result):
                record.state = .succeeded
                record.result = result
            case .failure(let error):
                record.state = .failed
                let api = APIError(error)
                record.error = JobError(
                    code: api.code, message: api.message, notices: api.notices.isEmpty ? nil : api.notices)
                for index in record.steps.indices where record.steps[index].state == .running {
                    record.steps[index].state = .failed
                }
            }
        }
        ended.set()
    }

    /// The view from a line offset.
    func view(offset: Int, maxLines: Int) -> JobView {
        record.withLock { record in
            let start = max(0, min(offset, record.lines.count))
            let end = min(record.lines.count, start + maxLines)
            return JobView(
                id: id, operation: request.operation.rawValue, actor: request.actor, state: record.state,
                startedAt: startedAt, finishedAt: record.finishedAt, steps: record.steps, offset: start,
                lines: Array(record.lines[start..<end]), nextOffset: end, totalLines: record.totalLines,
                truncated: record.totalLines > record.lines.count, result: record.result, error: record.error)
        }
    }
}

/// The helper's jobs: at most one delivery operation at a time (an emergency rollback may run
/// beside it, as the engine allows), the finished ones kept for a while.
final class JobRegistry: Sendable {
    private struct Jobs {
        var all: [Job] = []
        var stopping = false
    }

    private let jobs = Locked(Jobs())
    private let retained: Int
    private let maxLines: Int

    init(retained: Int, maxLines: Int) {
        self.retained = retained
        self.maxLines = maxLines
    }

    /// A job by id.
    func job(_ id: String) -> Job? {
        jobs.withLock { $0.all.first { $0.id == id } }
    }

    /// The running delivery job, if any.
    var running: Job? {
        jobs.withLock { $0.all.first { $0.isRunning && $0.request.operation != .rollback } }
    }

    /// The newest job: the running delivery if any, else the last one started.
    var latest: Job? {
        jobs.withLock { state in
            state.all.first { $0.isRunning && $0.request.operation != .rollback } ?? state.all.last
        }
    }

    /// What `start` did.
    enum StartOutcome {
        /// The new job.
        case started(Job)
        /// The running job that prevents it.
        case refused(Job)
        /// The helper is stopping.
        case stopping
    }

    /// Registers a new job unless another delivery job runs.
    func start(_ request: OperationRequest) -> StartOutcome {
        jobs.withLock { jobs in
            if jobs.stopping { return .stopping }
            if request.operation != .rollback,
                let running = jobs.all.first(where: { $0.isRunning && $0.request.operation != .rollback })
            {
                return .refused(running)
            }
            // A rollback may take over any operation, but one rollback at a time is enough: a second
            // one is answered with the first (a flood of rollbacks costs no thread each).
            if request.operation == .rollback,
                let running = jobs.all.first(where: { $0.isRunning && $0.request.operation == .rollback })
            {
                return .refused(running)
            }
            let job = Job(id: OperationIdentifier.make(), request: request, maxLines: maxLines)
            jobs.all.append(job)
            var finished = jobs.all.filter { !$0.isRunning }.count
            jobs.all.removeAll { job in
                guard finished > retained, !job.isRunning else { return false }
                finished -= 1
                return true
            }
            return .started(job)
        }
    }

    /// Notes in every running job that the helper stopped.
    /// - Returns: the running jobs.
    @discardableResult
    func noteShutdown() -> [Job] {
        let running = jobs.withLock { jobs in
            jobs.stopping = true
            return jobs.all.filter { $0.isRunning }
        }
        for job in running {
            job.note(
                "The helper stopped while this operation ran; the engine's state file keeps it as running. Run 'recover' once the helper is back."
            )
        }
        return running
    }
}
