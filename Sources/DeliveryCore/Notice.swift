#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One sentence the helper says to a person, as a stable code and typed values: each client words
/// it in its own language (the Moodle plugin through its language strings, `deliveryctl` in
/// English through `NoticeCode.english`). What a person reads of an outcome, a refusal, a failure,
/// a health check or a rollback plan is a list of notices, read in order (docs/protocol.md).
public struct Notice: Sendable, Codable, Equatable {
    /// The code: a `NoticeCode`, or a `DeliveryError.Code` alone (said by its own wording).
    public var code: String
    /// The values the sentence names, by key; the key's ending says how to show it
    /// (`NoticeValue`).
    public var values: [String: NoticeValue]

    /// Makes a notice of the catalogue.
    public init(_ code: NoticeCode, _ values: [String: NoticeValue] = [:]) {
        self.code = code.rawValue
        self.values = values
    }

    /// The notice that says an error's code and nothing more.
    public init(error code: DeliveryError.Code) {
        self.code = code.rawValue
        self.values = [:]
    }

    /// The sentence in English, as `deliveryctl` prints it.
    public var english: String {
        if let known = NoticeCode(rawValue: code) { return known.english(values) }
        if let error = DeliveryError.Code(rawValue: code) { return error.englishSummary }
        return code
    }
}

extension [Notice] {
    /// The sentences in English, one after the other.
    public var english: String { map(\.english).joined(separator: " ") }
}

/// A value of a notice. Its key's ending says how a client shows it: `…Bytes` a size, `…Seconds`
/// a duration, `…At` a moment (ISO 8601), `tree`/`…Tree` a tree's name, `operation`/`…Operation`
/// an operation's name, `phase` a state's name; any other key is shown as it is (a revision, a
/// path, a URL, a count). `output` holds a program's own words, quoted as they came.
public enum NoticeValue: Sendable, Equatable, Codable {
    case text(String)
    case number(Int64)
    case list([String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .number(number)
        } else if let list = try? container.decode([String].self) {
            self = .list(list)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        case .list(let list): try container.encode(list)
        }
    }

    /// The value in English, shown as its key says.
    func english(key: String) -> String {
        switch self {
        case .list(let list): return list.joined(separator: ", ")
        case .number(let number):
            if key.hasSuffix("Bytes") { return formatBytes(number) }
            if key.hasSuffix("Seconds") { return NoticeValue.seconds(Double(number)) }
            return String(number)
        case .text(let text):
            if key.hasSuffix("At"), let date = try? Date(text, strategy: .iso8601) { return formatMoment(date) }
            if key.hasSuffix("Seconds"), let seconds = Double(text) { return NoticeValue.seconds(seconds) }
            return text
        }
    }

    /// A duration: tenths under ten seconds (`2.4 s`), else as `formatDuration` says.
    static func seconds(_ value: Double) -> String {
        value < 10 ? "\(format1(value)) s" : formatDuration(value)
    }
}

extension NoticeValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .number(value) }
}

extension NoticeValue {
    /// A tree's name.
    static func tree(_ tree: TreeName?) -> NoticeValue { .text(tree?.rawValue ?? "unknown") }
    /// A count.
    static func count(_ count: Int) -> NoticeValue { .number(Int64(count)) }
    /// A duration in seconds, to the tenth.
    static func duration(_ seconds: Double) -> NoticeValue { .text(format1(max(0, seconds))) }
    /// A moment.
    static func moment(_ date: Date) -> NoticeValue { .text(date.formatted(.iso8601)) }
    /// A revision's label, or `unknown`.
    static func revision(_ revision: Revision?) -> NoticeValue { .text(revision?.label ?? "unknown") }
}

extension DeliveryError.Code {
    /// What the code alone says in English, when an error carries no notice of its own.
    var englishSummary: String {
        switch self {
        case .wrongState: "The delivery's state does not allow this operation."
        case .lockHeld: "Another operation is running."
        case .staleLock: "The operation that held the lock stopped without releasing it; run recover."
        case .badPath: "The component path was refused."
        case .copyMissing: "A copy the operation needs is missing or incomplete."
        case .vcsFailed: "The version control command failed; the log says why."
        case .upgradeFailed: "Moodle's command line script failed; the log says why."
        case .configuration: "The helper's configuration is not usable; see the helper's log."
        case .notMoodle: "The folder is not a Moodle code tree."
        case .privileges: "The helper lacks the privileges for this; see the helper's log."
        case .io: "The helper could not read or write the site's files; see the helper's log."
        case .preempted: "An emergency rollback took over; this operation stopped."
        case .badRequest: "The request was refused as malformed."
        case .preflightFailed: "The preflight found what would break the site."
        case .snapshotFailed: "The database snapshot failed."
        case .databaseRestoreFailed: "Restoring the database snapshot failed."
        case .healthCheckFailed: "The health check failed."
        case .confirmationRequired: "The operation needs an explicit confirmation."
        case .notUpdatable: "Production cannot be updated now."
        case .secondFactorRequired: "The operation needs the administrator's authenticator code."
        case .secondFactorRefused: "The authenticator code was refused."
        case .secondFactorLocked: "Too many wrong authenticator codes: wait before trying again."
        case .rateLimited: "Too many operations of this kind in the last hour."
        case .webServerStale: "The web server did not follow the switch."
        case .noRoom: "The disk cannot hold the copies."
        case .scheduleExists: "A delivery is already scheduled."
        case .scheduleStale: "That revision is not the one waiting upstream."
        case .scheduleSkipped: "The scheduled delivery did not run."
        case .notFound: "Not found."
        case .rehearsalFailed: "The rehearsal of Moodle's upgrade failed."
        case .cannotRehearse: "The rehearsal cannot run."
        case .blockedByRehearsal: "The rehearsal of that revision failed; it is not delivered without a confirmation."
        case .farmUnreachable: "A node of the farm could not be asked over SSH; nothing was asked of any node."
        case .farmStepFailed:
            "A step of the farm delivery failed on a node; every node was brought back to the code they all served before."
        }
    }
}
