import Foundation
import Testing

@testable import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTPS "site" of its own: a CA made here, a certificate it signed for `moodle.test`, and
/// `openssl s_server -WWW` serving a login page from a folder, on a free port of 127.0.0.1.
final class TLSFixture {
    let directory = TemporaryDirectory()
    let port: Int
    let server: Process
    var path: String { directory.path }

    init() throws {
        let root = directory.path
        let script = """
            set -e
            cd '\(root)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fixture-ca -keyout ca.key -out ca.pem 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=moodle.test -keyout site.key -out site.csr 2>/dev/null
            printf 'subjectAltName=DNS:moodle.test\\n' > ext
            openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out site.pem 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other -keyout other.key -out other.pem 2>/dev/null
            mkdir -p www/login
            printf '<form id="login" action="x"><input name="logintoken"></form>' > www/login/index.php
            chmod -R a+rX .
            """
        let made = try sh("/bin/bash", ["-c", script])
        guard made.succeeded else { throw FixtureError("openssl failed: \(made.combinedOutput)") }
        let probe = try sh(
            "/usr/bin/php",
            [
                "-r",
                "$s = stream_socket_server('tcp://127.0.0.1:0'); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ':') + 1);",
            ])
        port = Int(probe.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = [
            "s_server", "-quiet", "-accept", "127.0.0.1:\(port)", "-cert", "\(root)/site.pem", "-key",
            "\(root)/site.key",
            "-WWW",
        ]
        server.currentDirectoryURL = URL(fileURLWithPath: "\(root)/www")
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        for _ in 0..<50 {
            let connected = try sh("/usr/bin/php", ["-r", "exit(@fsockopen('127.0.0.1', \(port)) ? 0 : 1);"])
            if connected.succeeded { break }
            usleep(100_000)
        }
    }

    deinit {
        // SIGKILL: a child of Foundation's Process inherits the test runner's blocked signals.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
    }

    /// The pin of a certificate's public key, as curl takes it.
    func pin(_ certificate: String) throws -> String {
        let result = try sh(
            "/bin/bash",
            [
                "-c",
                "openssl x509 -pubkey -noout -in '\(path)/\(certificate)' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            ])
        return "sha256//" + result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite("The health check over HTTPS: the site's own CA, a pinned key, the host resolved to this server")
struct HealthCheckTLSTests {
    func check(_ fixture: TLSFixture, _ settings: HealthCheckSettings) -> (summary: String, failure: String?) {
        let answer = HealthChecker.fetchLoginPage(
            url: "https://moodle.test:\(fixture.port)/login/index.php", settings: settings, webUser: .current,
            recorder: CommandRecorder(onLine: { _ in }))
        return (answer.summary?.english ?? "", answer.failure?.english)
    }

    @Test(
        "a private CA is refused by the system store with a clear reason, accepted with caFile; pinning",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func privateCertificateAuthority() throws {
        let fixture = try TLSFixture()
        let local = HealthCheckSettings(resolveTo: "127.0.0.1")
        let untrusted = check(fixture, local)
        #expect(untrusted.failure?.contains("the TLS certificate is not trusted") == true, "\(untrusted)")
        #expect(untrusted.failure?.contains("healthCheck.caFile") == true)
        #expect(
            HealthChecker.fetchLoginPage(
                url: "https://moodle.test:\(fixture.port)/login/index.php", settings: local, webUser: .current,
                recorder: CommandRecorder(onLine: { _ in })
            ).failure?.code == NoticeCode.healthTLSUntrusted.rawValue)

        let trusted = check(fixture, HealthCheckSettings(caFile: "\(fixture.path)/ca.pem", resolveTo: "127.0.0.1"))
        #expect(trusted.failure == nil, "\(trusted)")
        #expect(trusted.summary.contains("HTTP 200, Moodle's login form"))

        let pinned = check(
            fixture, HealthCheckSettings(pinnedPublicKey: try fixture.pin("site.pem"), resolveTo: "127.0.0.1"))
        #expect(pinned.failure == nil, "\(pinned)")
        let wrongPin = check(
            fixture, HealthCheckSettings(pinnedPublicKey: try fixture.pin("other.pem"), resolveTo: "127.0.0.1"))
        #expect(wrongPin.failure?.contains("is not the one pinned") == true, "\(wrongPin)")

        // Without resolveTo, moodle.test is not found at all: the name is what resolveTo answers.
        let unresolved = check(fixture, HealthCheckSettings(caFile: "\(fixture.path)/ca.pem"))
        #expect(unresolved.failure != nil)
    }

    @Test("settings curl would misread are refused")
    func validation() {
        for settings in [
            HealthCheckSettings(caFile: "relative.pem"), HealthCheckSettings(pinnedPublicKey: "md5//x"),
            HealthCheckSettings(resolveTo: "127.0.0.1 --insecure"), HealthCheckSettings(url: "ftp://x"),
        ] {
            #expect(throws: DeliveryError.self) { try settings.validate() }
        }
        #expect(throws: Never.self) {
            try HealthCheckSettings(caFile: "/etc/ssl/ca.pem", resolveTo: "::1").validate()
        }
        #expect(HealthChecker.hostAndPort("https://moodle.example.edu/moodle")! == ("moodle.example.edu", 443))
        #expect(HealthChecker.hostAndPort("http://moodle.test:8080/login")! == ("moodle.test", 8080))
        #expect(
            HealthChecker.tlsOptions(HealthCheckSettings(resolveTo: "::1"), url: "https://m.test/")
                == ["--resolve", "m.test:443:[::1]"])
    }
}
