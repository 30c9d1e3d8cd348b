import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Time-based one-time passwords as RFC 6238 defines them with its defaults (HMAC-SHA1 over the
/// number of 30-second steps since 1970, six digits): what every authenticator app makes.
public enum TOTP {
    /// Seconds per step.
    public static let stepSeconds: Double = 30
    /// Digits per code.
    public static let digits = 6

    /// The step a moment falls in.
    public static func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / stepSeconds).rounded(.down))
    }

    /// The code of a step (RFC 4226's dynamic truncation of the HMAC).
    public static func code(secret: [UInt8], step: Int64, digits: Int = digits) -> String {
        let counter = withUnsafeBytes(of: UInt64(bitPattern: step).bigEndian) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: counter, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary =
            UInt32(mac[offset] & 0x7f) << 24 | UInt32(mac[offset + 1]) << 16 | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let text = String(binary % modulus)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// Compares two codes in a time that does not depend on where they differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

/// Base 32 (RFC 4648, upper case, no padding): how authenticator apps take a secret.
public enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes bytes.
    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int(buffer >> UInt32(bits - 5) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int(buffer << UInt32(5 - bits) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes text (case and `=` padding ignored); nil when a character is not base 32.
    public static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.uppercased().utf8 where character != UInt8(ascii: "=") {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            if bits >= 8 {
                output.append(UInt8(buffer >> UInt32(bits - 8) & 0xff))
                bits -= 8
            }
        }
        return output
    }
}

/// An administrator enrolled for the second factor, as `deliveryctl admin list` shows them (the
/// secret never leaves the helper's file).
public struct EnrolledAdministrator: Sendable, Codable, Equatable {
    /// The Moodle user id: what the plugin's requests name.
    public var moodleUserId: Int
    /// A label for people (the Moodle user's name, as root typed it).
    public var name: String
    public var enrolledAt: Date
    /// When a code of theirs was last accepted.
    public var lastUsedAt: Date?
}

/// What `deliveryctl admin enrol-totp` hands to the administrator, once.
public struct TOTPEnrolment: Sendable, Codable, Equatable {
    public var administrator: EnrolledAdministrator
    /// The secret in base 32, for typing into an app.
    public var secret: String
    /// The `otpauth://` URI an app reads (from a QR code, or pasted).
    public var uri: String
}

/// The second factor the helper asks for before a destructive operation requested with the
/// plugin's key (docs/SECURITY.md, "What the web user's key can still do"): a code of the
/// administrator's authenticator, checked against a secret only root can read.
///
/// The file (`second-factor.json` in the state directory, mode 0600) holds each administrator's
/// secret and the last step a code of theirs was accepted for (a code is accepted once), and the
/// times of recent wrong codes: after `failureLimit` of them within `failureWindow` seconds, every
/// code is refused until the oldest leaves the window. The web user can read none of it.
public struct SecondFactor: Sendable {
    /// Wrong codes allowed within `failureWindow` before every code is refused.
    public static let failureLimit = 5
    /// Seconds a wrong code counts.
    public static let failureWindow: Double = 15 * 60
    /// Steps either side of now a code is accepted for (clock drift between phone and server).
    public static let acceptedDrift: Int64 = 1
    /// Steps back a code is recognised as expired rather than wrong.
    static let expiredLookback: Int64 = 20

    struct Enrolled: Codable, Sendable {
        var administrator: EnrolledAdministrator
        var secret: String
        var lastUsedStep: Int64?
    }

    struct File: Codable, Sendable {
        var administrators: [String: Enrolled] = [:]
        var failures: [Date] = []
    }

    let store: JSONFileStore<File>
    /// The site's name in the URI's label (several sites may share one phone).
    let siteName: String

    /// The second factor of the site whose state directory this is.
    public init(stateDirectory: String, siteName: String = "moodle") {
        store = JSONFileStore(
            file: "\(stateDirectory)/second-factor.json", mutexFile: "\(stateDirectory)/second-factor.lock",
            mode: 0o600, what: "the second factor file"
        ) { File() }
        self.siteName = siteName
    }

    /// Makes a new secret for a Moodle user; refuses when one exists unless `replace`.
    public func enrol(moodleUserId: Int, name: String, replace: Bool = false, now: Date = Date())
        throws(DeliveryError) -> TOTPEnrolment
    {
        guard moodleUserId > 0 else { throw DeliveryError(.badRequest, "a Moodle user id is a positive number") }
        let label = name.isEmpty ? "user \(moodleUserId)" : name
        guard label.count <= 200, !label.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
            throw DeliveryError(.badRequest, "the name must be printable and at most 200 characters")
        }
        let secret = Base32.encode(System.randomBytes(20))
        let administrator = EnrolledAdministrator(moodleUserId: moodleUserId, name: label, enrolledAt: now)
        try store.update { (file: inout File) throws(DeliveryError) in
            if file.administrators[String(moodleUserId)] != nil && !replace {
                throw DeliveryError(
                    .wrongState,
                    "Moodle user \(moodleUserId) is already enrolled; add --replace to give them a new secret (the old one stops working)"
                )
            }
            file.administrators[String(moodleUserId)] = Enrolled(administrator: administrator, secret: secret)
        }
        return TOTPEnrolment(administrator: administrator, secret: secret, uri: uri(secret: secret, name: label))
    }

    /// The enrolled administrators, by Moodle user id.
    public func list() throws(DeliveryError) -> [EnrolledAdministrator] {
        try store.read().administrators.values.map(\.administrator).sorted { $0.moodleUserId < $1.moodleUserId }
    }

    /// Removes an administrator's secret; false when there was none.
    public func revoke(moodleUserId: Int) throws(DeliveryError) -> Bool {
        try store.update { (file: inout File) throws(DeliveryError) in
            file.administrators.removeValue(forKey: String(moodleUserId)) != nil
        }
    }

    /// Checks the code a request carries for its actor (the Moodle user it names); accepts it once.
    /// What happened, right or wrong, is returned in the error's message for the audit log.
    public func verify(_ code: String?, for actor: Actor, now: Date = Date()) throws(DeliveryError) {
        let (outcome, failures, oldest) = try store.update {
            (file: inout File) throws(DeliveryError) -> (Outcome, Int, Date?) in
            file.failures = file.failures.filter { abs(now.timeIntervalSince($0)) < Self.failureWindow }
            if file.failures.count >= Self.failureLimit, let oldest = file.failures.min() {
                return (.locked(until: oldest.addingTimeInterval(Self.failureWindow)), file.failures.count, oldest)
            }
            let key = String(actor.moodleUserId ?? 0)
            guard let code, !code.isEmpty else {
                return (.missing(enrolled: file.administrators[key] != nil), file.failures.count, nil)
            }
            let outcome = Self.check(code, file.administrators[key], now: now)
            if case .accepted(let step) = outcome {
                file.administrators[key]?.lastUsedStep = step
                file.administrators[key]?.administrator.lastUsedAt = now
            } else {
                file.failures.append(now)
            }
            return (outcome, file.failures.count, file.failures.min())
        }
        let left = { (used: Int) -> Notice in
            let count = max(0, Self.failureLimit - used)
            let until = (oldest ?? now).addingTimeInterval(Self.failureWindow)
            return count == 0
                ? Notice(.secondFactorNowLocked, ["untilAt": .moment(until), "limit": .count(Self.failureLimit)])
                : Notice(.secondFactorCodesLeft, ["count": .count(count)])
        }
        let user: [String: NoticeValue] = [
            "user": .text(actor.moodleUserId.map(String.init) ?? "?"), "name": .text(actor.name),
        ]
        switch outcome {
        case .accepted: return
        case .missing(let enrolled):
            throw DeliveryError(
                .secondFactorRequired, enrolled ? .secondFactorNeeded : .secondFactorNoneEnrolled, user)
        case .notEnrolled:
            throw DeliveryError(
                .secondFactorRefused, [Notice(.secondFactorNotEnrolled, user), left(failures)])
        case .malformed:
            throw DeliveryError(.secondFactorRefused, [Notice(.secondFactorMalformed), left(failures)])
        case .wrong:
            throw DeliveryError(.secondFactorRefused, [Notice(.secondFactorWrong), left(failures)])
        case .expired(let seconds):
            throw DeliveryError(
                .secondFactorRefused,
                [
                    Notice(
                        .secondFactorExpired,
                        [
                            "ageSeconds": .number(Int64(seconds.rounded())),
                            "lifeSeconds": .number(Int64(TOTP.stepSeconds)),
                        ]),
                    left(failures),
                ])
        case .replayed:
            throw DeliveryError(.secondFactorRefused, [Notice(.secondFactorReplayed), left(failures)])
        case .locked(let until):
            throw DeliveryError(
                .secondFactorLocked, .secondFactorLockedUntil,
                ["limit": .count(Self.failureLimit), "untilAt": .moment(until)])
        }
    }

    enum Outcome: Sendable {
        case accepted(step: Int64)
        case missing(enrolled: Bool)
        case notEnrolled, malformed, wrong, replayed
        case expired(seconds: Double)
        case locked(until: Date)
    }

    /// The code against the administrator's secret: a step within the drift and after the last one
    /// used, else why not.
    static func check(_ code: String, _ enrolled: Enrolled?, now: Date) -> Outcome {
        guard let enrolled, let secret = Base32.decode(enrolled.secret), !secret.isEmpty else { return .notEnrolled }
        guard code.utf8.count == TOTP.digits, code.utf8.allSatisfy({ (48...57).contains($0) }) else {
            return .malformed
        }
        let current = TOTP.step(at: now)
        var matched: Int64?
        for step in (current - acceptedDrift)...(current + acceptedDrift)
        where TOTP.same(TOTP.code(secret: secret, step: step), code) {
            matched = step
        }
        if let matched {
            if let last = enrolled.lastUsedStep, matched <= last { return .replayed }
            return .accepted(step: matched)
        }
        for step in stride(from: current - acceptedDrift - 1, through: current - expiredLookback, by: -1)
        where TOTP.same(TOTP.code(secret: secret, step: step), code) {
            let end = Double(step + 1) * TOTP.stepSeconds
            return .expired(seconds: max(0, now.timeIntervalSince1970 - end))
        }
        return .wrong
    }

    /// The name an authenticator app shows for a site: its host and path.
    public static func siteName(_ wwwroot: String) -> String {
        var name = Substring(wwwroot)
        if let scheme = name.range(of: "://") { name = name[scheme.upperBound...] }
        while name.hasSuffix("/") { name = name.dropLast() }
        return name.isEmpty ? "moodle" : String(name)
    }

    private func uri(secret: String, name: String) -> String {
        // The label is "issuer:account": neither part may hold a colon of its own (a port).
        let label = "moodle-delivery:" + "\(siteName) \(name)".replacingOccurrences(of: ":", with: " ")
        return
            "otpauth://totp/\(Self.percentEncoded(label))?secret=\(secret)&issuer=moodle-delivery&algorithm=SHA1&digits=\(TOTP.digits)&period=\(Int(TOTP.stepSeconds))"
    }

    static func percentEncoded(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            let unreserved =
                (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte)
                || [45, 46, 95, 126, 58].contains(byte)
            let hex = Array("0123456789ABCDEF")
            output += unreserved ? String(UnicodeScalar(byte)) : "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])"
        }
        return output
    }
}
