import DeliveryCore
import Foundation
import Logging
import Testing

@testable import DeliveryServer

#if canImport(Glibc)
    import Glibc
#endif

/// Tests of the library itself: the signing scheme's test vector and the factory's refusals.
@Suite("DeliveryServer library")
struct InProcessTests {
    @Test("the signing test vector of docs/protocol.md")
    func signingVector() {
        let body = Array(#"{"operation":"secure","securePath":"mod/forum"}"#.utf8)
        let canonical = RequestSignature.canonicalString(
            method: "POST", path: "/operations", query: "", timestamp: "1764084704",
            nonce: "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f", userId: "2", userName: "Ada%20Lovelace", body: body)
        #expect(canonical.hasSuffix("\nb5ab292609d5568953e92c5357094dd2791da689ad56ab81b23f61e7bb7459f6"))
        let signature = RequestSignature.sign(canonical, key: Array("0123456789abcdef0123456789abcdef".utf8))
        #expect(signature == "8c4bf2a464705877ac84790776e767bc369fa42f9651b2b2329a789bcb350ddd")
    }

    @Test("user names are percent-decoded strictly")
    func percentDecoding() {
        #expect(Authenticator.percentDecoded("Ada%20Lovelace") == "Ada Lovelace")
        #expect(Authenticator.percentDecoded("%C3%89lodie") == "Élodie")
        #expect(Authenticator.percentDecoded("a b") == nil)
        #expect(Authenticator.percentDecoded("%zz") == nil)
        #expect(Authenticator.percentDecoded("%FF") == nil)
    }

    @Test("the nonce cache refuses a replay and refuses new nonces when full of live ones")
    func nonceCache() {
        let cache = NonceCache(capacity: 2)
        #expect(cache.insert("a", expires: 100, now: 10) == .inserted)
        #expect(cache.insert("a", expires: 100, now: 11) == .seen)
        #expect(cache.insert("b", expires: 20, now: 11) == .inserted)
        #expect(cache.insert("c", expires: 100, now: 12) == .full)
        // Once b's request left the window, its place is free.
        #expect(cache.insert("c", expires: 100, now: 30) == .inserted)
    }

    @Test("the factory refuses a key open to others, a short key, a path that is no socket, a live instance")
    func factoryRefusals() throws {
        let server = try TestServer()
        var configuration = try ServerConfiguration.load(from: server.configurationPath)
        let logger = Logger(label: "test")
        chmod("\(server.directory)/key", 0o644)
        #expect(throws: ServerStartError.self) { try DeliveryServer.make(configuration: configuration, logger: logger) }
        chmod("\(server.directory)/key", 0o600)
        try Data("short\n".utf8).write(to: URL(fileURLWithPath: "\(server.directory)/short"))
        chmod("\(server.directory)/short", 0o600)
        var short = configuration
        short.keyFile = "\(server.directory)/short"
        #expect(throws: ServerStartError.self) { try DeliveryServer.make(configuration: short, logger: logger) }
        configuration.socketPath = "\(server.directory)/site.json"
        #expect(throws: ServerStartError.self) { try DeliveryServer.make(configuration: configuration, logger: logger) }
        #expect(FileManager.default.fileExists(atPath: "\(server.directory)/site.json"))
        configuration.socketPath = server.socketPath
        let first = try DeliveryServer.make(configuration: configuration, logger: logger)
        defer { first.close() }
        var info = stat()
        #expect(lstat(server.socketPath, &info) == 0 && info.st_mode & 0o777 == 0o660)
        do {
            _ = try DeliveryServer.make(configuration: configuration, logger: logger)
            Issue.record("a second server started on a live socket")
        } catch {
            #expect(error.message.contains("another deliveryd answers"))
        }
    }

    @Test("the configuration's limits default when left out and are checked")
    func configurationDefaults() throws {
        let json = #"{"socketPath":"/run/d.sock","allowedUids":[33],"keyFile":"/k","siteConfiguration":"/s.json"}"#
        let configuration = try JSONCoding.decode(ServerConfiguration.self, from: Array(json.utf8))
        #expect(configuration.workers == 4)
        #expect(configuration.limits == ServerLimits())
        var bad = configuration
        bad.workers = 0
        #expect(throws: ServerStartError.self) { try bad.validate() }
        bad = configuration
        bad.socketPath = "relative.sock"
        #expect(throws: ServerStartError.self) { try bad.validate() }
    }
}
