import CFastCGI
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// libfcgi, as the helper uses it: its initialisation and one request slot (`FastCGIRequest`).
/// Every system call goes through DeliveryCore's `System`.
enum FastCGI {
    /// Initialises libfcgi once per process.
    static func initialize() throws(SystemCallError) {
        let result = FCGX_Init()
        guard result == 0 else { throw SystemCallError(errno: result, call: "FCGX_Init") }
    }
}

/// One FastCGI request slot of a worker thread, over libfcgi's `FCGX_Request`.
///
/// The worker accepts connections itself, so that it can check the peer, set the read deadline
/// and close-on-exec before libfcgi reads a byte, and hands each one to `FCGX_Accept_r`, which
/// then only parses the request. libfcgi accepts on its own after a protocol error (to "try
/// again"); that accept would bypass those checks, so the slot's listening descriptor is a decoy:
/// an unbound socket on which accept(2) fails at once with EINVAL.
final class FastCGIRequest {
    private let request: UnsafeMutablePointer<FCGX_Request>

    /// Prepares a request slot; `decoyFd` is the descriptor libfcgi would accept on.
    init(decoyFd: Int32) {
        request = .allocate(capacity: 1)
        FCGX_InitRequest(request, decoyFd, 0)
    }

    deinit {
        FCGX_Free(request, request.pointee.ipcFd >= 0 ? 1 : 0)
        request.deallocate()
    }

    /// Parses one request from an accepted connection.
    /// - Returns: false when the connection was closed or malformed (libfcgi then closed it).
    func parse(connection fd: Int32) -> Bool {
        request.pointee.ipcFd = fd
        // Keeps FCGX_Accept_r's opening FCGX_Finish_r from closing the fresh connection.
        request.pointee.keepConnection = 1
        return FCGX_Accept_r(request) == 0
    }

    /// A request parameter, or nil.
    func parameter(_ name: String) -> String? {
        guard let envp = request.pointee.envp, let value = FCGX_GetParam(name, envp) else { return nil }
        return String(cString: value)
    }

    /// The number of parameters and their total size in bytes.
    func parameterTotals() -> (count: Int, bytes: Int) {
        guard let envp = request.pointee.envp else { return (0, 0) }
        var count = 0
        var bytes = 0
        while let entry = envp[count] {
            bytes += strlen(entry)
            count += 1
        }
        return (count, bytes)
    }

    /// Reads up to `limit` bytes of the request body.
    /// - Returns: the bytes, and whether the stream ended cleanly (false on a read error, such
    ///   as the read deadline).
    func readBody(limit: Int) -> (bytes: [UInt8], clean: Bool) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while result.count < limit {
            let wanted = Int32(min(buffer.count, limit - result.count))
            let count = buffer.withUnsafeMutableBytes {
                FCGX_GetStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), wanted, request.pointee.in)
            }
            if count > 0 { result += buffer[0..<Int(count)] }
            if count < wanted { break }
        }
        return (result, FCGX_GetError(request.pointee.in) == 0)
    }

    /// From now on the response goes to `fd` (the connection), while the request was read from
    /// the memory file the gate filled: libfcgi writes to the request's `ipcFd` when it flushes.
    /// The memory file is closed.
    func answer(on fd: Int32) {
        let input = request.pointee.ipcFd
        request.pointee.ipcFd = fd
        if input >= 0 && input != fd { System.close(input) }
    }

    /// Writes response bytes with `FCGX_PutStr`.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, 1 << 20)
            let written = bytes.withUnsafeBytes {
                FCGX_PutStr(
                    $0.baseAddress!.assumingMemoryBound(to: CChar.self) + done, Int32(chunk), request.pointee.out)
            }
            if written < 0 { return false }
            done += Int(written)
        }
        return true
    }

    /// Ends the request: flushes the output and closes the connection (a peer's request to keep
    /// it open is not honoured: one request per connection bounds what a worker can be held for).
    func finish() {
        FCGX_Finish_r(request)
        if request.pointee.ipcFd >= 0 { FCGX_Free(request, 1) }
    }

    /// Drops the connection without a response.
    func abandon() {
        FCGX_Free(request, request.pointee.ipcFd >= 0 ? 1 : 0)
    }
}
