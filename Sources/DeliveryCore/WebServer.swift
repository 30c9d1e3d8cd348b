#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Which web server serves the site, what it needs after `current` moves, and how the helper
/// checks that it follows.
///
/// nginx serves each tree by its real path (`$realpath_root`), resolved at every request: a
/// switch needs nothing from it. Apache has no such variable, and serving `current` through the
/// symlink keeps the tree switched away from in PHP's realpath cache and OPcache (measured: for
/// 80 s, or for ever with `opcache.validate_timestamps=0`). So for Apache the helper writes the
/// served tree's real path into a file the site's configuration includes (`Define`), and reloads
/// Apache gracefully (`apachectl graceful`): requests under way finish on the old tree, new ones
/// go to the new one.
public struct WebServerSettings: Sendable, Codable, Equatable {
    /// The web servers the helper knows how to switch.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case nginx, apache
    }

    /// nginx (the default) or apache.
    public var kind: Kind
    /// Apache: the file the helper rewrites at each switch; the site's Apache configuration
    /// includes it (`Include`), before its virtual host.
    public var defineFile: String?
    /// Apache: the end of the two variable names the file defines (`MOODLE_DELIVERY_ROOT_<suffix>`,
    /// the served web root's real path, and `MOODLE_DELIVERY_TREE_<suffix>`, the tree's name).
    public var defineSuffix: String?
    /// Apache: what reloads it after the file is written, as root (each an argument array;
    /// default: `apachectl graceful`).
    public var reloadCommands: [[String]]?
    /// The response header that names the tree that answered (default `X-Delivery-Tree`).
    public var treeHeader: String?
    /// The address the served-tree check asks (default: `wwwroot` + `/`).
    public var checkURL: String?
    /// How long the check waits for the new tree to answer (default 10 s).
    public var checkSeconds: Double?
    /// True when a switch that no answer confirms fails (and is undone). Default: true for
    /// Apache, whose switch depends on the reload; false for nginx, which follows the symlink by
    /// itself (the check then runs when the site names its tree, and is noted otherwise).
    public var requireTreeCheck: Bool?

    /// Makes the settings.
    public init(
        kind: Kind = .nginx, defineFile: String? = nil, defineSuffix: String? = nil,
        reloadCommands: [[String]]? = nil, treeHeader: String? = nil, checkURL: String? = nil,
        checkSeconds: Double? = nil, requireTreeCheck: Bool? = nil
    ) {
        self.kind = kind
        self.defineFile = defineFile
        self.defineSuffix = defineSuffix
        self.reloadCommands = reloadCommands
        self.treeHeader = treeHeader
        self.checkURL = checkURL
        self.checkSeconds = checkSeconds
        self.requireTreeCheck = requireTreeCheck
    }

    /// The header in force.
    public var header: String { treeHeader ?? "X-Delivery-Tree" }
    /// The wait in force.
    public var waitSeconds: Double { checkSeconds ?? 10 }
    /// Whether an unconfirmed switch fails.
    public var checkRequired: Bool { requireTreeCheck ?? (kind == .apache) }
    /// Apache's variable holding the served web root.
    public var rootVariable: String { "MOODLE_DELIVERY_ROOT_\(defineSuffix ?? "site")" }
    /// Apache's variable holding the served tree's name.
    public var treeVariable: String { "MOODLE_DELIVERY_TREE_\(defineSuffix ?? "site")" }

    /// Refuses settings the switch could not use.
    func validate() throws(DeliveryError) {
        if kind == .apache {
            guard let file = defineFile, file.hasPrefix("/") else {
                throw DeliveryError(.configuration, "webServer.defineFile must be an absolute path for Apache")
            }
            guard let suffix = defineSuffix, !suffix.isEmpty,
                suffix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            else {
                throw DeliveryError(.configuration, "webServer.defineSuffix must be letters, digits and _ only")
            }
            for command in reloadCommands ?? [] where command.first?.hasPrefix("/") != true {
                throw DeliveryError(
                    .configuration,
                    "webServer.reloadCommands: each command starts with an absolute program, not '\(command.first ?? "")'"
                )
            }
        }
        guard header.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw DeliveryError(.configuration, "webServer.treeHeader must be a header name, such as X-Delivery-Tree")
        }
    }

    /// The variable suffix for a site root: its path, letters and digits kept, the rest `_`.
    public static func suffix(forSiteRoot root: String) -> String {
        let mapped = String(root.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        let trimmed = mapped.drop { $0 == "_" }
        return trimmed.isEmpty ? "site" : String(trimmed)
    }

    /// Whether Apache can take a path in a `Define` line unquoted and unchanged.
    public static func isDefinable(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.contains(where: { $0.isWhitespace || "\"'$\\{}#%".contains($0) })
    }
}

/// What the web server needs after each switch, and the check that the new tree answers.
struct WebServerSwitch {
    let settings: WebServerSettings
    let layout: SiteLayout
    let wwwroot: String
    let healthSettings: HealthCheckSettings
    let webUser: UserIdentity?
    let recorder: CommandRecorder
    let note: (String) -> Void

    /// The real path of a tree's folder and of its web root (`SiteLayout.codeRoot`).
    static func realRoots(of tree: TreeName, in layout: SiteLayout) -> (tree: String, webRoot: String) {
        func real(_ path: String) -> String { (try? System.realPath(path)) ?? path }
        return (real(layout.path(of: tree)), real(layout.codeRoot(of: tree)))
    }

    func realRoots(of tree: TreeName) -> (tree: String, webRoot: String) { Self.realRoots(of: tree, in: layout) }

    /// Apache: writes the define file for a tree and reloads Apache. Nothing for nginx.
    func tellWebServer(_ tree: TreeName) throws(DeliveryError) {
        guard settings.kind == .apache, let file = settings.defineFile else { return }
        try Self.writeDefineFile(file, settings: settings, roots: realRoots(of: tree))
        for argv in settings.reloadCommands ?? Self.defaultReload() {
            guard let program = argv.first else { continue }
            let command = Command(program, Array(argv.dropFirst()), timeoutSeconds: 60, outputLimit: 16 * 1024)
            let result = try recorder.run(command, echo: false)
            guard result.exitCode == 0 else {
                throw DeliveryError(
                    .webServerStale,
                    "reloading Apache failed (\(command.displayLine): \(MoodleCLI.lastLines(result))); it still serves the tree it served"
                )
            }
        }
        note("Apache now serves \(realRoots(of: tree).webRoot) (\(file) rewritten, Apache reloaded gracefully).")
    }

    /// `apachectl graceful`, wherever Debian put it.
    static func defaultReload() -> [[String]] {
        let program = ChildProcess.locate("apachectl") ?? ChildProcess.locate("apache2ctl") ?? "/usr/sbin/apachectl"
        return [[program, "graceful"]]
    }

    /// Writes the file Apache includes: the served web root and the tree's name, atomically.
    static func writeDefineFile(
        _ file: String, settings: WebServerSettings, roots: (tree: String, webRoot: String)
    ) throws(DeliveryError) {
        guard WebServerSettings.isDefinable(roots.webRoot) else {
            throw DeliveryError(
                .configuration, "Apache cannot take the path \(roots.webRoot) in a Define line (spaces or quotes)")
        }
        let name = String(roots.tree.split(separator: "/").last ?? "")
        let text = """
            # Written by moodle-delivery at every switch: the tree the site serves. Do not edit it.
            Define \(settings.rootVariable) \(roots.webRoot)
            Define \(settings.treeVariable) \(name)

            """
        do {
            try System.writeFileAtomically(file, Array(text.utf8), mode: 0o644)
        } catch {
            throw DeliveryError.io("cannot write Apache's define file", error)
        }
    }

    /// Asks the site, as the web user, until an answer names the tree just switched to, or the
    /// wait is over. Throws when the check is required and no answer confirmed the switch.
    func checkServed(_ tree: TreeName) throws(DeliveryError) {
        let roots = realRoots(of: tree)
        let name = String(roots.tree.split(separator: "/").last ?? "")
        let url = settings.checkURL ?? (wwwroot.hasSuffix("/") ? wwwroot : wwwroot + "/")
        let started = System.monotonicSeconds()
        let deadline = started + settings.waitSeconds
        var last = ""
        while true {
            let answer = askTree(url: url)
            switch answer {
            case .named(let value) where value == name || value == roots.webRoot || value == roots.tree:
                let milliseconds = Int(((System.monotonicSeconds() - started) * 1000).rounded())
                note(
                    "\(url) answers from the \(tree.rawValue) tree (\(settings.header): \(value), \(milliseconds) ms).")
                return
            case .named(let value):
                last = "it still answers from \(value)"
            case .unnamed(let status):
                last = "its answer (HTTP \(status)) has no \(settings.header) header"
                guard settings.checkRequired else {
                    note("The switch is not confirmed: \(url) \(last) (README, \"Web servers\").")
                    return
                }
            case .noAnswer(let reason):
                last = "it did not answer (\(reason))"
                guard settings.checkRequired else {
                    note("The switch is not confirmed: \(url) \(last).")
                    return
                }
            }
            guard System.monotonicSeconds() < deadline else { break }
            System.sleep(seconds: 0.05)
        }
        throw DeliveryError(
            .webServerStale,
            "the web server did not follow the switch to the \(tree.rawValue) tree: \(last) \(Int(settings.waitSeconds)) s later (\(url))"
        )
    }

    enum TreeAnswer: Equatable {
        case named(String)
        case unnamed(String)
        case noAnswer(String)
    }

    /// One request with curl, as the web user: the tree header's value.
    func askTree(url: String) -> TreeAnswer {
        guard let curl = ChildProcess.locate("curl") else { return .noAnswer("curl is not installed") }
        let command = Command(
            curl,
            ["--silent", "--show-error", "--max-time", "5", "--output", "/dev/null", "--dump-header", "-"]
                + HealthChecker.tlsOptions(healthSettings, url: url) + ["--", url], user: webUser,
            timeoutSeconds: 10, outputLimit: 64 * 1024)
        guard let result = try? recorder.run(command, echo: false) else { return .noAnswer("curl could not start") }
        guard result.exitCode == 0 else {
            return .noAnswer(
                result.standardError.trimmingWhitespace().split(whereSeparator: \.isNewline).first.map(String.init)
                    ?? "curl exit \(result.exitCode.map(String.init) ?? "signal")")
        }
        return Self.treeAnswer(headers: result.standardOutput, header: settings.header)
    }

    /// Reads the status and the tree header out of curl's dump of the response headers.
    static func treeAnswer(headers: String, header: String) -> TreeAnswer {
        var status = "?"
        var value: String?
        let wanted = header.lowercased() + ":"
        for rawLine in headers.split(whereSeparator: \.isNewline) {
            let line = String(rawLine)
            if line.hasPrefix("HTTP/") {
                status = line.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
                value = nil  // a redirect followed or an interim answer: only the last counts
            } else if line.lowercased().hasPrefix(wanted) {
                value = terminalSafe(String(line.dropFirst(wanted.count))).trimmingWhitespace()
            }
        }
        if let value, !value.isEmpty { return .named(value) }
        return .unnamed(status)
    }
}

/// The web server change `init` prints, ready to paste: one rule per web server, here only.
enum WebServerAdvice {
    static func change(for settings: WebServerSettings, moodleDirectory: String, layout: SiteLayout) -> String {
        let webRoot = layout.publicLayout ? "\(moodleDirectory)/public" : moodleDirectory
        switch settings.kind {
        case .nginx:
            return """
                nginx: serve the real path of the tree, so that each switch is seen at once:
                    root \(webRoot);
                    # in the PHP location:
                    fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
                    fastcgi_param DOCUMENT_ROOT $realpath_root;
                    # in the server block (and in any location with an add_header of its own): the tree
                    # that answers, which the helper checks after each switch
                    add_header \(settings.header) $delivery_tree always;
                and in the http block (e.g. /etc/nginx/conf.d/moodle-delivery.conf), once per server:
                    map $realpath_root $delivery_tree { "~/(?<tree>[^/]+)(/public)?$" $tree; }
                """
        case .apache:
            return """
                Apache: at each switch the helper writes the served tree's real path into \(settings.defineFile ?? "?")
                and reloads Apache gracefully (\((settings.reloadCommands ?? []).map { $0.joined(separator: " ") }.joined(separator: "; "))).
                At the top of the site's configuration file, before its <VirtualHost>:
                    Include \(settings.defineFile ?? "?")
                In its <VirtualHost> (mod_php or PHP-FPM through mod_proxy_fcgi alike; a2enmod headers):
                    DocumentRoot ${\(settings.rootVariable)}
                    <Directory \(layout.releases)>
                        # what the <Directory \(moodleDirectory)> block had (Require all granted, AllowOverride …)
                    </Directory>
                    # the tree that answers, which the helper checks after each switch
                    Header always set \(settings.header) "${\(settings.treeVariable)}"
                Check it with apachectl configtest.
                """
        }
    }
}
