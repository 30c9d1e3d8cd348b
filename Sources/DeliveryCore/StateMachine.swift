/// The delivery's state machine, written down once.
///
/// Each transition says from which phases an operation is allowed, on what further condition, the
/// phase it leaves when it succeeds and what it promises to leave behind. `status` (and through it
/// the plugin's buttons and the console), and the engine's refusals take "what is allowed now"
/// from `allowed`; the README's States table is `markdownTable()` (a test checks it is).
/// `recover` is outside the table: it is the only operation (with `rollback`) allowed while an
/// operation's process has died, and nothing else is then.
public enum StateMachine {
    /// What must hold besides the phase.
    public enum Condition: String, Sendable, CaseIterable {
        /// Nothing more.
        case none = "—"
        /// `current` points at production.
        case productionServed = "production serves"
        /// `current` points at production and the backup copy is complete.
        case backupReady = "production serves, the backup copy is complete"
        /// `current` points at a copy.
        case copyServed = "a copy serves"
        /// A complete copy exists (security, else backup).
        case copyToServe = "a complete copy exists"
    }

    /// One allowed move.
    public struct Transition: Sendable {
        /// The operation.
        public let operation: Operation
        /// The phases it is allowed from.
        public let from: [DeliveryPhase]
        /// What must hold besides.
        public let when: Condition
        /// The phase it leaves when it succeeds.
        public let leaves: DeliveryPhase?
        /// What it leaves behind, in the site's terms.
        public let promise: String
    }

    private static let delivery: [DeliveryPhase] = [.secured, .delivering, .updated, .restoring, .rolledBack]

    /// The transitions, in the order of the steps.
    public static let transitions: [Transition] = [
        Transition(
            operation: .secure, from: [.idle, .secured], when: .productionServed, leaves: .secured,
            promise:
                "the backup copy (and the security copy when asked) holds production's bytes at "
                + "its revision; production still serves"),
        Transition(
            operation: .switchToDelivery, from: [.secured], when: .backupReady, leaves: .delivering,
            promise: "the backup copy serves; production is unchanged"),
        Transition(
            operation: .update, from: [.delivering, .updated], when: .copyServed, leaves: .updated,
            promise:
                "production (or the path) is at the upstream's revision; the backup copy still serves"),
        Transition(
            operation: .update, from: [.rolledBack], when: .copyServed, leaves: .rolledBack,
            promise:
                "production (or the path) is at the upstream's revision; the rollback's copy still serves"),
        Transition(
            operation: .restore, from: [.delivering, .updated, .restoring, .rolledBack], when: .none, leaves: .idle,
            promise:
                "production serves, its code matches the database (Moodle's upgrade ran), "
                + "maintenance is off, caches are purged"),
        Transition(
            operation: .rehearse, from: [.idle, .secured, .delivering, .updated], when: .none, leaves: nil,
            promise:
                "nothing of the site changed (code, database, dataroot); the rehearsal's result is "
                + "recorded, its database copy and folder are gone"),
        Transition(
            operation: .runAll, from: [.idle, .secured], when: .productionServed, leaves: .idle,
            promise: "secure, switch, update and restore in turn, stopping at the first failure"),
        Transition(
            operation: .cancel, from: delivery, when: .none, leaves: .idle,
            promise:
                "production serves at the pre-delivery revision and matches the database; or it "
                + "is refused, the reason said, nothing changed"),
        Transition(
            operation: .cancel, from: [.idle], when: .copyServed, leaves: .idle,
            promise: "as above: production serves again"),
        Transition(
            operation: .rollback, from: DeliveryPhase.allCases, when: .copyToServe, leaves: .rolledBack,
            promise:
                "a complete copy whose code matches the database serves (its database snapshot "
                + "restored first when the upgrade changed the database)"),
    ]

    /// The operations allowed in `phase` with what is served and which copies are complete, in
    /// the order of `Operation.allCases`.
    public static func allowed(
        _ phase: DeliveryPhase, productionServed: Bool, backupComplete: Bool, copyToServe: Bool
    ) -> [Operation] {
        let holds: (Condition) -> Bool = { condition in
            switch condition {
            case .none: true
            case .productionServed: productionServed
            case .backupReady: productionServed && backupComplete
            case .copyServed: !productionServed
            case .copyToServe: copyToServe
            }
        }
        let operations = Set(transitions.filter { $0.from.contains(phase) && holds($0.when) }.map(\.operation))
        return Operation.allCases.filter(operations.contains)
    }

    /// The README's States table: one row per transition.
    public static func markdownTable() -> String {
        var lines = [
            "| operation | from | when | leaves | it promises |",
            "| --- | --- | --- | --- | --- |",
        ]
        for transition in transitions {
            let from =
                transition.from == DeliveryPhase.allCases
                ? "any" : transition.from.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            lines.append(
                "| **\(transition.operation.rawValue)** | \(from) | \(transition.when.rawValue) | `\(transition.leaves?.rawValue ?? "—")` | \(transition.promise) |"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
