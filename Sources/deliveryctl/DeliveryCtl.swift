import ArgumentParser
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

@main
struct DeliveryCtl: ParsableCommand {
    /// `deliveryctl --site NAME status` as well as `deliveryctl status --site NAME`: the options
    /// that pick the site may come before the subcommand.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var leading: [String] = []
        while arguments.count >= 2, ["--site", "--config"].contains(arguments[0]) {
            leading += arguments.prefix(2)
            arguments.removeFirst(2)
        }
        // `admin` has subcommands of its own: the options go after them.
        let depth = arguments.first == "admin" && arguments.count >= 2 ? 2 : 1
        if arguments.count >= depth, !leading.isEmpty {
            arguments = Array(arguments.prefix(depth)) + leading + arguments.dropFirst(depth)
        } else {
            arguments = leading + arguments
        }
        main(arguments)
    }

    static let configuration = CommandConfiguration(
        commandName: "deliveryctl",
        abstract: "Safe code delivery for a live Moodle site.",
        discussion: """
            The four steps: secure, switch, update, restore; or run-all. cancel goes back to the
            pre-delivery state; rollback serves a copy that matches the database at once.
            """,
        subcommands: [
            Init.self, Status.self, Secure.self, Switch.self, Update.self, Plan.self, Restore.self, RunAll.self,
            Cancel.self, Rollback.self, Recover.self, Log.self, Admin.self,
        ]
    )
}

struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "The helper's site configuration (default: the --site's, else $DELIVERY_CONFIG, else the server's only site)."
    )
    var config: String?

    @Option(
        name: .long,
        help:
            "The site to act on, by the name scripts/install gave it ($DELIVERY_ETC or /etc/moodle-delivery, sites/<name>/)."
    )
    var site: String?

    @Flag(name: .long, help: "Print one JSON document for machines instead of text.")
    var json = false

    /// The folder of the sites' configurations: $DELIVERY_ETC (as for scripts/install), else
    /// /etc/moodle-delivery.
    var base: String { System.environmentValue("DELIVERY_ETC").flatMap { $0.isEmpty ? nil : $0 } ?? SiteDirectory.base }

    /// The configuration to act on (`SiteDirectory.resolve`).
    func configurationPath() throws(DeliveryError) -> String {
        try SiteDirectory.resolve(
            config: config, site: site, environment: System.environmentValue("DELIVERY_CONFIG"), base: base)
    }

    /// Where `init` writes a new site's configuration: `--config`, else the `--site`'s folder, else
    /// `$DELIVERY_CONFIG`, else `/etc/moodle-delivery/site.json` on a server without sites.
    func newConfigurationPath() throws(DeliveryError) -> String {
        if let config { return config }
        if let site { return try SiteDirectory.configurationPath(ofSite: site, base: base) }
        if let environment = System.environmentValue("DELIVERY_CONFIG"), !environment.isEmpty { return environment }
        let sites = SiteDirectory.sites(base: base)
        guard sites.isEmpty else {
            throw DeliveryError(
                .configuration,
                "this server has sites already (\(sites.map(\.name).joined(separator: ", "))): name the new one with --site"
            )
        }
        return "\(base)/site.json"
    }

    /// Runs a command's body with the site's engine; any refusal or failure is reported as one
    /// line (or JSON) and ends the process with its exit status.
    func withEngine(_ body: (DeliveryEngine) throws(DeliveryError) -> Void) {
        do throws(DeliveryError) {
            try body(try DeliveryEngine(configuration: try SiteConfiguration.load(from: try configurationPath())))
        } catch {
            Failure(error: error, json: json).report()
        }
    }

    /// The person at the keyboard: the sudo caller when there is one.
    var actor: Actor {
        let name = System.environmentValue("SUDO_USER") ?? UserIdentity.current.name
        return Actor(
            name: name, source: "cli", peerUid: System.realUserIdentifier, claimed: name != UserIdentity.current.name)
    }
}

/// A refusal or failure, printed as one line (or JSON) with a meaningful exit status.
struct Failure: Error, CustomStringConvertible {
    let error: DeliveryError
    let json: Bool
    var description: String { error.message }

    /// 2 for refusals (nothing changed), 1 for failures.
    var exitCode: Int32 {
        switch error.code {
        case .wrongState, .lockHeld, .staleLock, .badPath, .copyMissing, .badRequest, .notMoodle, .configuration,
            .privileges, .preflightFailed, .confirmationRequired, .notUpdatable, .secondFactorRequired,
            .secondFactorRefused, .secondFactorLocked, .rateLimited:
            2
        default: 1
        }
    }

    func report() -> Never {
        if json {
            let document = ErrorDocument(ok: false, error: .init(code: error.code.rawValue, message: error.message))
            printJSON(document)
        } else {
            FileOutput.standardError("deliveryctl: \(error.message)\n")
        }
        exit(exitCode)
    }
}

struct ErrorDocument: Encodable {
    struct Body: Encodable {
        let code: String
        let message: String
    }
    let ok: Bool
    let error: Body
}

struct OutcomeDocument: Encodable {
    let ok: Bool
    let outcome: OperationOutcome
}

func printJSON<T: Encodable>(_ value: T) {
    if let bytes = try? JSONCoding.encode(value) {
        FileOutput.standardOutput(String(decoding: bytes, as: UTF8.self))
    }
}

/// All of deliveryctl's output: children's lines, Moodle's messages and the audit log's text pass
/// through `terminalSafe` on their way to root's terminal.
enum FileOutput {
    static func standardOutput(_ text: String) {
        System.writeStandard(terminalSafe(text))
    }
    static func standardError(_ text: String) {
        System.writeStandard(terminalSafe(text), toError: true)
    }
}

extension System {
    static func environmentValue(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}

/// Prints progress for people: step headers, log lines, a percentage every 10 %.
final class ProgressPrinter: @unchecked Sendable {
    private var lastTenth: [Operation: Int] = [:]
    private let quiet: Bool
    /// A step's header waits for its first line: a refusal then prints only its one error line.
    private var pendingHeader: Operation?
    private var printedHeader = false

    init(quiet: Bool) { self.quiet = quiet }

    private func flushHeader() {
        if let operation = pendingHeader {
            FileOutput.standardOutput("==> \(Self.title(operation))\n")
            pendingHeader = nil
            printedHeader = true
        }
    }

    func handle(_ event: ProgressEvent) {
        if quiet { return }
        switch event {
        case .stepStarted(let operation):
            pendingHeader = operation
            printedHeader = false
        case .line(let line):
            flushHeader()
            FileOutput.standardOutput("    \(line)\n")
        case .fraction(let operation, let value):
            let tenth = Int(value * 10)
            if tenth > (lastTenth[operation] ?? 0) && tenth < 10 {
                flushHeader()
                lastTenth[operation] = tenth
                FileOutput.standardOutput("    … \(tenth * 10) %\n")
            }
        case .stepFinished(let operation, let succeeded, let message):
            if succeeded {
                flushHeader()
                FileOutput.standardOutput("ok: \(Self.title(operation)): \(message)\n")
            } else if printedHeader {
                FileOutput.standardOutput("FAILED: \(Self.title(operation))\n")
            }
            pendingHeader = nil
        }
    }

    static func title(_ operation: Operation) -> String {
        switch operation {
        case .secure: "1. Secure"
        case .switchToDelivery: "2. Switch to delivery"
        case .update: "3. Update sources"
        case .restore: "4. Restore production"
        case .runAll: "Run all"
        case .cancel: "Cancel"
        case .rollback: "Emergency rollback"
        case .recover: "Recover"
        }
    }
}

/// Runs one operation for a subcommand.
func runOperation(_ options: GlobalOptions, _ request: (Actor) -> OperationRequest) throws {
    let printer = ProgressPrinter(quiet: options.json)
    let crashSeam = CrashSeam.fromEnvironment()
    options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
        let outcome = try engine.perform(request(options.actor)) { event in
            printer.handle(event)
            crashSeam.observe(event)
        }
        if options.json { printJSON(OutcomeDocument(ok: true, outcome: outcome)) }
    }
}

extension DeliveryCtl {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adopt an existing Moodle install into the release layout and write the helper's configuration.")

        @Option(name: .long, help: "The Moodle directory the web server serves today.")
        var moodle: String
        @Option(name: .long, help: "The new site root (default: <moodle>-delivery beside it).")
        var siteRoot: String?
        @Option(name: .long, help: "The state directory (default: /var/lib/moodle-delivery/<name>).")
        var stateDir: String?
        @Option(name: .long, help: "The web server's user; PHP CLI scripts run as it.")
        var webUser = "www-data"
        @Option(name: .long, help: "The code owner; VCS commands run as it (default: the tree's owner).")
        var codeOwner: String?
        @Option(name: .long, help: "The PHP CLI binary.")
        var php = "/usr/bin/php"
        @Option(name: .long, help: "git: the branch to follow (default: the branch checked out).")
        var branch: String?
        @Option(name: .long, help: "git: the remote (default: the branch's remote).")
        var remote: String?
        @Option(
            name: .long,
            help:
                "A PHP-FPM pool's socket serving the site, for OPcache invalidation (repeat; default: /run/php/php*-fpm.sock)."
        )
        var phpFpmSocket: [String] = []
        @Flag(
            name: .long,
            help:
                "Add $CFG->alternative_component_cache to config.php (kept as it was in the state directory): each tree gets its own prebuilt component cache, so no request rebuilds it after a switch."
        )
        var componentCache = false
        @Flag(
            name: .long,
            help:
                "Take no database snapshot before Moodle's upgrade (a rollback after an upgrade then cannot run the older code)."
        )
        var noDatabaseSnapshot = false
        @Option(
            name: .long,
            help:
                "After restore: automatic (roll back when the health check fails), ask (maintenance, you choose) or off."
        )
        var healthCheck: String = "automatic"
        @Option(name: .long, help: "The page the health check asks for (default: <wwwroot>/login/index.php).")
        var healthCheckUrl: String?
        @Option(
            name: .long,
            help:
                "A file the site keeps as its own besides config.php, relative to the Moodle folder (repeat; e.g. .htaccess): its local changes survive every update and cancel."
        )
        var localFile: [String] = []
        @Option(
            name: .long,
            help:
                "nginx (default) or apache: with Apache the helper rewrites a Define file and reloads Apache gracefully at each switch."
        )
        var webServer = "nginx"
        @Option(
            name: .long,
            help:
                "Apache: the file holding the served tree, which Apache includes (default: apache-tree.conf in the state directory)."
        )
        var apacheDefineFile: String?
        @Option(
            name: .long,
            help:
                "Apache: a command that reloads it after each switch, words separated by spaces, program first and absolute (repeat; default: apachectl graceful)."
        )
        var apacheReload: [String] = []
        @OptionGroup var options: GlobalOptions

        func run() throws {
            guard let mode = HealthCheckMode(rawValue: healthCheck) else {
                throw ValidationError("--health-check must be automatic, ask or off")
            }
            let server: WebServerKindRequest
            switch webServer {
            case "nginx":
                guard apacheDefineFile == nil, apacheReload.isEmpty else {
                    throw ValidationError("--apache-define-file and --apache-reload go with --web-server apache")
                }
                server = .nginx
            case "apache":
                let reload = apacheReload.map { $0.split(separator: " ").map(String.init) }
                server = .apache(defineFile: apacheDefineFile, reloadCommands: reload.isEmpty ? nil : reload)
            default:
                throw ValidationError("--web-server must be nginx or apache, not '\(webServer)'")
            }
            do {
                let configurationPath = try options.newConfigurationPath()
                let result = try SiteAdoption.adopt(
                    AdoptionRequest(
                        moodleDirectory: moodle, siteRoot: siteRoot, stateDirectory: stateDir,
                        configurationPath: configurationPath, webUser: webUser, codeOwner: codeOwner, php: php,
                        branch: branch, remote: remote, phpFpmSockets: phpFpmSocket.isEmpty ? nil : phpFpmSocket,
                        componentCache: componentCache, databaseSnapshots: !noDatabaseSnapshot,
                        healthCheck: HealthCheckSettings(mode: mode, url: healthCheckUrl), localFiles: localFile,
                        webServer: server))
                if options.json {
                    printJSON(result.configuration)
                } else {
                    FileOutput.standardOutput(
                        "Adopted \(moodle): site root \(result.configuration.siteRoot), configuration \(configurationPath).\n"
                            + (result.addedComponentCacheSetting
                                ? "Added to config.php (the file as it was is in the state directory):\n    \(SiteAdoption.componentCacheLine)\n"
                                : "")
                            + (result.changedLocalFiles.isEmpty
                                ? ""
                                : "Site-local files: \(result.changedLocalFiles.joined(separator: ", ")) \(result.changedLocalFiles.count == 1 ? "differs" : "differ") from the upstream's version; the site keeps its own through every update and cancel, and an update whose upstream changes one is refused before anything changes.\n")
                            + (result.upstreamProblem.map { problem in
                                "\nWARNING: the code owner cannot reach the upstream, so no delivery can update this site yet (switch and run-all refuse until it can):\n  \(problem.reason)\nWhat to do:\n"
                                    + problem.advice.map { "  - \($0)\n" }.joined()
                            } ?? "")
                            + "\nThe one web server change to make:\n\(result.webServerChange)\n"
                    )
                }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the delivery state, the served tree and the copies.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let status = try engine.status()
                if options.json {
                    printJSON(status)
                    return
                }
                var lines = [
                    "State:     \(status.phase.rawValue)",
                    "Serving:   \(status.served?.rawValue ?? "unknown (current points elsewhere)")",
                    "Site:      \(status.wwwroot) (\(status.siteRoot), \(status.vcs.rawValue)\(status.publicLayout ? ", public/ layout" : ""))",
                    "Production: \(status.productionRevision?.label ?? "not read yet")",
                ]
                for tree in [TreeName.backup, .security] {
                    let copy = status.copies[tree]
                    let text: String
                    if let copy, copy.complete {
                        text =
                            "\(copy.revision?.label ?? "?") copied \(copy.copiedAt.map { $0.formatted(.iso8601) } ?? "?")"
                            + (copy.refreshedPaths.isEmpty
                                ? "" : ", refreshed: \(copy.refreshedPaths.joined(separator: ", "))")
                    } else {
                        text = copy?.exists == true ? "incomplete" : "none"
                    }
                    lines.append("\(tree == .backup ? "Backup:   " : "Security: ") \(text)")
                }
                if let running = status.running {
                    lines.append(
                        "Running:   \(running.operation.rawValue) (step \(running.step.rawValue)) by \(running.actor.name) since \(running.startedAt.formatted(.iso8601))"
                    )
                }
                if let interrupted = status.interrupted {
                    lines.append(
                        "Interrupted: \(interrupted.operation.rawValue) by \(interrupted.actor.name) at \(interrupted.startedAt.formatted(.iso8601))"
                    )
                }
                if status.maintenanceEnabled { lines.append("Maintenance mode is ON (turned on by the delivery).") }
                if let snapshot = status.snapshot {
                    lines.append(
                        "Snapshot:  \(snapshot.database) at \(snapshot.takenAt.formatted(.iso8601)), \(snapshot.sizeBytes) bytes, \(snapshot.tableCount) tables, dumped in \(Int((snapshot.seconds * 1000).rounded())) ms (\(snapshot.file))"
                    )
                }
                if let health = status.lastHealthCheck {
                    lines.append(
                        "Health:    \(health.passed ? "passed" : "FAILED") at \(health.checkedAt.formatted(.iso8601))\(health.failures.isEmpty ? "" : ": " + health.failures.joined(separator: "; "))"
                    )
                }
                lines.append(
                    "Rollback:  \(status.rollback.kind.rawValue)\(status.rollback.needsConfirmation ? " (needs --restore-database)" : ""): \(status.rollback.explanation)"
                )
                lines.append(
                    "Component cache: \(status.componentCacheFile.map { "one per tree (\($0))" } ?? "Moodle's own, rebuilt after each switch (see init --component-cache)")"
                )
                lines.append("Allowed:   \(status.allowed.map(\.rawValue).joined(separator: ", "))")
                FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
            }
        }
    }

    struct Secure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 1: mirror production into the backup copy (and the security copy with --security).")
        @Flag(name: .long, help: "Also refresh the security copy.")
        var security = false
        @Option(name: .long, help: "Refresh only this component path (e.g. mod) of the complete copies.")
        var path: String?
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.secure, actor: $0, securePath: path, securityCopy: security) }
        }
    }

    struct Switch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 2: serve the site from the backup copy (delivery mode).")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.switchToDelivery, actor: $0) }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 3: update the production tree (or one path) from the configured upstream.")
        @Option(name: .long, help: "Update only this path.")
        var path: String?
        @Option(name: .long, help: "A comment recorded with the delivery.")
        var comment: String?
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.update, actor: $0, updatePath: path, comment: comment) }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Check production before it is served again: files changed, PHP syntax, conflict markers, versions.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            var blocking = false
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let report = try engine.plan()
                if options.json {
                    printJSON(report)
                } else {
                    var lines = [
                        "Compared with the backup copy: \(report.added.count) added, \(report.changed.count) changed, \(report.removed.count) removed."
                    ]
                    for change in report.versionChanges {
                        lines.append(
                            "Version of \(change.component.isEmpty ? "core" : change.component): \(change.before ?? "none") → \(change.after ?? "none")\(change.backwards ? "  BACKWARDS: Moodle will refuse it" : "")"
                        )
                    }
                    for error in report.lintErrors {
                        lines.append(
                            "Syntax error: \(error.file)\(error.line.map { " line \($0)" } ?? ""): \(error.message)")
                    }
                    for (file, line) in report.conflictMarkers.sorted(by: { $0.key < $1.key }) {
                        lines.append("Conflict marker: \(file) line \(line)")
                    }
                    for modification in report.localModifications {
                        lines.append("Local modification: \(modification)")
                    }
                    for file in report.missingFiles.prefix(20) { lines.append("Missing (tracked): \(file)") }
                    for file in report.untrackedFiles.prefix(20) { lines.append("Untracked: \(file)") }
                    for problem in report.inconsistentComponents {
                        lines.append(
                            "\(problem.blocking ? "Inconsistent" : "Check"): \(problem.component.isEmpty ? "core" : problem.component): \(problem.reason)"
                        )
                    }
                    if let upgrade = report.upgrade {
                        lines.append(
                            upgrade.pending
                                ? "Upgrade: pending\(upgrade.maintenanceRequired ? ", Moodle wants maintenance mode" : "")\(upgrade.snapshot ? "; a database snapshot is taken first, in maintenance mode" : "")."
                                : "Upgrade: none pending.")
                    }
                    if report.maintenanceModeOn == true { lines.append("Maintenance mode is on now.") }
                    if let space = report.snapshotSpace {
                        lines.append(
                            "Snapshot space: \(space.availableBytes / 1_000_000) MB free in \(space.directory); Moodle's tables take \(space.databaseBytes / 1_000_000) MB\(space.enough ? "" : " — NOT ENOUGH")."
                        )
                    }
                    if let php = report.phpVersion {
                        lines.append(
                            "PHP: \(php.current)\(php.required.map { ", the new code needs \($0)+" } ?? "")\(php.satisfied ? "" : " — TOO OLD")."
                        )
                    }
                    for warning in report.warnings { lines.append("Warning: \(warning)") }
                    lines.append(
                        report.blocking
                            ? "Restore would be refused: \(report.blockingSummary)." : "Nothing blocks the restore.")
                    FileOutput.standardOutput(lines.joined(separator: "\n") + "\n")
                }
                blocking = report.blocking
            }
            if blocking { throw ExitCode(3) }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Step 4: serve production again, run Moodle's upgrade (maintenance only when needed), purge caches.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.restore, actor: $0) }
        }
    }

    struct RunAll: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-all", abstract: "Steps 1 to 4, stopping at the first failure.")
        @Flag(name: .long, help: "Also refresh the security copy.")
        var security = false
        @Option(name: .long, help: "Secure only this component path.")
        var securePath: String?
        @Option(name: .long, help: "Update only this path.")
        var path: String?
        @Option(name: .long, help: "A comment recorded with the delivery.")
        var comment: String?
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) {
                OperationRequest(
                    .runAll, actor: $0, securePath: securePath, updatePath: path, securityCopy: security,
                    comment: comment)
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Go back to the pre-delivery state: production at its recorded revision, served.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.cancel, actor: $0) }
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Emergency: serve a copy whose code matches the database (security, else backup) at once, from any state.",
            discussion: """
                When Moodle's upgrade changed the database, the rollback also restores the database \
                snapshot taken just before it, under maintenance mode. Inside the delivery's own \
                window that needs nothing more; once the site has been open to users, what they \
                wrote since the snapshot would be lost, so the rollback is refused until confirmed \
                with --restore-database. 'deliveryctl status' says which kind of rollback happens.
                """)
        @Flag(name: .long, help: "Confirm that the database snapshot may be restored although the site was open since.")
        var restoreDatabase = false
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) {
                OperationRequest(.rollback, actor: $0, confirmDatabaseRestore: restoreDatabase)
            }
        }
    }

    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an operation whose process died, clean its leftovers and release the site.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options) { OperationRequest(.recover, actor: $0) }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the audit log, newest first.")
        @Option(name: .long, help: "How many records.")
        var limit = 20
        @OptionGroup var options: GlobalOptions

        func run() throws {
            options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                let records = try engine.history(limit: limit)
                if options.json {
                    printJSON(records)
                    return
                }
                for record in records {
                    var line =
                        "\(record.time.formatted(.iso8601))  \(record.actor.name) (\(record.actor.source))  \(record.operation.rawValue)  \(record.result)"
                    if let path = record.securePath ?? record.updatePath { line += "  path=\(path)" }
                    if let before = record.revisionBefore, let after = record.revisionAfter, before != after {
                        line += "  \(before.label) → \(after.label)"
                    }
                    if let comment = record.comment { line += "  \"\(comment)\"" }
                    line += "  \(format(record.durationSeconds)) s\n    \(record.message)\n"
                    FileOutput.standardOutput(line)
                }
            }
        }

        func format(_ value: Double) -> String {
            let tenths = Int((value * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
    }
}
