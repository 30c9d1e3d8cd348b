#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How many operations that change what the site serves a request signed with the plugin's key
/// may start per hour. Any process of the web user holds that key: without a limit, a stream of
/// perfectly signed requests could keep the site flipping between trees or in maintenance mode.
/// `deliveryctl` (root, on the server) is not limited. Counted from the audit log, so a restart of
/// the helper forgets nothing; refused requests do not count.
public struct OperationLimits: Sendable, Codable, Equatable {
    /// `switch` and `run-all` (each serves the backup copy).
    public var switchesPerHour: Int
    /// `restore` and `run-all` (each serves production again, and may run the upgrade).
    public var restoresPerHour: Int
    /// `rollback`.
    public var rollbacksPerHour: Int

    /// The defaults: generous for real deliveries (one of each per delivery), a bound for a loop.
    public init(switchesPerHour: Int = 20, restoresPerHour: Int = 20, rollbacksPerHour: Int = 10) {
        self.switchesPerHour = switchesPerHour
        self.restoresPerHour = restoresPerHour
        self.rollbacksPerHour = rollbacksPerHour
    }

    private enum CodingKeys: String, CodingKey {
        case switchesPerHour, restoresPerHour, rollbacksPerHour
    }

    /// Reads the limits; a member left out keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = OperationLimits()
        switchesPerHour = try container.decodeIfPresent(Int.self, forKey: .switchesPerHour) ?? defaults.switchesPerHour
        restoresPerHour = try container.decodeIfPresent(Int.self, forKey: .restoresPerHour) ?? defaults.restoresPerHour
        rollbacksPerHour =
            try container.decodeIfPresent(Int.self, forKey: .rollbacksPerHour) ?? defaults.rollbacksPerHour
    }

    /// What is counted.
    enum Kind: String, CaseIterable {
        case switches, restores, rollbacks

        /// The operations that count as this kind.
        var operations: Set<Operation> {
            switch self {
            case .switches: [.switchToDelivery, .runAll]
            case .restores: [.restore, .runAll]
            case .rollbacks: [.rollback]
            }
        }
    }

    func perHour(_ kind: Kind) -> Int {
        switch kind {
        case .switches: switchesPerHour
        case .restores: restoresPerHour
        case .rollbacks: rollbacksPerHour
        }
    }

    /// Refuses a request of the plugin's key when the operations of its kind that the key started
    /// in the last hour reach the limit.
    static func check(_ request: OperationRequest, limits: OperationLimits, history: AuditLog, now: Date = Date())
        throws(DeliveryError)
    {
        guard request.actor.viaKey else { return }
        let kinds = Kind.allCases.filter { $0.operations.contains(request.operation) }
        guard !kinds.isEmpty else { return }
        let hourAgo = now.addingTimeInterval(-3600)
        var started: [AuditRecord] = []
        for record in try history.read(limit: 1000) {
            if record.time < hourAgo { continue }
            if record.actor.viaKey && record.result != "refused" { started.append(record) }
        }
        for kind in kinds {
            let counted = started.filter { kind.operations.contains($0.operation) }
            let limit = limits.perHour(kind)
            guard counted.count >= limit else { continue }
            let next = (counted.map(\.time).min() ?? now).addingTimeInterval(3600)
            throw DeliveryError(
                .rateLimited,
                "refused: \(counted.count) \(kind.rawValue) were started with the plugin's key in the last hour, and the site allows \(limit) (operationLimits.\(kind.rawValue)PerHour in the site's configuration); the next is allowed at \(next.formatted(.iso8601)). deliveryctl on the server is not limited."
            )
        }
    }
}
