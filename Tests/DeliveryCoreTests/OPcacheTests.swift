import Foundation
import Synchronization
import Testing

@testable import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// Leaves a socket file nobody listens on, as a stopped PHP-FPM leaves in /run/php.
private func makeStaleSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    #expect(fd >= 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    #expect(bound == 0)
}

@Suite("PHP-FPM pools that are not running")
struct OPcacheTests {
    @Test("a configured pool that is stopped (stale socket file, or none) holds nothing to drop: the delivery goes on")
    func stoppedPool() throws {
        let sockets = TemporaryDirectory()
        let stale = "\(sockets.path)/php8.2-fpm.sock"
        try makeStaleSocket(at: stale)
        var attributes = stat()
        #expect(lstat(stale, &attributes) == 0 && attributes.st_mode & S_IFMT == S_IFSOCK, "a socket file is left")
        let site = try FixtureSite(phpFpmSockets: [stale, "\(sockets.path)/missing.sock"])
        let lines = LineCollector()
        let secured = try site.engine.perform(
            OperationRequest(.secure, actor: Actor(name: "tester", source: "cli")), progress: lines.receive)
        #expect(secured.phase == .secured)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        let restored = try site.engine.perform(
            OperationRequest(.restore, actor: Actor(name: "tester", source: "cli")), progress: lines.receive)
        #expect(restored.phase == .idle)
        #expect(site.servedVersion.contains("2024100800.00"))
        #expect(lines.all.contains("PHP-FPM \(stale): not running, no OPcache to update"))
        #expect(lines.all.contains("PHP-FPM \(sockets.path)/missing.sock: not running, no OPcache to update"))
    }
}

@Suite("The OPcache script's folder")
struct OPcacheFolderTests {
    @Test(
        "two updates at once (a secure's two copies) both make sure of the folder: neither fails because the other made it"
    )
    func concurrentPrepare() throws {
        let root = TemporaryDirectory()
        let file = "\(root.path)/a.php"
        for round in 0..<20 {
            let invalidator = OPcacheInvalidator(
                sockets: ["\(root.path)/missing.sock"], directory: "\(root.path)/opcache-\(round)", webUser: nil,
                recorder: CommandRecorder(onLine: { _ in }))
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do throws(DeliveryError) {
                    _ = try invalidator.invalidate([file])
                } catch {
                    failures.withLock { $0.append(error.message) }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty, "round \(round)")
        }
    }
}

/// Collects the log lines of an operation.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var all: [String] { lock.withLock { lines } }

    func receive(_ event: ProgressEvent) {
        if case .line(let line) = event { lock.withLock { lines.append(line) } }
    }
}
