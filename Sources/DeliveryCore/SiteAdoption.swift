/// What `init` needs to adopt an existing Moodle install.
public struct AdoptionRequest: Sendable {
    /// The Moodle directory as the web server serves it today (a real directory).
    public var moodleDirectory: String
    /// The new site root; default `<moodleDirectory>-delivery` beside it (same file system).
    public var siteRoot: String?
    /// The state directory; default `/var/lib/moodle-delivery/<name>`.
    public var stateDirectory: String?
    /// Where to write the helper's configuration.
    public var configurationPath: String
    /// The web server's user (PHP CLI runs as it).
    public var webUser: String
    /// The code owner; default the owner of the Moodle directory.
    public var codeOwner: String?
    /// The PHP CLI binary.
    public var php: String
    /// git: the branch to follow; default the branch checked out.
    public var branch: String?
    /// git: the remote; default the branch's remote, else `origin`.
    public var remote: String?
    /// The PHP-FPM pools' sockets; default the sockets found in /run/php.
    public var phpFpmSockets: [String]?
    /// Add `$CFG->alternative_component_cache` to config.php (each tree gets its own prebuilt cache).
    public var componentCache: Bool
    /// Take a database snapshot before every upgrade (default true; the database type must be
    /// PostgreSQL, MariaDB or MySQL and its dump tool installed).
    public var databaseSnapshots: Bool
    /// The health check after the switch back; nil keeps the defaults (automatic rollback).
    public var healthCheck: HealthCheckSettings?
    /// Site-local files besides config.php (`--local-file`), relative to the tree's root.
    public var localFiles: [String] = []
    /// The web server: nginx (the default) or Apache, whose switch the helper does with a
    /// rewritten `Define` file and a graceful reload (`init --web-server apache`).
    public var webServer: WebServerKindRequest = .nginx

    /// Makes a request.
    public init(
        moodleDirectory: String, siteRoot: String? = nil, stateDirectory: String? = nil,
        configurationPath: String = SiteConfiguration.defaultPath, webUser: String = "www-data",
        codeOwner: String? = nil, php: String = "/usr/bin/php", branch: String? = nil, remote: String? = nil,
        phpFpmSockets: [String]? = nil, componentCache: Bool = false, databaseSnapshots: Bool = true,
        healthCheck: HealthCheckSettings? = nil, localFiles: [String] = [], webServer: WebServerKindRequest = .nginx
    ) {
        self.webServer = webServer
        self.localFiles = localFiles
        self.databaseSnapshots = databaseSnapshots
        self.healthCheck = healthCheck
        self.moodleDirectory = moodleDirectory
        self.siteRoot = siteRoot
        self.stateDirectory = stateDirectory
        self.configurationPath = configurationPath
        self.webUser = webUser
        self.codeOwner = codeOwner
        self.php = php
        self.branch = branch
        self.remote = remote
        self.phpFpmSockets = phpFpmSockets
        self.componentCache = componentCache
    }
}

/// The result of adopting a site.
public struct AdoptionResult: Sendable {
    /// The configuration written.
    public var configuration: SiteConfiguration
    /// The web server change the admin must make, ready to paste.
    public var webServerChange: String
    /// The site-local files the site has changed from the upstream's version (kept through every
    /// update and cancel): what `init` tells the admin it protects.
    public var changedLocalFiles: [String] = []
    /// Why the code owner cannot reach the upstream, and the commands that fix it; nil when it can.
    public var upstreamProblem: (reason: String, advice: [String])?
    /// True when init added the component cache setting to config.php (false when it had one).
    public var addedComponentCacheSetting = false
}

/// What `init --web-server` asks for; Apache's file and variables follow from the site.
public enum WebServerKindRequest: Sendable, Equatable {
    /// nginx, serving each tree by its real path.
    case nginx
    /// Apache: the define file (default: `apache-tree.conf` in the state directory) and the
    /// reload commands (default: `apachectl graceful`).
    case apache(defineFile: String?, reloadCommands: [[String]]?)
}

/// Adopts an existing Moodle install into the release layout.
public enum SiteAdoption {
    /// Detects whether a directory is a Moodle code tree, and which layout it has.
    /// - Returns: true for Moodle 5.1+'s `public/` layout.
    /// - Throws: `DeliveryError` `.notMoodle` with what is missing.
    public static func detectLayout(of directory: String) throws(DeliveryError) -> Bool {
        func isFile(_ path: String) -> Bool { (try? System.lstatus(path))?.kind == .regular }
        let classic = isFile("\(directory)/version.php") && isFile("\(directory)/lib/setup.php")
        let publicLayout = isFile("\(directory)/public/version.php") && isFile("\(directory)/public/lib/setup.php")
        guard classic || publicLayout else {
            throw DeliveryError(
                .notMoodle, "\(directory) is not a Moodle code tree: version.php and lib/setup.php are missing")
        }
        guard isFile("\(directory)/config.php") else {
            throw DeliveryError(.notMoodle, "\(directory) has no config.php: install Moodle first")
        }
        guard
            let bytes = try? System.readFile(
                publicLayout && !classic ? "\(directory)/public/version.php" : "\(directory)/version.php",
                limit: 1 << 20),
            String(decoding: bytes, as: UTF8.self).contains("$version")
        else {
            throw DeliveryError(.notMoodle, "\(directory)/version.php does not set Moodle's $version")
        }
        return publicLayout && !classic
    }

    /// Detects the VCS of a working copy.
    public static func detectVersionControl(of directory: String) throws(DeliveryError) -> VersionControlKind {
        if (try? System.lstatus("\(directory)/.git")) != nil { return .git }
        if (try? System.lstatus("\(directory)/.svn"))?.kind == .directory { return .svn }
        if (try? System.lstatus("\(directory)/CVS"))?.kind == .directory { return .cvs }
        throw DeliveryError(
            .configuration,
            "\(directory) is not a git, svn or cvs working copy; the delivery updates production with its VCS")
    }

    /// Adopts the site: reads its settings through PHP, moves the tree into
    /// `releases/production`, puts `current` in place and the old directory as a symlink to it,
    /// and writes the helper's configuration.
    public static func adopt(_ request: AdoptionRequest) throws(DeliveryError) -> AdoptionResult {
        let given =
            request.moodleDirectory.hasSuffix("/") && request.moodleDirectory.count > 1
            ? String(request.moodleDirectory.dropLast()) : request.moodleDirectory
        guard given.hasPrefix("/") else {
            throw DeliveryError(.configuration, "give the Moodle directory as an absolute path")
        }
        // One configuration per site: adopting a second site must never take over the first
        // site's configuration (and with it the helper that serves it, its key and its socket).
        if (try? System.lstatusIfExists(request.configurationPath)) != nil {
            let other = (try? SiteConfiguration.load(from: request.configurationPath))?.siteRoot
            throw DeliveryError(
                .wrongState,
                "the configuration \(request.configurationPath) exists already\(other.map { " (it is the site at \($0))" } ?? ""): nothing was changed; give this site a name of its own (--site) or a configuration of its own (--config)"
            )
        }
        guard let status = try? System.lstatus(given) else {
            throw DeliveryError(.notMoodle, "\(given) does not exist")
        }
        if status.kind == .symlink {
            let target = (try? System.readLink(given)) ?? "?"
            throw DeliveryError(
                .wrongState, "\(given) is already a symlink (to \(target)): the site looks adopted already")
        }
        guard status.kind == .directory else { throw DeliveryError(.notMoodle, "\(given) is not a directory") }
        let publicLayout = try detectLayout(of: given)
        let kind = try detectVersionControl(of: given)
        let webUser = try UserIdentity.lookup(request.webUser)
        let owner = try UserIdentity.lookup(request.codeOwner ?? String(status.uid))
        let settings = try MoodleCLI.readSettings(php: request.php, tree: given, webUser: webUser)

        var upstream = UpstreamConfiguration(kind: kind)
        if kind == .git {
            let recorder = CommandRecorder(onLine: { _ in })
            let context = VersionControlContext(upstream: upstream, owner: owner, timeout: 60)
            let branchResult = try recorder.run(
                context.command("git", ["symbolic-ref", "--quiet", "--short", "HEAD"], in: given), echo: false)
            let branch =
                request.branch ?? (branchResult.succeeded ? branchResult.standardOutput.trimmingWhitespace() : nil)
            guard let branch, !branch.isEmpty else {
                throw DeliveryError(
                    .configuration, "production is on a detached HEAD: give the branch to follow with --branch")
            }
            var remote = request.remote
            if remote == nil {
                let remoteResult = try recorder.run(
                    context.command("git", ["config", "--get", "branch.\(branch).remote"], in: given), echo: false)
                remote = remoteResult.succeeded ? remoteResult.standardOutput.trimmingWhitespace() : "origin"
            }
            upstream = UpstreamConfiguration(kind: .git, remote: remote, branch: branch)
        }

        if request.componentCache && settings.alternativeComponentCache == nil {
            // The code owner builds the cache with the web server's group; Moodle's bootstrap wants
            // the dataroot writable (checked now: a failure later would leave the site half adopted).
            if let dataroot = try? System.lstatus(settings.dataroot), dataroot.uid != owner.uid,
                !(dataroot.gid == webUser.gid && dataroot.mode & 0o030 == 0o030), dataroot.mode & 0o003 != 0o003
            {
                throw DeliveryError(
                    .configuration,
                    "the dataroot \(settings.dataroot) is not writable by the web server's group (\(webUser.name)), which the code owner needs to build the component cache (Moodle's default permissions, 02777 less others, give it): chmod g+rwx it, or adopt without --component-cache (nothing was changed)"
                )
            }
        }
        let name = lastComponent(of: given)
        let parent = parentDirectory(of: given)
        let siteRoot = request.siteRoot ?? "\(parent)/\(name)-delivery"
        let stateDirectory = request.stateDirectory ?? "/var/lib/moodle-delivery/\(name)"
        let pools: [String]
        if let named = request.phpFpmSockets {
            pools = named
        } else if case .apache = request.webServer {
            pools = []  // PHP in Apache (mod_php) unless a pool is named: never guessed from /run/php
        } else {
            pools = try detectPHPFPMSockets()
        }
        var configuration = SiteConfiguration(
            siteRoot: siteRoot, stateDirectory: stateDirectory, publicLayout: publicLayout, php: request.php,
            webUser: webUser.name, codeOwner: owner.name, upstream: upstream, moodle: settings,
            adoptedFrom: given, phpFpmSockets: pools,
            database: SnapshotSettings(enabled: request.databaseSnapshots), healthCheck: request.healthCheck)
        configuration.localFiles = request.localFiles.isEmpty ? nil : request.localFiles
        configuration.webServer = webServerSettings(request, siteRoot: siteRoot, stateDirectory: stateDirectory)
        try configuration.validate()
        if configuration.webServerSettings.kind == .apache, !WebServerSettings.isDefinable(siteRoot) {
            throw DeliveryError(
                .configuration,
                "Apache cannot take the site root \(siteRoot) in a Define line (spaces or quotes): choose another with --site-root (nothing was changed)"
            )
        }
        if request.databaseSnapshots {
            guard let family = DatabaseConnection.family(of: settings.dbtype) else {
                throw DeliveryError(
                    .configuration,
                    "the database type '\(settings.dbtype)' has no snapshot support (PostgreSQL, MariaDB and MySQL have): adopt with --no-database-snapshot to upgrade without one (a rollback after an upgrade then cannot run the older code)"
                )
            }
            let tool = family == .postgres ? ["pg_dump", "pg_restore", "psql"] : ["mariadb-dump", "mariadb"]
            for name in tool
            where ChildProcess.locate(name) == nil
                && ChildProcess.locate(name == "mariadb" ? "mysql" : "mysqldump") == nil
            {
                throw DeliveryError(
                    .configuration,
                    "\(name) is not installed: install \(family == .postgres ? "postgresql-client" : "mariadb-client") for the database snapshots, or adopt with --no-database-snapshot"
                )
            }
        }

        if let existing = try? System.lstatus(siteRoot) {
            let empty = existing.kind == .directory && ((try? System.listDirectory(siteRoot))?.isEmpty ?? false)
            guard empty else {
                throw DeliveryError(.wrongState, "the site root \(siteRoot) exists already and is not empty")
            }
        } else {
            do {
                try System.makeDirectory(siteRoot, 0o755)
            } catch {
                throw DeliveryError.io("cannot create the site root", error)
            }
        }
        guard let rootDevice = try? System.lstatus(siteRoot).device, rootDevice == status.device else {
            try? System.removeDirectory(siteRoot)
            throw DeliveryError(.configuration, "the site root \(siteRoot) must be on the same file system as \(given)")
        }
        let layout = SiteLayout(root: siteRoot, publicLayout: publicLayout, adminDirectory: settings.admin)
        let temporaryLink = "\(given).delivery-link-\(System.processIdentifier)"
        do {
            // The site root and releases/ stay the helper's: the code owner owns only the trees.
            try System.makeDirectory(layout.releases, 0o755)
            try System.rename(given, layout.path(of: .production))
            try System.symlink(target: "releases/production", at: layout.current)
            try System.symlink(target: layout.current, at: temporaryLink)
            try System.rename(temporaryLink, given)
            try System.syncDirectory(siteRoot)
            try System.syncDirectory(parent)
        } catch {
            // Put everything back as it was.
            try? System.unlink(temporaryLink)
            if (try? System.lstatus(given)) == nil {
                try? System.rename(layout.path(of: .production), given)
            }
            try? System.unlink(layout.current)
            try? System.removeDirectory(layout.releases)
            try? System.removeDirectory(siteRoot)
            throw DeliveryError.io("cannot move the site into the release layout (nothing was changed)", error)
        }
        do {
            try makeDirectories(parentDirectory(of: request.configurationPath), mode: 0o755)
            try makeDirectories(stateDirectory, mode: 0o750)
        } catch {
            throw DeliveryError.io("cannot create the helper's folders", error)
        }
        // A state left by an earlier adoption of this folder (its audit log stays) describes trees
        // that are gone: it is kept aside, never read as this site's.
        let oldState = "\(stateDirectory)/state.json"
        if (try? System.lstatus(oldState)) != nil {
            try? System.rename(
                oldState, "\(oldState).before-\(System.processIdentifier)-\(Int(System.monotonicSeconds()))")
        }
        if let existing = settings.alternativeComponentCache, existing.hasPrefix(given + "/") {
            configuration.componentCacheFile = String(existing.dropFirst(given.count + 1))
        } else if request.componentCache {
            configuration.componentCacheFile = try addComponentCacheSetting(
                tree: layout.path(of: .production), stateDirectory: stateDirectory)
        }
        try configuration.save(to: request.configurationPath)
        if let file = configuration.componentCacheFile {
            let production = layout.path(of: .production)
            if (try? System.lstatus("\(production)/.git"))?.kind == .directory {
                let exclude = "\(production)/.git/info/exclude"
                let current =
                    (try? System.readFile(exclude, limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                if !current.split(whereSeparator: \.isNewline).contains(where: { $0 == "/\(file)" }) {
                    try? System.appendDurably(exclude, Array("/\(file)\n".utf8), mode: 0o644)
                }
            }
            let recorder = CommandRecorder(onLine: { _ in })
            try MoodleCLI(php: request.php, layout: layout, webUser: webUser, timeouts: Timeouts(), recorder: recorder)
                .buildComponentCache(treeRoot: production, file: file, owner: owner)
        }
        let webServer = configuration.webServerSettings
        if webServer.kind == .apache, let file = webServer.defineFile {
            // Apache reads the served tree from this file: it must exist before its configuration
            // includes it.
            try WebServerSwitch.writeDefineFile(
                file, settings: webServer, roots: WebServerSwitch.realRoots(of: .production, in: layout))
        }
        let change =
            WebServerAdvice.change(for: webServer, moodleDirectory: given, layout: layout)
            + "\nThen reload the web server. \(given) is now a symlink to \(layout.current) -> releases/production."
        let vcs = VersionControlContext.make(
            VersionControlContext(
                upstream: configuration.upstream, owner: owner, timeout: configuration.timeouts.versionControl,
                localFiles: configuration.siteLocalFiles))
        let production = layout.path(of: .production)
        let recorder = CommandRecorder(onLine: { _ in })
        let added = configuration.componentCacheFile != nil && settings.alternativeComponentCache == nil
        var result = AdoptionResult(
            configuration: configuration, webServerChange: change,
            changedLocalFiles: (try? vcs.modifiedLocalFiles(of: production, recorder: recorder)) ?? [],
            addedComponentCacheSetting: added)
        // The code owner must reach the upstream, or no delivery can update the site.
        do {
            try vcs.checkUpstream(of: production, recorder: recorder)
        } catch {
            result.upstreamProblem = (
                error.message,
                UpstreamAccess.advice(
                    for: error, owner: owner, remote: vcs.upstreamAddress(of: production, recorder: recorder),
                    kind: configuration.upstream.kind, tree: production)
            )
        }
        return result
    }

    /// The web server settings a request asks for.
    static func webServerSettings(_ request: AdoptionRequest, siteRoot: String, stateDirectory: String)
        -> WebServerSettings?
    {
        switch request.webServer {
        case .nginx:
            return WebServerSettings(kind: .nginx)
        case .apache(let file, let reload):
            return WebServerSettings(
                kind: .apache,
                // In the state directory: root's, and writable by the helper under its systemd unit
                // (which mounts /etc read-only).
                defineFile: file ?? "\(stateDirectory)/apache-tree.conf",
                defineSuffix: WebServerSettings.suffix(forSiteRoot: siteRoot),
                reloadCommands: reload ?? WebServerSwitch.defaultReload())
        }
    }

    /// The line `init --component-cache` adds to config.php.
    public static let componentCacheLine =
        "$CFG->alternative_component_cache = __DIR__ . '/.delivery-component-cache.php';  // moodle-delivery: one prebuilt cache per tree"

    /// Adds the component cache setting to config.php, before it loads lib/setup.php; the file as
    /// it was is kept in the state directory.
    static func addComponentCacheSetting(tree: String, stateDirectory: String) throws(DeliveryError) -> String {
        let path = "\(tree)/config.php"
        do {
            // The tree is the code owner's folder: config.php is opened without following a link,
            // and what is read is the file that was opened.
            let file = try System.open(path, O_RDONLY | O_NOFOLLOW)
            defer { System.close(file) }
            let status = try System.fileStatus(file)
            guard status.kind == .regular else { throw SystemCallError(errno: EINVAL, call: "open", path: path) }
            let original = try System.readAll(file, limit: 1 << 20, name: path)
            var text = String(decoding: original, as: UTF8.self)
            guard
                let setup = text.firstRange(of: "require_once(__DIR__ . '/lib/setup.php')")
                    ?? text.firstRange(of: "require_once(__DIR__.'/lib/setup.php')")
            else {
                throw DeliveryError(
                    .configuration,
                    "config.php does not load lib/setup.php as usual; add this line yourself before it: \(componentCacheLine)"
                )
            }
            let newline = text.contains("\r\n") ? "\r\n" : "\n"
            text.insert(contentsOf: componentCacheLine + newline, at: setup.lowerBound)
            try System.writeFileAtomically("\(stateDirectory)/config.php.before-component-cache", original, mode: 0o600)
            try System.writeFileAtomically(path, Array(text.utf8), mode: mode_t(status.mode))
            if System.effectiveUserIdentifier == 0 { try System.changeOwner(path, uid: status.uid, gid: status.gid) }
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot add the component cache setting to config.php", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "cannot add the component cache setting to config.php: \(error)")
        }
        return ".delivery-component-cache.php"
    }

    /// The PHP-FPM pool of a site adopted without `--php-fpm-socket`: the machine's only pool
    /// socket in `/run/php`, or none. Several are never guessed between (OPcache invalidation and
    /// warm-up requests sent to another site's pool would run this site's code there): that is
    /// refused, naming them.
    static func detectPHPFPMSockets(in folder: String = "/run/php") throws(DeliveryError) -> [String] {
        let sockets = ((try? System.listDirectory(folder)) ?? []).filter { $0.name.hasSuffix(".sock") }
            .map { "\(folder)/\($0.name)" }.sorted()
        guard sockets.count <= 1 else {
            throw DeliveryError(
                .configuration,
                "several PHP-FPM pools listen here (\(sockets.joined(separator: ", "))): say which one serves this site with --php-fpm-socket (its fastcgi_pass in the site's nginx server block, or its ProxyPassMatch/SetHandler in Apache)"
            )
        }
        return sockets
    }

    static func makeDirectories(_ path: String, mode: UInt32) throws(SystemCallError) {
        if try System.lstatusIfExists(path) != nil { return }
        let parent = parentDirectory(of: path)
        if parent != path && parent != "/" { try makeDirectories(parent, mode: 0o755) }
        try System.makeDirectory(path, mode_t(mode))
    }
}

#if canImport(Glibc)
    import Glibc
#endif
