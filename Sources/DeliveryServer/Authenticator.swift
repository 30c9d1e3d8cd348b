import Crypto
import DeliveryCore

/// What a request says about itself, as far as signing goes.
struct SignedRequest {
    var method: String
    var path: String
    var query: String
    var timestamp: String?
    var nonce: String?
    var userId: String?
    var userName: String?
    var signature: String?
    var body: [UInt8]
}

/// Checks request signatures: HMAC-SHA256 with a shared key over a canonical string, a timestamp
/// window and single-use nonces.
///
/// The canonical string is the lines (joined by `\n`, no final newline):
/// `DELIVERYD-HMAC-SHA256`, method, path, query string, timestamp, nonce, Moodle user id,
/// Moodle user name (percent-encoded, as sent), lowercase hex SHA-256 of the body.
final class Authenticator: Sendable {
    private let key: [UInt8]
    private let clockSkew: Int64
    private let nonces: NonceCache
    private let now: @Sendable () -> Int64

    /// Makes an authenticator.
    init(key: [UInt8], clockSkewSeconds: Int, nonceCacheSize: Int, now: @escaping @Sendable () -> Int64) {
        self.key = key
        self.clockSkew = Int64(clockSkewSeconds)
        self.nonces = NonceCache(capacity: nonceCacheSize)
        self.now = now
    }

    /// Reads the key file: its content less trailing white space, at least 32 bytes, and not
    /// accessible to others.
    static func readKey(_ path: String) throws(ServerStartError) -> [UInt8] {
        let info: (mode: UInt32, uid: UInt32, isSocket: Bool, inode: UInt64)?
        do {
            info = try System.fileInfo(path)
        } catch {
            throw ServerStartError("cannot read the key file: \(error)")
        }
        guard let info, info.mode & 0o007 == 0 else {
            throw ServerStartError("the key file \(path) must not be accessible to others (chmod 0640)")
        }
        do {
            return try RequestSignature.key(fromFile: path)
        } catch {
            throw ServerStartError(error.message)
        }
    }

    /// Checks a request; returns who asked.
    /// - Throws: `APIError` (`unauthenticated`, `bad_signature`, `stale_request`,
    ///   `replayed_nonce`, `busy`).
    func authenticate(_ request: SignedRequest) throws(APIError) -> Actor {
        guard let timestamp = request.timestamp, let nonce = request.nonce, let userId = request.userId,
            let userName = request.userName, let signature = request.signature
        else {
            throw APIError(.unauthenticated, "the request is not signed")
        }
        guard let time = Int64(timestamp), timestamp.utf8.count <= 12,
            timestamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 })
        else {
            throw APIError(.unauthenticated, "the timestamp header is not a number of seconds")
        }
        guard (16...64).contains(nonce.utf8.count), nonce.utf8.allSatisfy(Self.isNonceByte) else {
            throw APIError(.unauthenticated, "the nonce must be 16 to 64 letters, digits, '-' or '_'")
        }
        guard let moodleId = Int(userId), moodleId >= 0, userId.utf8.count <= 12,
            userId.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 })
        else {
            throw APIError(.unauthenticated, "the user id header is not a number")
        }
        guard let name = Self.percentDecoded(userName), !name.isEmpty, name.count <= 200,
            !name.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 })
        else {
            throw APIError(
                .unauthenticated, "the user name header is not a percent-encoded name of 1 to 200 characters")
        }
        guard let given = Self.bytes(fromHex: signature), given.count == SHA256.byteCount else {
            throw APIError(.unauthenticated, "the signature header is not 64 hexadecimal digits")
        }
        let canonical = RequestSignature.canonicalString(
            method: request.method, path: request.path, query: request.query, timestamp: timestamp, nonce: nonce,
            userId: userId, userName: userName, body: request.body)
        // Constant time: swift-crypto compares the whole code whatever the first difference.
        guard RequestSignature.isValid(given, of: canonical, key: key) else {
            throw APIError(.badSignature, "the signature does not match")
        }
        let current = now()
        guard abs(current - time) <= clockSkew else {
            throw APIError(.staleRequest, "the request's timestamp is more than \(clockSkew) s from the helper's clock")
        }
        switch nonces.insert(nonce, expires: time + clockSkew + 1, now: current) {
        case .inserted: break
        case .seen: throw APIError(.replayedNonce, "the nonce was already used")
        case .full: throw APIError(.busy, "too many requests in the time window; retry shortly")
        }
        return Actor(name: name, source: "moodle", moodleUserId: moodleId, claimed: true)
    }

    private static func isNonceByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 45
            || byte == 95
    }

    static func bytes(fromHex text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(utf8.count / 2)
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
            result.append(high << 4 | low)
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 97...102: byte - 87
        case 65...70: byte - 55
        default: nil
        }
    }

    /// Decodes RFC 3986 percent-encoding (as PHP's `rawurlencode` writes it); nil when malformed
    /// or not UTF-8. Only unreserved characters may appear unencoded.
    static func percentDecoded(_ text: String) -> String? {
        let utf8 = Array(text.utf8)
        guard utf8.count <= 2000 else { return nil }
        var result: [UInt8] = []
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if byte == 37 {
                guard index + 2 < utf8.count, let high = hexValue(utf8[index + 1]), let low = hexValue(utf8[index + 2])
                else { return nil }
                result.append(high << 4 | low)
                index += 3
            } else {
                guard isNonceByte(byte) || byte == 46 || byte == 126 else { return nil }
                result.append(byte)
                index += 1
            }
        }
        return String(validating: result, as: UTF8.self)
    }
}

/// The nonces seen within the time window, each kept until its request's timestamp leaves the
/// window (after that the timestamp check refuses a replay). Bounded: when full of live nonces,
/// new requests are refused rather than old nonces forgotten.
final class NonceCache: Sendable {
    enum Outcome { case inserted, seen, full }

    private let capacity: Int
    private let entries = Locked<[String: Int64]>([:])

    init(capacity: Int) { self.capacity = capacity }

    func insert(_ nonce: String, expires: Int64, now: Int64) -> Outcome {
        entries.withLock { entries in
            if let expiry = entries[nonce], expiry >= now { return .seen }
            if entries.count >= capacity {
                entries = entries.filter { $0.value >= now }
                if entries.count >= capacity { return .full }
            }
            entries[nonce] = expires
            return .inserted
        }
    }
}
