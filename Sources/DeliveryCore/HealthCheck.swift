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

    /// Makes the settings.
    public init(
        mode: HealthCheckMode = .automatic, url: String? = nil, timeoutSeconds: Double = 30, moodleChecks: Bool = true
    ) {
        self.mode = mode
        self.url = url
        self.timeoutSeconds = timeoutSeconds
        self.moodleChecks = moodleChecks
    }

    private enum CodingKeys: String, CodingKey {
        case mode, url, timeoutSeconds, moodleChecks
    }

    /// Reads the settings; a member left out keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = HealthCheckSettings()
        mode = try container.decodeIfPresent(HealthCheckMode.self, forKey: .mode) ?? defaults.mode
        url = try container.decodeIfPresent(String.self, forKey: .url)
        timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? defaults.timeoutSeconds
        moodleChecks = try container.decodeIfPresent(Bool.self, forKey: .moodleChecks) ?? defaults.moodleChecks
    }
}

/// What the health check found.
public struct HealthReport: Sendable, Codable, Equatable {
    /// True when every check passed.
    public var passed: Bool
    /// When it ran.
    public var checkedAt: Date
    /// One line per check: what was asked and what came back.
    public var results: [String]
    /// The sentences of what failed (empty when it passed).
    public var failures: [String]
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

    /// The references of the critical results of `admin/cli/checks.php` in a tree; nil when the
    /// script is missing or did not answer (the check is then left out).
    func criticalChecks(in tree: TreeName) -> Set<String>? {
        guard settings.moodleChecks,
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
        let page = fetchLoginPage()
        if let failure = page.failure {
            report.failures.append(failure)
        } else {
            report.results.append(page.summary)
        }
        report.passed = report.failures.isEmpty
        report.checkedAt = Date()
        return report
    }

    /// The checks that need no web request (they run while maintenance mode is on): the code
    /// matches the database, and no new critical result in Moodle's checks.
    func runCommandLineChecks(tree: TreeName, baseline: Set<String>?) -> HealthReport {
        var results: [String] = []
        var failures: [String] = []
        do {
            if try moodle.codeMatchesDatabase(in: tree) {
                results.append("upgrade.php --is-pending: the code matches the database")
            } else {
                failures.append("Moodle still reports a pending upgrade or a code older than the database")
            }
        } catch {
            failures.append("Moodle's upgrade check did not run: \(error.message)")
        }
        if let after = criticalChecks(in: tree) {
            let new = after.subtracting(baseline ?? [])
            if new.isEmpty {
                results.append(
                    "checks.php: no new critical result\(after.isEmpty ? "" : " (\(after.count) the site already had)")"
                )
            } else {
                failures.append("Moodle's checks report new critical results: \(new.sorted().joined(separator: ", "))")
            }
        }
        return HealthReport(passed: failures.isEmpty, checkedAt: Date(), results: results, failures: failures)
    }

    /// The first words of a page, tags left out, for the failure message: ` ("…")`.
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
        guard !words.isEmpty else { return "" }
        return " (\"\(words.prefix(160))\(words.count > 160 ? "…" : "")\")"
    }

    private func fetchLoginPage() -> (summary: String, failure: String?) {
        guard let curl = ChildProcess.locate("curl") else {
            return ("", "curl is not installed (Debian package curl): the site's page was not checked")
        }
        let marker = "\n--moodle-delivery-status:"
        let command = Command(
            curl,
            [
                "--silent", "--show-error", "--max-time", String(Int(settings.timeoutSeconds.rounded(.up))),
                "--output", "-", "--write-out", "\(marker)%{http_code}", url,
            ], user: webUser, timeoutSeconds: settings.timeoutSeconds + 10, outputLimit: 1 << 20)
        guard let result = try? recorder.run(command, echo: false) else {
            return ("", "curl could not be started")
        }
        guard let range = result.standardOutput.ranges(of: marker).last else {
            return ("", "\(url) did not answer: \(MoodleCLI.lastLines(result))")
        }
        let body = result.standardOutput[..<range.lowerBound]
        let status = String(result.standardOutput[range.upperBound...]).trimmingWhitespace()
        guard status == "200" else {
            return (
                "",
                status == "000"
                    ? "\(url) did not answer: \(result.standardError.trimmingWhitespace())"
                    : "\(url) answered HTTP \(status), not the login page\(Self.excerpt(body))"
            )
        }
        guard body.contains("logintoken") || body.contains("id=\"login\"") else {
            return ("", "\(url) answered HTTP 200 but not with Moodle's login form")
        }
        return ("\(url): HTTP 200, Moodle's login form", nil)
    }
}
