import Foundation
import Testing

@testable import DeliveryCore

@Suite("What the plugin's key alone cannot do: the second factor and the hourly limits")
struct SecondFactorTests {
    let administrator = Actor(name: "Ada Admin", source: "moodle", moodleUserId: 2, peerUid: 33, claimed: true)

    @Test("TOTP: RFC 6238's SHA-1 test vectors (8 digits) and their 6-digit codes")
    func rfcVectors() {
        let secret = Array("12345678901234567890".utf8)
        let vectors: [(Double, String)] = [
            (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
        for (time, code) in vectors {
            let step = TOTP.step(at: Date(timeIntervalSince1970: time))
            #expect(TOTP.code(secret: secret, step: step, digits: 8) == code)
            #expect(TOTP.code(secret: secret, step: step) == String(code.suffix(6)))
        }
    }

    @Test("base 32: RFC 4648's vectors, round trips, and refusal of other characters")
    func base32() {
        let vectors = [
            "": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB",
            "foobar": "MZXW6YTBOI",
        ]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
        }
        let bytes = (0..<20).map { UInt8($0 * 13 % 256) }
        #expect(Base32.decode(Base32.encode(bytes).lowercased()) == bytes)
        #expect(Base32.decode("MZ1W") == nil)
    }

    /// The code an authenticator app would show for the enrolment at a moment.
    func code(_ enrolment: TOTPEnrolment, at date: Date) -> String {
        TOTP.code(secret: Base32.decode(enrolment.secret)!, step: TOTP.step(at: date))
    }

    func refusal(_ body: () throws(DeliveryError) -> Void) -> DeliveryError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test("a code is required, checked against the administrator's own secret, and accepted once")
    func verification() throws {
        let directory = TemporaryDirectory()
        let factor = SecondFactor(stateDirectory: directory.path, siteName: "school.example/moodle")
        let enrolment = try factor.enrol(moodleUserId: 2, name: "Ada Admin")
        #expect(enrolment.uri.hasPrefix("otpauth://totp/moodle-delivery:school.example%2Fmoodle%20Ada%20Admin?secret="))
        #expect(enrolment.uri.contains("&digits=6&period=30"))
        let mode = try FileManager.default.attributesOfItem(atPath: "\(directory.path)/second-factor.json")[
            .posixPermissions]
        #expect(mode as? Int == 0o600)
        let now = Date(timeIntervalSince1970: 1_800_000_015)

        #expect(
            refusal { () throws(DeliveryError) in try factor.verify(nil, for: administrator, now: now) }?.code
                == .secondFactorRequired)
        let wrong = refusal { () throws(DeliveryError) in try factor.verify("000000", for: administrator, now: now) }
        #expect(wrong?.code == .secondFactorRefused)
        #expect(wrong?.message.contains("wrong code. Wrong codes left before the second factor locks: 4") == true)
        #expect(wrong?.notices.map(\.code) == ["second_factor_wrong", "second_factor_codes_left"])
        let expired = refusal { () throws(DeliveryError) in
            try factor.verify(code(enrolment, at: now.addingTimeInterval(-120)), for: administrator, now: now)
        }
        #expect(expired?.code == .secondFactorRefused)
        #expect(expired?.message.contains("the code expired") == true)
        let other = Actor(name: "Ada Admin", source: "moodle", moodleUserId: 3, peerUid: 33, claimed: true)
        let claimed = refusal { () throws(DeliveryError) in
            try factor.verify(code(enrolment, at: now), for: other, now: now)
        }
        #expect(claimed?.message.contains("Moodle user 3 (Ada Admin) is not enrolled") == true)

        // The current code, and the previous step's (a phone slightly behind), are accepted.
        try factor.verify(code(enrolment, at: now.addingTimeInterval(-30)), for: administrator, now: now)
        let replayed = refusal { () throws(DeliveryError) in
            try factor.verify(code(enrolment, at: now.addingTimeInterval(-30)), for: administrator, now: now)
        }
        #expect(replayed?.message.contains("already used") == true)
        try factor.verify(code(enrolment, at: now), for: administrator, now: now.addingTimeInterval(1))
        #expect(try factor.list().first?.lastUsedAt == now.addingTimeInterval(1))
        #expect(try factor.list().map(\.moodleUserId) == [2])
    }

    @Test("wrong codes lock every code for 15 minutes, the right one included")
    func lockout() throws {
        let directory = TemporaryDirectory()
        let factor = SecondFactor(stateDirectory: directory.path)
        let enrolment = try factor.enrol(moodleUserId: 2, name: "")
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for attempt in 0..<SecondFactor.failureLimit {
            let at = start.addingTimeInterval(Double(attempt))
            #expect(
                refusal { () throws(DeliveryError) in try factor.verify("12345x", for: administrator, now: at) }?
                    .code == .secondFactorRefused)
        }
        let later = start.addingTimeInterval(600)
        let locked = refusal { () throws(DeliveryError) in
            try factor.verify(code(enrolment, at: later), for: administrator, now: later)
        }
        #expect(locked?.code == .secondFactorLocked)
        let afterwards = start.addingTimeInterval(SecondFactor.failureWindow + 5)
        try factor.verify(code(enrolment, at: afterwards), for: administrator, now: afterwards)
    }

    @Test("enrolment: once unless replaced, a positive id, revocable")
    func enrolment() throws {
        let directory = TemporaryDirectory()
        let factor = SecondFactor(stateDirectory: directory.path)
        let first = try factor.enrol(moodleUserId: 5, name: "Bo")
        #expect(
            refusal { () throws(DeliveryError) in _ = try factor.enrol(moodleUserId: 5, name: "Bo") }?.code
                == .wrongState)
        let second = try factor.enrol(moodleUserId: 5, name: "Bo", replace: true)
        #expect(first.secret != second.secret)
        #expect(
            refusal { () throws(DeliveryError) in _ = try factor.enrol(moodleUserId: 0, name: "") }?.code
                == .badRequest)
        #expect(try factor.revoke(moodleUserId: 5))
        #expect(try !factor.revoke(moodleUserId: 5))
        #expect(try factor.list().isEmpty)
    }

    @Test("hourly limits count what the key started in the last hour, never deliveryctl's nor refusals")
    func limits() throws {
        let directory = TemporaryDirectory()
        let store = OperationLimits.store(stateDirectory: directory.path)
        let now = Date()
        let root = Actor(name: "root", source: "cli", peerUid: 0)
        let limits = OperationLimits(switchesPerHour: 2, restoresPerHour: 2, rollbacksPerHour: 1)
        func admit(_ operation: DeliveryOperation, _ actor: Actor, at time: Date) throws(DeliveryError) {
            try OperationLimits.admit(
                OperationRequest(operation, actor: actor), limits: limits, store: store, now: time)
        }
        try admit(.switchToDelivery, administrator, at: now.addingTimeInterval(-5000))
        try admit(.switchToDelivery, administrator, at: now.addingTimeInterval(-1000))
        try admit(.runAll, administrator, at: now.addingTimeInterval(-900))
        try admit(.switchToDelivery, root, at: now.addingTimeInterval(-700))
        let counted = try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/operation-limits.json"))
        for _ in 0..<200 {
            let refused = refusal { () throws(DeliveryError) in try admit(.switchToDelivery, administrator, at: now) }
            #expect(refused?.code == .rateLimited)
        }
        // Refusals are not written: no stream of them can push the counted operations out.
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory.path)/operation-limits.json")) == counted)
        let refused = refusal { () throws(DeliveryError) in try admit(.switchToDelivery, administrator, at: now) }
        #expect(
            refused?.message.contains("2 operations of the kind 'switches' were started from Moodle in the last hour")
                == true)
        #expect(refused?.notices.first?.values["count"] == 2)
        // run-all counted as a switch and a restore: one restore so far.
        try admit(.restore, administrator, at: now)
        try admit(.switchToDelivery, root, at: now)
        try admit(.secure, administrator, at: now)
        try admit(.rollback, administrator, at: now)
        #expect(
            refusal { () throws(DeliveryError) in try admit(.rollback, administrator, at: now) }?.code == .rateLimited)
        // An hour after the first counted switch, the next one is allowed.
        try admit(.switchToDelivery, administrator, at: now.addingTimeInterval(2700))
        let mode = try FileManager.default.attributesOfItem(atPath: "\(directory.path)/operation-limits.json")[
            .posixPermissions]
        #expect(mode as? Int == 0o600)
        // A member left out keeps its default.
        let decoded = try JSONDecoder().decode(OperationLimits.self, from: Data(#"{"rollbacksPerHour": 3}"#.utf8))
        #expect(decoded == OperationLimits(rollbacksPerHour: 3))
    }
}
