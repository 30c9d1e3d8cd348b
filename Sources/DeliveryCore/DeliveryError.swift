/// An error of the delivery engine: a stable code for machines and one clear sentence for people.
///
/// The code is part of the protocol (`docs/protocol.md`): the CLI maps it to an exit status, the
/// responder to a JSON error, and the Moodle plugin to a language string. The message never holds
/// secrets; it may name paths of the site.
public struct DeliveryError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The stable codes.
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// The operation is not allowed in the current delivery state.
        case wrongState = "wrong_state"
        /// Another operation holds the delivery lock.
        case lockHeld = "lock_held"
        /// A lock is held by a process that no longer exists.
        case staleLock = "stale_lock"
        /// A component path was refused (absolute, `..`, NUL, leading `-`, escaping symlink, missing).
        case badPath = "bad_path"
        /// A copy needed by the operation is missing or incomplete.
        case copyMissing = "copy_missing"
        /// The version control update failed.
        case vcsFailed = "vcs_failed"
        /// Moodle's upgrade or another PHP CLI script failed.
        case upgradeFailed = "upgrade_failed"
        /// The site or helper configuration is wrong or missing.
        case configuration = "configuration"
        /// The directory is not a Moodle code tree.
        case notMoodle = "not_moodle"
        /// The helper lacks the privileges to do what was asked.
        case privileges = "privileges"
        /// A file system or process error.
        case io = "io"
        /// An emergency rollback took over while the operation ran.
        case preempted = "preempted"
        /// The request itself was malformed (unknown operation, oversize comment).
        case badRequest = "bad_request"
        /// The preflight found what would break the site (syntax error, conflict markers, a
        /// version going backwards): production is not served.
        case preflightFailed = "preflight_failed"
        /// The database snapshot before Moodle's upgrade failed: the upgrade did not run.
        case snapshotFailed = "snapshot_failed"
        /// Restoring a database snapshot failed.
        case databaseRestoreFailed = "database_restore_failed"
        /// The health check after the switch back failed.
        case healthCheckFailed = "health_check_failed"
        /// The operation would lose data users wrote and needs an explicit confirmation.
        case confirmationRequired = "confirmation_required"
        /// Production could not be updated (local modifications, the upstream unreachable or
        /// refusing the code owner): switch and run-all refuse before changing anything.
        case notUpdatable = "not_updatable"
        /// Requested with the plugin's key, the operation is destructive and needs an enrolled
        /// administrator's second factor (or deliveryctl on the server).
        case secondFactorRequired = "second_factor_required"
        /// The second factor was wrong, expired, already used, or its administrator is not enrolled.
        case secondFactorRefused = "second_factor_refused"
        /// Too many wrong codes lately: every code is refused for a while.
        case secondFactorLocked = "second_factor_locked"
        /// More operations of this kind in the last hour than the site allows through the plugin's key.
        case rateLimited = "rate_limited"
        /// The web server did not follow a switch (Apache's reload failed, or the site kept
        /// answering from the old tree): the switch was undone.
        case webServerStale = "web_server_stale"
        /// The disk could not hold the copies a secure would make: refused before writing.
        case noRoom = "no_room"
        /// A delivery is already scheduled: a newer revision never replaces it silently.
        case scheduleExists = "schedule_exists"
        /// The revision asked for is not the one the upstream watch found waiting: check again.
        case scheduleStale = "schedule_stale"
        /// A scheduled Run all did not run at its time (its notice says why); nothing changed.
        case scheduleSkipped = "schedule_skipped"
        /// No such delivery, or no schedule to cancel.
        case notFound = "not_found"
        /// Moodle's upgrade failed on the rehearsal's database copy (production untouched).
        case rehearsalFailed = "rehearsal_failed"
        /// The rehearsal cannot run (nothing to rehearse, no right to create the database copy, no
        /// room, a config.php it cannot point elsewhere); nothing of the site changed.
        case cannotRehearse = "cannot_rehearse"
        /// Restore (or Run all) of a revision whose rehearsal failed, not confirmed.
        case blockedByRehearsal = "blocked_by_rehearsal"
        /// A node of the site's farm could not be asked over SSH (no connection, a host key that is
        /// not the pinned one, the farm key refused, no answer): nothing was asked of any node.
        case farmUnreachable = "farm_unreachable"
        /// A step of a farm delivery failed on a node: every node was brought back to what they
        /// all serve alike (the message names the node, the step and where the farm stands).
        case farmStepFailed = "farm_step_failed"

        /// True for the codes of a refusal: raised before the operation changed anything (an
        /// operation that had already changed something and then fails so is a failure). The one
        /// list: the audit's "refused", the API, and the plugin's generated rules read it.
        public var isRefusal: Bool {
            switch self {
            case .wrongState, .badPath, .copyMissing, .badRequest, .lockHeld, .staleLock, .notMoodle, .preflightFailed,
                .confirmationRequired, .notUpdatable, .secondFactorRequired, .secondFactorRefused, .secondFactorLocked,
                .rateLimited, .noRoom, .scheduleExists, .scheduleStale, .scheduleSkipped, .notFound, .cannotRehearse,
                .blockedByRehearsal, .farmUnreachable:
                true
            case .vcsFailed, .upgradeFailed, .configuration, .privileges, .io, .preempted, .snapshotFailed,
                .databaseRestoreFailed, .healthCheckFailed, .webServerStale, .rehearsalFailed, .farmStepFailed:
                false
            }
        }
    }

    /// The stable code.
    public let code: Code
    /// One sentence for a person, in English (for the log and `deliveryctl`).
    public let message: String
    /// What a person reads, as notices each client words in its language; empty when the error
    /// says its code alone (its message then holds details for the log, such as a program's output).
    public let notices: [Notice]

    /// Makes an error whose message is for the log: a client words its code alone.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
        self.notices = []
    }

    /// Makes an error that says what happened in notices (its message is their English).
    public init(_ code: Code, _ notices: [Notice]) {
        self.code = code
        self.message = notices.english
        self.notices = notices
    }

    /// Makes an error of one notice.
    public init(_ code: Code, _ notice: NoticeCode, _ values: [String: NoticeValue] = [:]) {
        self.init(code, [Notice(notice, values)])
    }

    /// Makes an error from its parts as they crossed a process boundary.
    public init(_ code: Code, message: String, notices: [Notice]) {
        self.code = code
        self.message = message
        self.notices = notices
    }

    /// What a person reads of the error: its notices, or its code alone.
    public var said: [Notice] { notices.isEmpty ? [Notice(error: code)] : notices }

    /// The same error with notices put before (and after) its own: what it means for the operation.
    public func within(_ before: [Notice], after: [Notice] = []) -> DeliveryError {
        DeliveryError(
            code, message: Self.sentences([before.english, message, after.english]), notices: before + said + after)
    }

    /// Parts of a message as sentences: the empty ones left out, each but the last ending with a
    /// full stop (a tool's words often end without one).
    static func sentences(_ parts: [String]) -> String {
        let kept = parts.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        return kept.enumerated().map { index, part in
            index == kept.count - 1 || part.hasSuffix(".") || part.hasSuffix("!") || part.hasSuffix("?")
                ? part : part + "."
        }.joined(separator: " ")
    }

    /// The message, prefixed by nothing: it is written to be shown as is.
    public var description: String { message }

    /// Wraps a system call error with what the engine was doing.
    static func io(_ doing: String, _ error: SystemCallError) -> DeliveryError {
        DeliveryError(.io, "\(doing): \(error)")
    }
}
