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
        version: ProductVersion.number,
        subcommands: [
            Init.self, Status.self, Secure.self, Switch.self, Update.self, Plan.self, Restore.self, RunAll.self,
            Cancel.self, Rollback.self, Recover.self, Rehearse.self, Log.self, Check.self, CheckUpstream.self,
            Report.self,
            Schedule.self, Follow.self, Farm.self,
            Admin.self,
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
            let path = try configurationPath()
            try body(
                try DeliveryEngine(
                    configuration: try SiteConfiguration.load(from: path),
                    siteName: site ?? SiteDirectory.name(ofConfiguration: path)))
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
            .secondFactorRefused, .secondFactorLocked, .rateLimited, .scheduleExists, .scheduleStale, .scheduleSkipped,
            .notFound, .cannotRehearse, .blockedByRehearsal, .farmUnreachable:
            2
        default: 1
        }
    }

    func report() -> Never {
        if json {
            let document = ErrorDocument(
                ok: false, error: .init(code: error.code.rawValue, message: error.message, notices: error.said))
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
        let notices: [Notice]
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
