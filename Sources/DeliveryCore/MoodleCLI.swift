#if canImport(Glibc)
    import Glibc
#endif

/// Runs Moodle's own CLI scripts of a tree, always as the web user (Moodle requires it).
struct MoodleCLI {
    let php: String
    let layout: SiteLayout
    let webUser: UserIdentity
    let timeouts: Timeouts
    let recorder: CommandRecorder

    /// Runs `admin/cli/<script>` of a tree with its arguments.
    func run(
        _ script: String, _ arguments: [String], in tree: TreeName, timeout: Double? = nil, echo: Bool = true,
        onStart: (Int32) -> Void = { _ in }
    ) throws(DeliveryError) -> CommandResult {
        let path = layout.cliScript(script, in: tree)
        guard (try? System.lstatus(path))?.kind == .regular else {
            throw DeliveryError(
                .upgradeFailed,
                "Moodle's \(layout.adminDirectory)/cli/\(script) is missing in the \(tree.rawValue) tree")
        }
        return try runScript(
            path, arguments, codeRoot: layout.codeRoot(of: tree), timeout: timeout, echo: echo, onStart: onStart)
    }

    /// Runs a Moodle CLI script of any code root (a tree of `releases/`, a rehearsal's copy) as
    /// the web user, in that code root; `lowPriority` below the site's own processes.
    func runScript(
        _ path: String, _ arguments: [String], codeRoot: String, timeout: Double? = nil, echo: Bool = true,
        lowPriority: Bool = false, onStart: (Int32) -> Void = { _ in }
    ) throws(DeliveryError) -> CommandResult {
        var command = Command(
            php, [path] + arguments, user: webUser, workingDirectory: codeRoot,
            timeoutSeconds: timeout ?? timeouts.phpScript)
        command.lowPriority = lowPriority
        return try recorder.run(command, echo: echo, onStart: onStart)
    }

    /// Builds a tree's prebuilt component cache. Nothing a web-user process produced goes into a
    /// code tree: Moodle's `alternative_component_cache.php --print` runs as the code owner (with
    /// the web server's group added, to read `config.php`; Moodle's bootstrap also wants the
    /// dataroot writable, which that group gives on a usual site), its output comes back through
    /// a pipe, and it is written into the tree through descriptors (no symlink followed) by the
    /// code owner's `delivery-copy` (`CopyWorker`), not by root.
    /// - Parameters:
    ///   - treeRoot: the real path of the tree (a copy's generation, or production), in `releases/`.
    ///   - file: the cache file, relative to the tree root.
    func buildComponentCache(treeRoot: String, file: String, owner: UserIdentity) throws(DeliveryError) {
        let codeRoot = layout.publicLayout ? "\(treeRoot)/public" : treeRoot
        let script = "\(codeRoot)/\(layout.adminDirectory)/cli/alternative_component_cache.php"
        guard (try? System.lstatus(script))?.kind == .regular else {
            throw DeliveryError(.upgradeFailed, "Moodle's alternative_component_cache.php is missing in \(treeRoot)")
        }
        let job = ComponentCacheJob(
            php: php, script: script, codeRoot: codeRoot, treeRoot: treeRoot, file: file,
            timeoutSeconds: timeouts.phpScript)
        try CopyWorker.buildComponentCache(job, as: owner, groups: [webUser.gid], recorder: recorder)
    }

    /// What `upgrade.php --is-maintenance-required` answered.
    enum UpgradeNeed: Equatable {
        case none, withoutMaintenance, withMaintenance
    }

    /// Whether an upgrade is pending and needs maintenance mode. Most deliveries bring none: the
    /// plugin's `cli/health.php --pending` says so in a fraction of `upgrade.php`'s time, and only
    /// a pending upgrade (or a tree without the plugin) asks `upgrade.php` which kind it is.
    func upgradeNeed(in tree: TreeName) throws(DeliveryError) -> UpgradeNeed {
        if askHealthScript(in: tree, pending: true, checks: false)?.upgrade == "none" { return .none }
        let check = try run("upgrade.php", ["--is-maintenance-required"], in: tree)
        switch check.exitCode {
        case 0: return .none
        case 3: return .withoutMaintenance
        case 2: return .withMaintenance
        default:
            throw DeliveryError(.upgradeFailed, "Moodle's upgrade check failed: \(Self.lastLines(check))")
        }
    }

    func setMaintenance(_ enabled: Bool, in tree: TreeName) throws(DeliveryError) {
        let result = try run("maintenance.php", [enabled ? "--enable" : "--disable"], in: tree)
        guard result.succeeded else {
            throw DeliveryError(
                .upgradeFailed, "cannot turn maintenance mode \(enabled ? "on" : "off"): \(Self.lastLines(result))")
        }
        recorder.maintenanceChanged(enabled)
    }

    /// Lifts the maintenance mode `setMaintenance(true)` turned on, as Moodle's `maintenance.php
    /// --disable` does after its own `--enable` (which already set `maintenance_enabled` to 0 and
    /// dropped `maintenance_later`): only the flag file is left, and the web user removes it from
    /// its dataroot, without a bootstrap of Moodle (0.14 s inside the window on a real site). When
    /// that does not work, Moodle's script does it.
    func liftMaintenance(in tree: TreeName, dataroot: String) throws(DeliveryError) {
        let flag = "\(dataroot)/climaintenance.html"
        if let remove = ChildProcess.locate("rm"),
            let result = try? recorder.run(
                Command(remove, ["-f", "--", flag], user: webUser, workingDirectory: "/", timeoutSeconds: 30)),
            result.succeeded, (try? System.lstatusIfExists(flag)) == .some(nil)
        {
            recorder.maintenanceChanged(false)
            return
        }
        try setMaintenance(false, in: tree)
    }

    /// Runs Moodle's upgrade; `onStart` receives the process group (the helper records it, so that
    /// a rollback after the helper died can stop an upgrade still running).
    func upgrade(in tree: TreeName, onStart: (Int32) -> Void = { _ in }) throws(DeliveryError) {
        let result = try run(
            "upgrade.php", ["--non-interactive"], in: tree, timeout: timeouts.upgrade, onStart: onStart)
        guard result.succeeded else {
            throw DeliveryError(.upgradeFailed, "Moodle's upgrade failed: \(Self.lastLines(result))")
        }
    }

    /// Runs Moodle's purge: every cache, or the parts named (`--lang`, `--js` …, `CachePurge`).
    func purgeCaches(_ arguments: [String] = [], in tree: TreeName) throws(DeliveryError) {
        let result = try run("purge_caches.php", arguments, in: tree)
        guard result.succeeded else {
            throw DeliveryError(.upgradeFailed, "purging Moodle's caches failed: \(Self.lastLines(result))")
        }
    }

    /// True when the tree's code matches the database: `upgrade.php --is-pending` answers 0
    /// (no upgrade needed). A pending upgrade (2) or a downgrade (Moodle's error) answers false.
    func codeMatchesDatabase(in tree: TreeName) throws(DeliveryError) -> Bool {
        try databaseMatch(in: tree) == true
    }

    /// Moodle's answer to `upgrade.php --is-pending` in a tree: true when nothing is pending, false
    /// when an upgrade is pending or Moodle refuses the code (older than the database), nil when it
    /// gave no answer (timed out, killed). Asked of the plugin's `cli/health.php` when the tree has
    /// it (the same question without what `upgrade.php` loads besides: 0.14 s against 1.4 s on a
    /// real Moodle 4.5 site), else of `upgrade.php`.
    func databaseMatch(in tree: TreeName, echo: Bool = true, viaHealthScript: Bool = true) throws(DeliveryError)
        -> Bool?
    {
        if viaHealthScript, let answer = askHealthScript(in: tree, pending: true, checks: false, echo: echo) {
            return answer.upgrade == "none"
        }
        let result = try run("upgrade.php", ["--is-pending"], in: tree, echo: echo)
        guard let code = result.exitCode, !result.timedOut else { return nil }
        return code == 0
    }

    /// What the plugin's `cli/health.php` prints: `upgrade` is `none`, `pending` or `downgrade`.
    struct HealthScriptAnswer: Decodable {
        var upgrade: String?
        var critical: [String]?
    }

    /// The plugin's script of a tree (`admin/tool/delivery/cli/health.php`), when it has one.
    func healthScript(in tree: TreeName) -> String? {
        let path = "\(layout.codeRoot(of: tree))/\(layout.adminDirectory)/tool/delivery/cli/health.php"
        return (try? System.lstatus(path))?.kind == .regular ? path : nil
    }

    /// Asks the plugin's script; nil when the tree has none or it gave no complete answer (an
    /// older plugin, a failure): the caller then asks Moodle's own scripts.
    func askHealthScript(in tree: TreeName, pending: Bool, checks: Bool, echo: Bool = true) -> HealthScriptAnswer? {
        guard pending || checks, let script = healthScript(in: tree) else { return nil }
        let arguments = (pending ? ["--pending"] : []) + (checks ? ["--checks"] : [])
        guard let result = try? runScript(script, arguments, codeRoot: layout.codeRoot(of: tree), echo: echo),
            result.succeeded,
            let line = result.standardOutput.split(whereSeparator: \.isNewline).last,
            let answer = try? JSONCoding.decode(HealthScriptAnswer.self, from: Array(line.utf8)),
            !pending || ["none", "pending", "downgrade"].contains(answer.upgrade ?? ""),
            !checks || answer.critical != nil
        else {
            recorder.onLine("The plugin's health script gave no answer: asking Moodle's own scripts.")
            return nil
        }
        return answer
    }

    static func lastLines(_ result: CommandResult) -> String {
        if result.timedOut { return "it ran longer than its time limit" }
        // Moodle's CLI errors stand between '!!!' marks; the first one is the reason.
        for line in result.combinedOutput.split(whereSeparator: \.isNewline) {
            let text = String(line).trimmingWhitespace()
            if text.hasPrefix("!!!") && text.hasSuffix("!!!") && text.count > 6 {
                return String(text.dropFirst(3).dropLast(3)).trimmingWhitespace()
            }
        }
        let text = result.combinedOutput.split(whereSeparator: \.isNewline).suffix(3).joined(separator: " | ")
        return text.isEmpty ? "exit status \(result.exitCode.map(String.init) ?? "?")" : text
    }

    /// The PHP that reads a site's settings: Moodle's own bootstrap stops right after config.php
    /// (`ABORT_AFTER_CONFIG`), then the settings the helper needs are printed as JSON.
    static let settingsReader = """
        define('CLI_SCRIPT', true);
        define('ABORT_AFTER_CONFIG', true);
        $dir = $argv[1];
        if (!is_file($dir . '/config.php')) { fwrite(STDERR, "no config.php\\n"); exit(3); }
        require($dir . '/config.php');
        if (!isset($CFG) || !is_object($CFG) || empty($CFG->wwwroot)) { fwrite(STDERR, "config.php sets no \\$CFG->wwwroot\\n"); exit(4); }
        echo json_encode([
            'wwwroot' => (string)$CFG->wwwroot,
            'dataroot' => (string)($CFG->dataroot ?? ''),
            'admin' => (string)($CFG->admin ?? 'admin'),
            'dbtype' => (string)($CFG->dbtype ?? ''),
            'dbhost' => (string)($CFG->dbhost ?? ''),
            'dbname' => (string)($CFG->dbname ?? ''),
            'dbuser' => (string)($CFG->dbuser ?? ''),
            'prefix' => (string)($CFG->prefix ?? 'mdl_'),
            'alternativeComponentCache' => isset($CFG->alternative_component_cache) ? (string)$CFG->alternative_component_cache : null,
        ]), "\\n";
        """

    /// Reads a site's settings by running its config.php in PHP, as the web user.
    static func readSettings(php: String, tree: String, webUser: UserIdentity) throws(DeliveryError) -> MoodleSettings {
        let command = Command(
            php, ["-r", settingsReader, tree], user: webUser, workingDirectory: tree, timeoutSeconds: 60)
        let result = try ChildProcess.run(command)
        guard result.succeeded else {
            throw DeliveryError(.notMoodle, "PHP could not read \(tree)/config.php: \(lastLines(result))")
        }
        let json = result.standardOutput.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        do {
            return try JSONCoding.decode(MoodleSettings.self, from: Array(json.utf8))
        } catch {
            throw DeliveryError(.notMoodle, "config.php of \(tree) did not give Moodle's settings")
        }
    }
}
