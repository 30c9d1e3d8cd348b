/// What one operation is asked to do, parsed once at each boundary: built from a person's
/// arguments (deliveryctl) or a signed request (the API), and decoded again by the monitor through
/// the same checks. Whoever holds one holds a valid request: the engine does not check it again.
public struct OperationRequest: Sendable, Codable, Equatable {
    /// The operation.
    public let operation: Operation
    /// secure / run-all: refresh only this component path of the copies.
    public let securePath: ComponentPath?
    /// update / run-all: update only this path of production.
    public let updatePath: ComponentPath?
    /// secure / run-all: also refresh the security copy.
    public let securityCopy: Bool
    /// update / run-all: a free comment recorded with the delivery.
    public let comment: String?
    /// Who asked.
    public let actor: Actor
    /// rollback: the administrator confirmed that the database snapshot may be restored although
    /// the site was open to users since (what they wrote since the snapshot is lost).
    public let confirmDatabaseRestore: Bool?
    /// A destructive operation asked with the plugin's key: the code of the administrator's
    /// authenticator (`SecondFactor`). Checked once, never stored nor logged.
    public let secondFactorCode: String?
    /// update / run-all: the exact upstream revision to bring (a scheduled Run all brings the
    /// revision that was scheduled, not a newer one); nil brings the upstream's latest.
    public let targetRevision: String?
    /// True when the helper started it at its scheduled time (`DeliverySchedule`).
    public let scheduled: Bool
    /// restore / run-all: the administrator confirmed delivering a revision whose rehearsal
    /// failed (recorded in the audit log).
    public let confirmFailedRehearsal: Bool?
    /// restore, asked by a farm's coordinator only: this node's part of the farm's lock-step
    /// upgrade (`FarmStage`); nil for a whole restore.
    public let farmStage: FarmStage?

    /// The longest comment accepted, in characters.
    public static let commentLimit = 2000
    /// The longest actor name accepted, in characters.
    public static let actorNameLimit = 200

    /// Makes a request, checking the comment and the actor's name (the paths are typed).
    /// - Throws: `DeliveryError` `.badRequest` with the reason.
    public init(
        _ operation: Operation, actor: Actor, securePath: ComponentPath? = nil, updatePath: ComponentPath? = nil,
        securityCopy: Bool = false, comment: String? = nil, confirmDatabaseRestore: Bool? = nil,
        secondFactorCode: String? = nil, targetRevision: String? = nil, scheduled: Bool = false,
        confirmFailedRehearsal: Bool? = nil, farmStage: FarmStage? = nil
    ) throws(DeliveryError) {
        guard farmStage == nil || operation == .restore else {
            throw DeliveryError(.badRequest, "only a restore takes a farm stage")
        }
        if let targetRevision {
            guard (1...64).contains(targetRevision.utf8.count), !targetRevision.hasPrefix("-"),
                targetRevision.utf8.allSatisfy({
                    ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 46
                        || $0 == 95
                })
            else {
                throw DeliveryError(.badRequest, "the target revision is not a revision")
            }
        }
        if let comment {
            guard comment.count <= Self.commentLimit else {
                throw DeliveryError(.badRequest, "the comment is longer than \(Self.commentLimit) characters")
            }
            guard
                !comment.unicodeScalars.contains(where: { $0.value < 32 && $0 != "\n" && $0 != "\t" || $0.value == 127 }
                )
            else {
                throw DeliveryError(.badRequest, "the comment holds control characters")
            }
        }
        guard actor.name.count <= Self.actorNameLimit, !actor.name.isEmpty,
            !actor.name.unicodeScalars.contains(where: { $0.value < 32 })
        else {
            throw DeliveryError(.badRequest, "the actor's name is empty, too long or holds control characters")
        }
        self.operation = operation
        self.actor = actor
        self.securePath = securePath
        self.updatePath = updatePath
        self.securityCopy = securityCopy
        self.comment = comment
        self.confirmDatabaseRestore = confirmDatabaseRestore
        self.secondFactorCode = secondFactorCode
        self.targetRevision = targetRevision
        self.scheduled = scheduled
        self.confirmFailedRehearsal = confirmFailedRehearsal
        self.farmStage = farmStage
    }

    /// Parses a request from the text a person or a signed request gave (the paths as typed).
    /// A refusal is handed to `audit` first, as a request of the same operation and actor
    /// without its options, so that it is recorded like any other refusal.
    /// - Throws: `DeliveryError` `.badPath` or `.badRequest` with the reason.
    public static func parse(
        _ operation: Operation, actor: Actor, securePath: String? = nil, updatePath: String? = nil,
        securityCopy: Bool = false, comment: String? = nil, confirmDatabaseRestore: Bool? = nil,
        secondFactorCode: String? = nil, confirmFailedRehearsal: Bool? = nil, targetRevision: String? = nil,
        farmStage: FarmStage? = nil, audit: (OperationRequest, DeliveryError) -> Void
    ) throws(DeliveryError) -> OperationRequest {
        do {
            return try OperationRequest(
                operation, actor: actor, securePath: try ComponentPath.parse(securePath),
                updatePath: try ComponentPath.parse(updatePath), securityCopy: securityCopy, comment: comment,
                confirmDatabaseRestore: confirmDatabaseRestore, secondFactorCode: secondFactorCode,
                targetRevision: targetRevision, confirmFailedRehearsal: confirmFailedRehearsal, farmStage: farmStage)
        } catch {
            if let bare = try? OperationRequest(operation, actor: actor) { audit(bare, error) }
            throw error
        }
    }

    private enum CodingKeys: String, CodingKey {
        case operation, securePath, updatePath, securityCopy, comment, actor, confirmDatabaseRestore, secondFactorCode
        case targetRevision, scheduled, confirmFailedRehearsal, farmStage
    }

    /// Decodes a request through the same checks as `init`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            try self.init(
                try container.decode(Operation.self, forKey: .operation),
                actor: try container.decode(Actor.self, forKey: .actor),
                securePath: try container.decodeIfPresent(ComponentPath.self, forKey: .securePath),
                updatePath: try container.decodeIfPresent(ComponentPath.self, forKey: .updatePath),
                securityCopy: try container.decode(Bool.self, forKey: .securityCopy),
                comment: try container.decodeIfPresent(String.self, forKey: .comment),
                confirmDatabaseRestore: try container.decodeIfPresent(Bool.self, forKey: .confirmDatabaseRestore),
                secondFactorCode: try container.decodeIfPresent(String.self, forKey: .secondFactorCode),
                targetRevision: try container.decodeIfPresent(String.self, forKey: .targetRevision),
                scheduled: try container.decodeIfPresent(Bool.self, forKey: .scheduled) ?? false,
                confirmFailedRehearsal: try container.decodeIfPresent(Bool.self, forKey: .confirmFailedRehearsal),
                farmStage: try container.decodeIfPresent(FarmStage.self, forKey: .farmStage))
        } catch let error as DeliveryError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }
}

/// A node's part of a farm's restore (`FarmDelivery`). Without a Moodle upgrade, every node first
/// readies production (`ready`), then every node serves it at once (a restore without a stage).
/// With one, the coordinator holds the maintenance mode, takes the snapshot and runs the upgrade,
/// once; the other nodes serve production in two stages around it (`serve`, `finish`).
public enum FarmStage: String, Sendable, Codable, Equatable {
    /// Everything the restore does before production is served, and no more: the preflight,
    /// Moodle's checks of the copy that serves (the health check's baseline), production's
    /// changed scripts dropped from OPcache and OPcache warmed with its code. The copy still
    /// serves; the node records what it found (`ReadiedRestore`), and the restore of the same
    /// farm delivery that follows serves production at once. Refused when the revision brings a
    /// Moodle upgrade.
    case ready
    /// Production served on this node, under the coordinator's maintenance mode, before the
    /// upgrade: no upgrade, no snapshot, no maintenance mode of its own, no health check; the
    /// node stays `restoring`.
    case serve
    /// After the coordinator's upgrade: this node's health check (its own page), and the delivery
    /// ends. Refused while Moodle still reports an upgrade pending.
    case finish
}

extension Operation {
    /// The members of `POST /operations` each operation takes besides `operation`
    /// (docs/protocol.md): the API refuses the others, and the plugin's generated rules list them.
    public var requestMembers: [String] {
        switch self {
        case .secure: ["securityCopy", "securePath"]
        case .update: ["updatePath", "comment"]
        case .runAll: ["securityCopy", "securePath", "updatePath", "comment", "confirmFailedRehearsal"]
        case .restore: ["confirmFailedRehearsal"]
        case .rollback: ["confirmDatabaseRestore", "secondFactorCode"]
        case .switchToDelivery, .cancel, .recover, .rehearse: []
        }
    }

    /// The members of `POST /operations` only a farm's coordinator sends, on the farm socket:
    /// the revision it resolved for an update, the stage of a restore in its lock-step upgrade.
    public var farmRequestMembers: [String] {
        switch self {
        case .update: ["targetRevision"]
        case .restore: ["farmStage"]
        default: []
        }
    }

    /// The four steps of a delivery, in order (run-all goes through them).
    public static let steps: [Operation] = [.secure, .switchToDelivery, .update, .restore]
}

/// The one format of an operation's id, the same for a job of the helper and an operation of
/// deliveryctl (the audit log's `id`): UTC date and time, then 8 random hex digits
/// (`20261125T153000Z-1a2b3c4d`).
public enum OperationIdentifier {
    /// A new id.
    public static func make() -> String {
        "\(System.utcStamp())-\(hexString(System.randomBytes(4)))"
    }

    /// The id as a database name holds it (lower case, `_` for `-`: `20261204t101500z_1a2b3c4d`).
    static func databaseForm(_ id: String) -> String {
        id.lowercased().replacing("-", with: "_")
    }

    /// The id a database name's last part holds (`databaseForm`), or nil for any other text.
    static func fromDatabaseForm<Text: StringProtocol>(_ text: Text) -> String? {
        var id = Array(text)
        guard id.count == 25, id[8] == "t", id[15] == "z", id[16] == "_" else { return nil }
        (id[8], id[15], id[16]) = ("T", "Z", "-")
        return isValid(String(id)) ? String(id) : nil
    }

    /// True for a string that has the shape of an id (checked before any lookup).
    public static func isValid(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 25, utf8[8] == UInt8(ascii: "T"), utf8[15] == UInt8(ascii: "Z"),
            utf8[16] == UInt8(ascii: "-")
        else { return false }
        let isDigit = { (byte: UInt8) in byte >= 48 && byte <= 57 }
        let isHex = { (byte: UInt8) in isDigit(byte) || (byte >= 97 && byte <= 102) }
        return utf8[0..<8].allSatisfy(isDigit) && utf8[9..<15].allSatisfy(isDigit) && utf8[17...].allSatisfy(isHex)
    }
}
