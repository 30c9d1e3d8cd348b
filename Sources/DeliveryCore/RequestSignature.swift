import Crypto

/// How a request to the helper is signed (`docs/protocol.md`, Authentication): HMAC-SHA256 with a
/// shared key over a canonical string — the lines `DELIVERYD-HMAC-SHA256`, method, path, query
/// string, timestamp, nonce, Moodle user id, user name (percent-encoded, as sent), lowercase hex
/// SHA-256 of the body, joined by `\n`. The helper checks with it; `HelperClient` signs with it.
public enum RequestSignature {
    /// The first line of the canonical string: names the scheme and its version.
    public static let scheme = "DELIVERYD-HMAC-SHA256"

    /// The canonical string of a request.
    public static func canonicalString(
        method: String, path: String, query: String, timestamp: String, nonce: String, userId: String,
        userName: String, body: [UInt8]
    ) -> String {
        let digest = hexString(SHA256.hash(data: body))
        return [scheme, method, path, query, timestamp, nonce, userId, userName, digest].joined(separator: "\n")
    }

    /// The signature of a canonical string with a key, as lowercase hex.
    public static func sign(_ canonical: String, key: [UInt8]) -> String {
        hexString(HMAC<SHA256>.authenticationCode(for: Array(canonical.utf8), using: SymmetricKey(data: key)))
    }

    /// Whether `given` (raw bytes) is the signature of `canonical`; constant time.
    public static func isValid(_ given: [UInt8], of canonical: String, key: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            given, authenticating: Array(canonical.utf8), using: SymmetricKey(data: key))
    }

    /// A key file's key: its content less trailing white space, at least 32 bytes.
    /// - Throws: `DeliveryError` `.configuration` saying what is wrong.
    public static func key(fromFile path: String) throws(DeliveryError) -> [UInt8] {
        var key: [UInt8]
        do {
            key = try System.readFileNoFollow(path, limit: 4096)
        } catch {
            throw DeliveryError(.configuration, "cannot read the key file: \(error)")
        }
        while let last = key.last, [0x0A, 0x0D, 0x20, 0x09].contains(last) { key.removeLast() }
        guard key.count >= 32 else {
            throw DeliveryError(.configuration, "the key file \(path) holds fewer than 32 bytes")
        }
        return key
    }
}
