#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// What a rehearsal leaves, removed at its end, by the next rehearsal, or by `recover`; and the
// PHP it runs in its tree.
extension OperationRun {
    // MARK: Leftovers

    func writeLeftovers(_ leftovers: RehearsalLeftovers) throws(DeliveryError) {
        do {
            try System.writeFileAtomically(
                RehearsalLeftovers.file(in: engine.configuration.stateDirectory), try JSONCoding.encode(leftovers),
                mode: 0o600)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "cannot record the rehearsal under way: \(error)")
        }
    }

    /// Removes what a rehearsal made: its upgrade if it still runs, its database, its folder, its
    /// record. Returns what could not be removed (said in the result, tried again next time).
    func cleanUpRehearsal(_ leftovers: RehearsalLeftovers, tool: DatabaseTool?) -> [String] {
        var problems: [String] = []
        if let group = leftovers.upgradeProcessGroup, group > 1 { System.signal(processGroup: group, SIGKILL) }
        if let name = leftovers.database, let tool {
            do {
                try tool.dropDatabase(name)
            } catch {
                problems.append("the database copy \(name) could not be dropped: \(error.message)")
            }
        }
        let folder = leftovers.folder
        if (try? System.lstatus(folder)) != nil {
            if let owner = try? UserIdentity.lookup(engine.configuration.codeOwner),
                (try? System.lstatus("\(folder)/tree")) != nil
            {
                do {
                    try CopyWorker.removeTree("\(folder)/tree", owner: owner, recorder: recorder)
                } catch {
                    problems.append("the rehearsal's tree could not be removed: \(error.message)")
                }
            }
            do {
                try TreeCopier.removeTree(folder)
            } catch {
                problems.append("\(folder) could not be removed: \(error.message)")
            }
        }
        let stateDirectory = engine.configuration.stateDirectory
        for entry in (try? System.listDirectory(stateDirectory)) ?? []
        where entry.name.hasPrefix("rehearsal-")
            && (entry.name.hasSuffix(".dump") || entry.name.hasSuffix(".tables")
                || entry.name.hasSuffix(".partial"))
        {
            try? System.unlink("\(stateDirectory)/\(entry.name)")
        }
        if problems.isEmpty { try? System.unlink(RehearsalLeftovers.file(in: stateDirectory)) }
        return problems
    }

    /// What an earlier rehearsal killed on its way left: removed before a new one, and by
    /// `recover`. Returns what was removed, said in the log.
    @discardableResult
    func removeRehearsalLeftovers(_ tool: DatabaseTool?) throws(DeliveryError) -> Bool {
        let file = RehearsalLeftovers.file(in: engine.configuration.stateDirectory)
        var leftovers: RehearsalLeftovers?
        if let bytes = try? System.readFile(file, limit: 1 << 16) {
            leftovers = try? JSONCoding.decode(RehearsalLeftovers.self, from: bytes)
        }
        if leftovers == nil, (try? System.lstatus(rehearsalFolder)) != nil {
            leftovers = RehearsalLeftovers(id: "unknown", database: nil, folder: rehearsalFolder)
        }
        guard let leftovers else { return false }
        note(
            "Removing what the interrupted rehearsal \(leftovers.id) left (\(leftovers.database ?? "no database"), \(leftovers.folder))…"
        )
        let problems = cleanUpRehearsal(leftovers, tool: tool)
        guard problems.isEmpty else {
            throw DeliveryError(
                .cannotRehearse, "an earlier rehearsal's leftovers remain: \(problems.joined(separator: "; "))")
        }
        return true
    }

    /// For `recover`: the leftovers of a rehearsal whose process died, with the database tool
    /// when the site's settings can be read.
    func recoverRehearsal() -> Bool {
        let tool: DatabaseTool? = {
            let configuration = engine.configuration
            guard let webUser = try? UserIdentity.lookup(configuration.webUser),
                let connection = try? DatabaseConnection.read(
                    php: configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
            else { return nil }
            return DatabaseTool(
                connection: connection, webUser: webUser, recorder: recorder,
                timeout: configuration.snapshotSettings.timeoutSeconds)
        }()
        do {
            return try removeRehearsalLeftovers(tool)
        } catch {
            note(error.message)
            return false
        }
    }
}
/// Moodle's CLI scripts of a rehearsal's tree, as the web user, at a lower priority than the site.
struct RehearsalPHPRunner {
    /// The site's PHP, as the web user.
    let moodle: MoodleCLI
    /// The copy's code root (its `public/` in Moodle 5.1's layout).
    let tree: String

    func run(_ script: String, _ arguments: [String], timeout: Double? = nil, onStart: (Int32) -> Void = { _ in })
        throws(DeliveryError) -> CommandResult
    {
        try moodle.runScript(
            "\(tree)/\(moodle.layout.adminDirectory)/cli/\(script)", arguments, codeRoot: tree, timeout: timeout,
            lowPriority: true, onStart: onStart)
    }

    /// `upgrade.php --is-pending` on the copy: true when an upgrade is pending.
    func upgradePending() throws(DeliveryError) -> Bool {
        let result = try run("upgrade.php", ["--is-pending"])
        switch result.exitCode {
        case 0: return false
        case 2: return true
        default:
            throw DeliveryError(
                .cannotRehearse, "Moodle's upgrade check failed on the copy: \(MoodleCLI.lastLines(result))")
        }
    }

    func upgrade(onStart: (Int32) -> Void) throws(DeliveryError) -> CommandResult {
        try run("upgrade.php", ["--non-interactive"], timeout: moodle.timeouts.upgrade, onStart: onStart)
    }

    /// The critical results of `checks.php` on the copy; nil when it did not answer.
    func criticalChecks() -> Set<String>? {
        guard (try? System.lstatus("\(tree)/\(moodle.layout.adminDirectory)/cli/checks.php"))?.kind == .regular,
            let result = try? run("checks.php", []), let code = result.exitCode, code <= 2
        else { return nil }
        return HealthChecker.criticalReferences(in: result.standardOutput)
    }
}
