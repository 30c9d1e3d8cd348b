import Foundation

/// The helper's answer to one request.
public struct HelperResponse: Sendable, Equatable {
    /// The HTTP status (`Status:` of the CGI response; 200 when absent).
    public var status: Int
    /// The body (JSON).
    public var body: [UInt8]
}

/// A client of a helper's socket: one FastCGI request (responder role) per connection, signed as
/// `RequestSignature` says. `deliveryctl follow` uses it to pass a coordinator's requests on to its
/// node's helper through the farm socket.
public struct HelperClient: Sendable {
    /// The helper's socket.
    public let socketPath: String
    /// The key requests are signed with.
    public let key: [UInt8]
    /// Who asks, as the request says (`X-Delivery-User-Name`, percent-encoded here).
    public let userName: String
    /// How long to wait for the connection to take the request and for the answer.
    public let timeoutSeconds: Double

    /// The largest answer read.
    static let responseLimit = 8 << 20

    /// Makes a client.
    public init(socketPath: String, key: [UInt8], userName: String, timeoutSeconds: Double = 30) {
        self.socketPath = socketPath
        self.key = key
        self.userName = userName
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends one request and reads the answer.
    /// - Throws: `DeliveryError` `.io` saying what failed: the connection, the write, or an answer
    ///   that is not a FastCGI response.
    public func send(method: String, path: String, query: String = "", body: [UInt8] = []) throws(DeliveryError)
        -> HelperResponse
    {
        let fd: Int32
        do {
            fd = try System.connectUnixSocket(socketPath)
            try System.setTimeouts(fd, seconds: timeoutSeconds)
        } catch {
            throw DeliveryError(.io, "cannot reach the helper at \(socketPath): \(error)")
        }
        defer { System.close(fd) }
        let request = Self.record(
            method: method, path: path, query: query, headers: signed(method, path, query, body), body: body)
        guard System.sendAll(fd, request) else {
            throw DeliveryError(.io, "the helper at \(socketPath) closed the connection before taking the request")
        }
        var received: [UInt8] = []
        while received.count <= Self.responseLimit {
            let bytes = System.readSome(fd, count: 65_536)
            if bytes.isEmpty { break }
            received += bytes
        }
        guard let response = Self.parse(received) else {
            throw DeliveryError(.io, "the helper at \(socketPath) sent no whole answer (\(received.count) bytes)")
        }
        return response
    }

    /// The signature headers, as FastCGI parameters.
    func signed(_ method: String, _ path: String, _ query: String, _ body: [UInt8]) -> [(String, String)] {
        let timestamp = String(System.wallSeconds())
        let nonce = hexString(System.randomBytes(16))
        let encodedName = userName.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "farm"
        let canonical = RequestSignature.canonicalString(
            method: method, path: path, query: query, timestamp: timestamp, nonce: nonce, userId: "0",
            userName: encodedName, body: body)
        return [
            ("HTTP_X_DELIVERY_TIMESTAMP", timestamp), ("HTTP_X_DELIVERY_NONCE", nonce),
            ("HTTP_X_DELIVERY_USER_ID", "0"), ("HTTP_X_DELIVERY_USER_NAME", encodedName),
            ("HTTP_X_DELIVERY_SIGNATURE", RequestSignature.sign(canonical, key: key)),
        ]
    }

    /// A whole FastCGI request: `FCGI_BEGIN_REQUEST` (responder, no keep-alive), the parameters,
    /// the body, each stream ended by an empty record.
    static func record(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8])
        -> [UInt8]
    {
        let parameters =
            [
                ("REQUEST_METHOD", method), ("SCRIPT_NAME", path), ("QUERY_STRING", query),
                ("CONTENT_LENGTH", String(body.count)), ("GATEWAY_INTERFACE", "CGI/1.1"),
            ] + headers
        var encoded: [UInt8] = []
        for (name, value) in parameters {
            encoded += length(name.utf8.count) + length(value.utf8.count) + Array(name.utf8) + Array(value.utf8)
        }
        return frame(1, [0, 1, 0, 0, 0, 0, 0, 0]) + stream(4, encoded) + stream(5, body)
    }

    private static func length(_ count: Int) -> [UInt8] {
        count < 128
            ? [UInt8(count)]
            : [
                UInt8((count >> 24) & 0x7F) | 0x80, UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF),
                UInt8(count & 0xFF),
            ]
    }

    /// Records of at most 65,535 bytes, then the empty one that ends the stream.
    private static func stream(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < content.count {
            let end = min(content.count, index + 65_535)
            result += frame(type, Array(content[index..<end]))
            index = end
        }
        return result + frame(type, [])
    }

    /// One record of request 1, padded to 8 bytes.
    private static func frame(_ type: UInt8, _ content: [UInt8]) -> [UInt8] {
        let padding = (8 - content.count % 8) % 8
        return [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), UInt8(padding), 0] + content
            + [UInt8](repeating: 0, count: padding)
    }

    /// The CGI answer carried by `FCGI_STDOUT` records, once `FCGI_END_REQUEST` came; nil otherwise.
    static func parse(_ bytes: [UInt8]) -> HelperResponse? {
        var output: [UInt8] = []
        var ended = false
        var index = 0
        while index + 8 <= bytes.count {
            let type = bytes[index + 1]
            let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
            let padding = Int(bytes[index + 6])
            guard index + 8 + length <= bytes.count else { return nil }
            if type == 6 { output += bytes[(index + 8)..<(index + 8 + length)] }
            if type == 3 { ended = true }
            index += 8 + length + padding
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard ended, output.count >= 4,
            let split = (0...(output.count - 4)).first(where: { Array(output[$0..<($0 + 4)]) == separator })
        else {
            return nil
        }
        var status = 200
        for line in String(decoding: output[..<split], as: UTF8.self).split(separator: "\r\n")
        where line.lowercased().hasPrefix("status:") {
            status = Int(line.dropFirst(7).trimmingCharacters(in: .whitespaces).prefix(3)) ?? 0
        }
        return HelperResponse(status: status, body: Array(output[(split + 4)...]))
    }
}
