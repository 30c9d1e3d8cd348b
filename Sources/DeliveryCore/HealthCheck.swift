#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What happens when the health check after "restore production" fails.
public enum HealthCheckMode: String, Sendable, Codable, CaseIterable {
    /// Roll back at once: the older code, and the database snapshot when the upgrade changed it.
    case automatic
    /// Put the site in maintenance mode and let the administrator choose (rollback, or restore
    /// again to check again).
    case ask
    /// No health check.
    case off
}

/// The health check settings of a site (`healthCheck` in the configuration).
public struct HealthCheckSettings: Sendable, Codable, Equatable {
    /// What a failure leads to (default automatic).
    public var mode: HealthCheckMode
    /// The page to ask for; default the login page under `$CFG->wwwroot`. It must answer 200
    /// with Moodle's login form (a site that sends every login to single sign-on names another page).
    public var url: String?
    /// Seconds the page may take.
    public var timeoutSeconds: Double
    /// Run `admin/cli/checks.php` and fail on critical results the site did not have before.
    public var moodleChecks: Bool
    /// HTTPS: the certificate authorities to trust instead of the system's store (a site behind a
    /// private CA), a PEM file the web user can read.
    public var caFile: String?
    /// HTTPS: the server's public key must be this one (`sha256//BASE64`, as curl's
    /// `--pinnedpubkey` takes it): a self-signed certificate is accepted by its key, nothing else.
    public var pinnedPublicKey: String?
    /// The address the site's host name is resolved to for the check (`127.0.0.1`: this server,
    /// whatever the DNS says, as on a web node behind a balancer); the host name, the TLS name
    /// check and the `Host` header stay the site's.
    public var resolveTo: String?

    /// Makes the settings.
    public init(
        mode: HealthCheckMode = .automatic, url: String? = nil, timeoutSeconds: Double = 30, moodleChecks: Bool = true,
        caFile: String? = nil, pinnedPublicKey: String? = nil, resolveTo: String? = nil
    ) {
        self.mode = mode
        self.url = url
        self.timeoutSeconds = timeoutSeconds
        self.moodleChecks = moodleChecks
        self.caFile = caFile
        self.pinnedPublicKey = pinnedPublicKey
        self.resolveTo = resolveTo
    }

    private enum CodingKeys: String, CodingKey {
        case mode, url, timeoutSeconds, moodleChecks, caFile, pinnedPublicKey, resolveTo
    }

    /// Refuses settings curl would misread.
    func validate() throws(DeliveryError) {
        if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw DeliveryError(.configuration, "healthCheck.url must be an http:// or https:// address")
        }
        if timeoutSeconds <= 0 {
            throw DeliveryError(.configuration, "healthCheck.timeoutSeconds must be positive")
        }
        if let caFile, !caFile.hasPrefix("/") || caFile.contains("\0") {
            throw DeliveryError(.configuration, "healthCheck.caFile must be an absolute path")
        }
        if let key = pinnedPublicKey,
            !key.hasPrefix("sha256//") || key.count < 20
                || !key.dropFirst(8).allSatisfy({ $0.isLetter || $0.isNumber || "+/=;".contains($0) })
        {
            throw DeliveryError(
                .configuration,
                "healthCheck.pinnedPublicKey must be sha256//BASE64 (openssl x509 -pubkey -noout -in CERT | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
            )
        }
        if let address = resolveTo, address.isEmpty || !address.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" })
        {
            throw DeliveryError(.configuration, "healthCheck.resolveTo must be an IP address, such as 127.0.0.1")
        }
    }

    /// Reads the settings; a member left out keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = HealthCheckSettings()
        mode = try container.decodeIfPresent(HealthCheckMode.self, forKey: .mode) ?? defaults.mode
        url = try container.decodeIfPresent(String.self, forKey: .url)
        timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? defaults.timeoutSeconds
        moodleChecks = try container.decodeIfPresent(Bool.self, forKey: .moodleChecks) ?? defaults.moodleChecks
        caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        pinnedPublicKey = try container.decodeIfPresent(String.self, forKey: .pinnedPublicKey)
        resolveTo = try container.decodeIfPresent(String.self, forKey: .resolveTo)
    }
}

/// What the health check found.
public struct HealthReport: Sendable, Codable, Equatable {
    /// True when every check passed.
    public var passed: Bool
    /// When it ran.
    public var checkedAt: Date
    /// One line per check: what was asked and what came back, in English.
    public var results: [String]
    /// The sentences of what failed (empty when it passed), in English.
    public var failures: [String]
    /// The results as notices (absent in a report recorded before they existed).
    public var resultNotices: [Notice]?
    /// The failures as notices (absent in a report recorded before they existed).
    public var failureNotices: [Notice]?

    /// A report of the checks' results and failures.
    init(checkedAt: Date, results: [Notice], failures: [Notice]) {
        self.passed = failures.isEmpty
        self.checkedAt = checkedAt
        self.results = results.map(\.english)
        self.failures = failures.map(\.english)
        self.resultNotices = results
        self.failureNotices = failures
    }

    /// Adds a check's result or failure.
    mutating func add(result: Notice? = nil, failure: Notice? = nil) {
        if let result {
            results.append(result.english)
            resultNotices = (resultNotices ?? []) + [result]
        }
        if let failure {
            failures.append(failure.english)
            failureNotices = (failureNotices ?? []) + [failure]
        }
        passed = failures.isEmpty
    }
}

/// Checks a site that was just switched back and upgraded: its code matches the database
/// (`upgrade.php --is-pending`), `admin/cli/checks.php` reports no new critical result, and the
/// login page answers with a Moodle page over HTTP.
struct HealthChecker {
    let settings: HealthCheckSettings
    let wwwroot: String
    let moodle: MoodleCLI
    let webUser: UserIdentity
    let recorder: CommandRecorder

    var url: String {
        settings.url ?? (wwwroot.hasSuffix("/") ? String(wwwroot.dropLast()) : wwwroot) + "/login/index.php"
    }

    /// The references of the critical results of Moodle's status checks in a tree (asked of the
    /// plugin's health script when the tree has it, else of `admin/cli/checks.php`); nil when
    /// neither is there or answered (the check is then left out).
    func criticalChecks(in tree: TreeName, viaHealthScript: Bool = true) -> Set<String>? {
        guard settings.moodleChecks else { return nil }
        if viaHealthScript, let answer = moodle.askHealthScript(in: tree, pending: false, checks: true) {
            return answer.critical.map { Set($0) }
        }
        guard
            (try? System.lstatus(moodle.layout.cliScript("checks.php", in: tree)))?.kind == .regular,
            let result = try? moodle.run("checks.php", [], in: tree)
        else { return nil }
        guard let code = result.exitCode, code <= 2 else { return nil }
        return Self.criticalReferences(in: result.standardOutput)
    }

    /// Reads the table `checks.php` prints: the rows whose status is CRITICAL or ERROR.
    static func criticalReferences(in output: String) -> Set<String> {
        var references: Set<String> = []
        for rawLine in output.split(whereSeparator: \.isNewline) {
            let line = terminalSafe(String(rawLine))
            guard let bar = line.firstIndex(of: "|") else { continue }
            let status = String(line[..<bar]).trimmingWhitespace()
            guard status == "CRITICAL" || status == "ERROR" else { continue }
            let name = String(line[line.index(after: bar)...]).trimmingWhitespace()
            if let open = name.lastIndex(of: "("), let close = name.lastIndex(of: ")"), open < close {
                references.insert(String(name[name.index(after: open)..<close]))
            } else {
                references.insert(name)
            }
        }
        return references
    }

    /// Adds the login page's answer to a report.
    func addPageCheck(to report: HealthReport) -> HealthReport {
        var report = report
        let page = Self.fetchLoginPage(url: url, settings: settings, webUser: webUser, recorder: recorder)
        if let failure = page.failure {
            report.add(failure: failure)
        } else {
            report.add(result: page.summary)
        }
        report.checkedAt = Date()
        return report
    }

    /// The checks that need no web request (they run while maintenance mode is on): the code
    /// matches the database, and no new critical result in Moodle's checks.
    func runCommandLineChecks(tree: TreeName, baseline: Set<String>?) -> HealthReport {
        var results: [Notice] = []
        var failures: [Notice] = []
        let answers = commandLineAnswers(in: tree)
        switch answers.codeMatches {
        case true?: results.append(Notice(.healthCodeMatches))
        case false?: failures.append(Notice(.healthUpgradePending))
        case nil: failures.append(Notice(.healthUpgradeCheckFailed))
        }
        if let after = answers.critical {
            let new = after.subtracting(baseline ?? [])
            if new.isEmpty {
                results.append(
                    after.isEmpty
                        ? Notice(.healthChecksClean) : Notice(.healthChecksCleanKnown, ["known": .count(after.count)]))
            } else {
                failures.append(Notice(.healthChecksNew, ["references": .list(new.sorted())]))
            }
        }
        return HealthReport(checkedAt: Date(), results: results, failures: failures)
    }

    /// Whether the tree's code matches the database (nil: the question could not be asked) and
    /// the critical results of Moodle's checks (nil: left out). Each bootstrap of Moodle costs
    /// most of a second: the plugin's `cli/health.php` answers both in one when the tree has it;
    /// else Moodle's `upgrade.php --is-pending` and `checks.php` run at the same time.
    func commandLineAnswers(in tree: TreeName) -> (codeMatches: Bool?, critical: Set<String>?) {
        if let answer = moodle.askHealthScript(in: tree, pending: true, checks: settings.moodleChecks) {
            return (answer.upgrade.map { $0 == "none" }, answer.critical.map { Set($0) })
        }
        let moodle = self.moodle
        let recorder = self.recorder
        let (matches, critical) = concurrently(
            { () -> Bool? in
                do throws(DeliveryError) {
                    return try moodle.databaseMatch(in: tree, viaHealthScript: false) == true
                } catch {
                    recorder.onLine("Moodle's upgrade check did not run: \(error.message)")
                    return nil
                }
            }, { criticalChecks(in: tree, viaHealthScript: false) })
        return (matches, critical)
    }

    /// The first words of a page, tags left out, for the failure message.
    static func excerpt(_ body: Substring) -> String {
        var text = ""
        var inTag = false
        for character in body.prefix(4096) {
            if character == "<" {
                inTag = true
            } else if character == ">" {
                inTag = false
                text.append(" ")
            } else if !inTag {
                text.append(character.isNewline ? " " : character)
            }
        }
        let words = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return "\(words.prefix(160))\(words.count > 160 ? "…" : "")"
    }

    /// Asks for the login page as the web user, with curl: a summary, or why it failed.
    static func fetchLoginPage(
        url: String, settings: HealthCheckSettings, webUser: UserIdentity, recorder: CommandRecorder
    )
        -> (summary: Notice?, failure: Notice?)
    {
        guard let curl = ChildProcess.locate("curl") else {
            return (nil, Notice(.healthNoCurl))
        }
        let marker = "\n--moodle-delivery-status:"
        let command = Command(
            curl,
            [
                "--silent", "--show-error", "--max-time", String(Int(settings.timeoutSeconds.rounded(.up))),
                "--output", "-", "--write-out", "\(marker)%{http_code}",
            ] + Self.tlsOptions(settings, url: url) + ["--", url], user: webUser,
            timeoutSeconds: settings.timeoutSeconds + 10, outputLimit: 1 << 20)
        guard let result = try? recorder.run(command, echo: false) else {
            return (nil, Notice(.healthCurlFailed))
        }
        if let problem = Self.tlsProblem(result, settings: settings, url: url) { return (nil, problem) }
        guard let range = result.standardOutput.ranges(of: marker).last else {
            return (nil, Notice(.healthPageSilent, ["url": .text(url), "output": .text(MoodleCLI.lastLines(result))]))
        }
        let body = result.standardOutput[..<range.lowerBound]
        let status = String(result.standardOutput[range.upperBound...]).trimmingWhitespace()
        guard status == "200" else {
            return (
                nil,
                status == "000"
                    ? Notice(
                        .healthPageSilent,
                        ["url": .text(url), "output": .text(result.standardError.trimmingWhitespace())])
                    : Notice(
                        .healthPageStatus,
                        ["url": .text(url), "status": .text(status), "output": .text(Self.excerpt(body))])
            )
        }
        guard body.contains("logintoken") || body.contains("id=\"login\"") else {
            return (nil, Notice(.healthPageNotLogin, ["url": .text(url)]))
        }
        return (Notice(.healthPageAnswered, ["url": .text(url)]), nil)
    }

    /// curl's options for the CA file, the pinned key and the address the host resolves to.
    static func tlsOptions(_ settings: HealthCheckSettings, url: String) -> [String] {
        var options: [String] = []
        if let file = settings.caFile { options += ["--cacert", file] }
        if let key = settings.pinnedPublicKey {
            // The key alone is trusted: a self-signed certificate has no CA to check.
            options += ["--pinnedpubkey", key] + (settings.caFile == nil ? ["--insecure"] : [])
        }
        if let address = settings.resolveTo, let (host, port) = hostAndPort(url) {
            options += ["--resolve", "\(host):\(port):\(address.contains(":") ? "[\(address)]" : address)"]
        }
        return options
    }

    /// The host and port of an http(s) address.
    static func hostAndPort(_ url: String) -> (String, Int)? {
        let https = url.hasPrefix("https://")
        guard https || url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(https ? 8 : 7)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }.split(separator: "@").last ?? ""
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"),
            let port = Int(authority[authority.index(after: colon)...])
        {
            return (String(authority[..<colon]), port)
        }
        return authority.isEmpty ? nil : (String(authority), https ? 443 : 80)
    }

    /// A TLS failure of curl (its exit status) as one sentence that names it and what to set.
    static func tlsProblem(_ result: CommandResult, settings: HealthCheckSettings, url: String) -> Notice? {
        let reason =
            result.standardError.trimmingWhitespace().split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let values: [String: NoticeValue] = ["url": .text(url), "output": .text(reason)]
        switch result.exitCode {
        case 60, 51: return Notice(.healthTLSUntrusted, values)
        case 90: return Notice(.healthTLSPin, values)
        case 77: return Notice(.healthTLSCAFile, values.merging(["file": .text(settings.caFile ?? "")]) { $1 })
        case 35, 58, 59, 66, 80, 83, 91: return Notice(.healthTLSHandshake, values)
        default: return nil
        }
    }
}
