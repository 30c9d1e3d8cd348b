import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response as a FastCGI client sees it.
struct ClientResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    /// True when the helper sent FCGI_END_REQUEST.
    var ended: Bool

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }

    /// The `error.code` of a JSON error body.
    var errorCode: String? {
        (json["error"] as? [String: Any])?["code"] as? String
    }
}

/// A small FastCGI client (responder role, one request per connection), written from the
/// FastCGI 1.0 specification for the tests.
struct FastCGIClient {
    let socketPath: String

    /// Opens a connection.
    func connect(timeoutSeconds: Double = 10) throws -> Connection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError("socket failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(socketPath.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw ClientError("connect failed: errno \(errno)")
        }
        var time = timeval(tv_sec: Int(timeoutSeconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        return Connection(fd: fd)
    }

    /// Sends one request and reads the response.
    func send(
        method: String, path: String, query: String = "", headers: [String: String] = [:], body: [UInt8] = [],
        contentLength: Bool = true
    ) throws -> ClientResponse {
        let connection = try connect()
        defer { connection.close() }
        try connection.write(
            Self.request(
                method: method, path: path, query: query, headers: headers, body: body, contentLength: contentLength))
        return try connection.readResponse()
    }

    /// The bytes of a whole request.
    static func request(
        method: String, path: String, query: String = "", headers: [String: String] = [:], body: [UInt8] = [],
        contentLength: Bool = true, requestId: UInt16 = 1
    ) -> [UInt8] {
        var parameters: [(String, String)] = [
            ("REQUEST_METHOD", method), ("SCRIPT_NAME", path), ("QUERY_STRING", query),
            ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ]
        if contentLength { parameters.append(("CONTENT_LENGTH", "\(body.count)")) }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            parameters.append(("HTTP_" + name.uppercased().replacingOccurrences(of: "-", with: "_"), value))
        }
        var bytes = record(type: 1, requestId: requestId, content: [0, 1, 0, 0, 0, 0, 0, 0])
        var encoded: [UInt8] = []
        for (name, value) in parameters {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        bytes += chunks(type: 4, requestId: requestId, encoded) + record(type: 4, requestId: requestId, content: [])
        bytes += chunks(type: 5, requestId: requestId, body) + record(type: 5, requestId: requestId, content: [])
        return bytes
    }

    static func length(_ count: Int) -> [UInt8] {
        if count < 128 { return [UInt8(count)] }
        return [
            UInt8((count >> 24) & 0x7F) | 0x80, UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF),
            UInt8(count & 0xFF),
        ]
    }

    static func chunks(type: UInt8, requestId: UInt16, _ content: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < content.count {
            let end = min(content.count, index + 65_535)
            result += record(type: type, requestId: requestId, content: Array(content[index..<end]))
            index = end
        }
        return result
    }

    static func record(type: UInt8, requestId: UInt16, content: [UInt8]) -> [UInt8] {
        let padding = (8 - content.count % 8) % 8
        return [
            1, type, UInt8(requestId >> 8), UInt8(requestId & 0xFF), UInt8(content.count >> 8),
            UInt8(content.count & 0xFF),
            UInt8(padding), 0,
        ] + content + [UInt8](repeating: 0, count: padding)
    }
}

/// One client connection.
final class Connection {
    let fd: Int32
    private var closed = false

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    func close() {
        if !closed {
            Glibc.close(fd)
            closed = true
        }
    }

    /// Writes bytes; throws when the helper closed the connection.
    func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
            }
            guard result > 0 else { throw ClientError("write failed: errno \(errno)") }
            done += result
        }
    }

    /// Reads until end of file (or the receive timeout); returns what came.
    func readAll() -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return result }
            result += buffer[0..<count]
        }
    }

    /// Reads records until FCGI_END_REQUEST or end of file, and parses the CGI response.
    func readResponse() throws -> ClientResponse {
        let bytes = readAll()
        var stdout: [UInt8] = []
        var ended = false
        var index = 0
        while index + 8 <= bytes.count {
            let type = bytes[index + 1]
            let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
            let padding = Int(bytes[index + 6])
            guard index + 8 + length <= bytes.count else { break }
            let content = Array(bytes[(index + 8)..<(index + 8 + length)])
            if type == 6 { stdout += content }
            if type == 3 { ended = true }
            index += 8 + length + padding
        }
        guard let split = Self.find([13, 10, 13, 10], in: stdout) else {
            throw ClientError("no response (\(bytes.count) bytes received)")
        }
        var headers: [String: String] = [:]
        for line in String(decoding: stdout[..<split], as: UTF8.self).split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        let status = Int(headers["Status"]?.prefix(3) ?? "200") ?? 0
        return ClientResponse(status: status, headers: headers, body: Array(stdout[(split + 4)...]), ended: ended)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where Array(haystack[index..<(index + needle.count)]) == needle
        {
            return index
        }
        return nil
    }
}

struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Signs requests as the protocol says (`docs/protocol.md`), independently of the server's code.
struct Signer {
    var key: [UInt8]
    var userId = "7"
    var userName = "Test%20Admin"

    func headers(
        method: String, path: String, query: String = "", body: [UInt8] = [], timestamp: Int? = nil,
        nonce: String? = nil
    ) -> [String: String] {
        let time = timestamp ?? Int(Glibc.time(nil))
        let nonce = nonce ?? (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let bodyHash = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        let canonical = ["DELIVERYD-HMAC-SHA256", method, path, query, "\(time)", nonce, userId, userName, bodyHash]
            .joined(separator: "\n")
        let signature = HMAC<SHA256>.authenticationCode(for: Array(canonical.utf8), using: SymmetricKey(data: key))
            .map { String(format: "%02x", $0) }.joined()
        return [
            "X-Delivery-Timestamp": "\(time)", "X-Delivery-Nonce": nonce, "X-Delivery-User-Id": userId,
            "X-Delivery-User-Name": userName, "X-Delivery-Signature": signature,
        ]
    }
}
