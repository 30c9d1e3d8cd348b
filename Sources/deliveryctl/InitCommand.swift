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

/// `deliveryctl init`: adopt a site.
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
}
