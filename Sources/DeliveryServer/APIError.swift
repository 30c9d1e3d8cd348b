import DeliveryCore

/// An error as the API sends it: a stable code, an HTTP status and one sentence for a person.
///
/// The message is written for the peer; internal details (errnos, file names of the helper,
/// decoder traces) are logged, never put here.
struct APIError: Error, Sendable, Equatable {
    /// The stable codes of the helper itself (the engine's `DeliveryError.Code` raw values are
    /// used as they are for engine errors).
    enum Code: String, Sendable, CaseIterable {
        /// The peer's uid is not in `allowedUids`.
        case peerRefused = "peer_refused"
        /// A signing header is missing or malformed.
        case unauthenticated = "unauthenticated"
        /// The signature does not match.
        case badSignature = "bad_signature"
        /// The timestamp is outside the allowed window.
        case staleRequest = "stale_request"
        /// The nonce was already used.
        case replayedNonce = "replayed_nonce"
        /// No such route or job.
        case notFound = "not_found"
        /// The route exists with another method.
        case methodNotAllowed = "method_not_allowed"
        /// The body is larger than `maxBodyBytes`.
        case bodyTooLarge = "body_too_large"
        /// Too many or too large parameters.
        case parametersTooLarge = "parameters_too_large"
        /// The request could not be read in time or was cut short.
        case requestTimeout = "request_timeout"
        /// The helper is shutting down, or its nonce cache is full.
        case busy = "busy"
        /// Something failed inside the helper; its log says what.
        case internalError = "internal"
    }

    /// The code sent to the peer.
    let code: String
    /// The HTTP status.
    let status: Int
    /// One sentence for a person.
    let message: String
    /// What a person reads, as notices (engine errors that say more than their code).
    var notices: [Notice] = []

    /// Makes an error of the helper.
    init(_ code: Code, _ message: String) {
        self.code = code.rawValue
        self.message = message
        switch code {
        case .peerRefused: status = 403
        case .unauthenticated, .badSignature, .staleRequest, .replayedNonce: status = 401
        case .notFound: status = 404
        case .methodNotAllowed: status = 405
        case .bodyTooLarge: status = 413
        case .parametersTooLarge: status = 431
        case .requestTimeout: status = 408
        case .busy: status = 503
        case .internalError: status = 500
        }
    }

    /// Maps an engine error to the API. Refusals and failures that speak of the site keep the
    /// engine's sentence; errors that could carry the helper's internals get a fixed sentence.
    init(_ error: DeliveryError) {
        code = error.code.rawValue
        switch error.code {
        case .wrongState, .lockHeld, .staleLock, .copyMissing, .notMoodle, .preempted, .preflightFailed,
            .confirmationRequired, .notUpdatable, .noRoom, .scheduleExists, .scheduleStale, .scheduleSkipped,
            .cannotRehearse, .blockedByRehearsal, .farmUnreachable:
            status = 409
        case .notFound: status = 404
        case .badPath, .badRequest: status = 400
        case .secondFactorRequired, .secondFactorRefused, .secondFactorLocked: status = 403
        case .rateLimited: status = 429
        case .vcsFailed, .upgradeFailed, .snapshotFailed, .databaseRestoreFailed, .healthCheckFailed, .webServerStale,
            .rehearsalFailed, .farmStepFailed:
            status = 500
        case .configuration, .privileges, .io: status = 500
        }
        switch error.code {
        case .configuration: message = "the helper's site configuration is not usable; see the helper's log"
        case .privileges: message = "the helper lacks the privileges for this; see the helper's log"
        case .io: message = "the helper could not read or write the site's files; see the helper's log"
        default:
            message = error.message
            notices = error.notices
        }
    }

    /// Makes a bad request error (malformed JSON, unknown member, wrong type).
    static func badRequest(_ message: String) -> APIError {
        APIError(code: DeliveryError.Code.badRequest.rawValue, status: 400, message: message)
    }

    private init(code: String, status: Int, message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    /// The JSON body: `{"error": {"code": "...", "message": "...", "notices": [...]}}` (notices
    /// when the error says more than its code).
    var body: ErrorBody {
        ErrorBody(error: .init(code: code, message: message, notices: notices.isEmpty ? nil : notices))
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let notices: [Notice]?
        }
        let error: Detail
    }
}

/// A response: status, JSON body.
struct Response {
    var status: Int
    var body: [UInt8]
    var contentType = "application/json"
    var extraHeaders: [String: String] = [:]

    /// A JSON response of an encodable value.
    static func json<T: Encodable>(_ status: Int, _ value: T) -> Response {
        do {
            return Response(status: status, body: try JSONCoding.encode(value, pretty: false))
        } catch {
            return Response(
                status: 500,
                body: Array(#"{"error":{"code":"internal","message":"the answer could not be encoded"}}"#.utf8))
        }
    }

    /// An error response.
    static func error(_ error: APIError) -> Response {
        json(error.status, error.body)
    }

    /// The bytes written to FastCGI stdout: CGI headers, a blank line, the body.
    func encoded() -> [UInt8] {
        var head =
            "Status: \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\n"
        for (name, value) in extraHeaders.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Internal Server Error"
        }
    }
}
