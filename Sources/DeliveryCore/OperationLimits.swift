#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How many operations that change what the site serves a request signed with the plugin's key
/// may start per hour. Any process of the web user holds that key: without a limit, a stream of
/// perfectly signed requests could keep the site flipping between trees or in maintenance mode.
/// `deliveryctl` (root, on the server) is not limited. Counted in a file of the state directory
/// when the helper admits a request (a restart forgets nothing); a request the limit refuses does
/// not count.
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

    /// One operation the key started: what it counted as, and when.
    struct Admission: Codable, Sendable {
        var kind: String
        var time: Date
    }

    /// The site's record of what the key started in the last hour (`operation-limits.json` in the
    /// state directory, root's): refusals are never written to it, so no stream of refused
    /// requests can push the operations it counts out of sight.
    static func store(stateDirectory: String) -> JSONFileStore<[Admission]> {
        JSONFileStore(
            file: "\(stateDirectory)/operation-limits.json", mutexFile: "\(stateDirectory)/operation-limits.lock",
            mode: 0o600, what: "the record of operations started with the plugin's key"
        ) { [] }
    }

    /// Admits a request of the plugin's key and counts it, or refuses it when the operations of
    /// its kind that the key started in the last hour reach the limit. Atomic: two requests at
    /// once are counted one after the other.
    static func admit(
        _ request: OperationRequest, limits: OperationLimits, store: JSONFileStore<[Admission]>, now: Date = Date()
    ) throws(DeliveryError) {
        guard request.actor.viaKey else { return }
        let kinds = Kind.allCases.filter { $0.operations.contains(request.operation) }
        guard !kinds.isEmpty else { return }
        let refusal = try store.update { (admissions: inout [Admission]) throws(DeliveryError) -> DeliveryError? in
            // Within an hour either side (times are kept to the millisecond, so one may round past now).
            admissions = admissions.filter { abs(now.timeIntervalSince($0.time)) < 3600 }
            for kind in kinds {
                let counted = admissions.filter { $0.kind == kind.rawValue }
                let limit = limits.perHour(kind)
                guard counted.count >= limit else { continue }
                let next = (counted.map(\.time).min() ?? now).addingTimeInterval(3600)
                return DeliveryError(
                    .rateLimited, .refusedRateLimited,
                    [
                        "count": .count(counted.count), "kind": .text(kind.rawValue), "limit": .count(limit),
                        "nextAt": .moment(next),
                    ])
            }
            admissions += kinds.map { Admission(kind: $0.rawValue, time: now) }
            return nil
        }
        if let refusal { throw refusal }
    }
}
