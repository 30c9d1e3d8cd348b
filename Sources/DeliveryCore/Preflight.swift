#if canImport(Glibc)
    import Glibc
#endif

/// A PHP syntax error found by `php -l`.
public struct LintError: Sendable, Codable, Equatable {
    /// The file, relative to the tree.
    public var file: String
    /// The line PHP names, when it names one.
    public var line: Int?
    /// PHP's message.
    public var message: String
}

/// A component whose `version.php` changed.
public struct VersionChange: Sendable, Codable, Equatable {
    /// The folder of the `version.php` (empty for core).
    public var component: String
    /// The version before (from the backup copy), nil for a new component.
    public var before: String?
    /// The version after, nil for a removed component.
    public var after: String?
    /// True when the version goes down: Moodle refuses to run such code.
    public var backwards: Bool
}

/// What the preflight found in production before it is served again.
public struct PreflightReport: Sendable, Codable, Equatable {
    /// Files added, changed and removed compared with the backup copy (the pre-delivery code).
    public var added: [String] = []
    public var changed: [String] = []
    public var removed: [String] = []
    /// Syntax errors in the PHP files that the update added or changed.
    public var lintErrors: [LintError] = []
    /// Files that the update added or changed holding conflict markers, with the first line.
    public var conflictMarkers: [String: Int] = [:]
    /// `version.php` changes, core and plugins.
    public var versionChanges: [VersionChange] = []
    /// Tracked files changed locally in production, as the VCS reports them.
    public var localModifications: [String] = []
    /// Files the VCS does not track and does not ignore (a forgotten `add`?).
    public var untrackedFiles: [String] = []
    /// Tracked files missing from production.
    public var missingFiles: [String] = []
    /// Components that a partial update left inconsistent (changed `db/` files without a new
    /// version, a plugin requiring a newer core than the tree has).
    public var inconsistentComponents: [ComponentProblem] = []
    /// What Moodle says of the new code: nil when it could not be asked.
    public var upgrade: UpgradeForecast?
    /// True when Moodle's maintenance mode is on now.
    public var maintenanceModeOn: Bool?
    /// Room for the database snapshot: nil when snapshots are off or the database was not reached.
    public var snapshotSpace: SnapshotSpace?
    /// The site's PHP against the new code's minimum.
    public var phpVersion: PHPVersionCheck?
    /// Problems that do not block the restore but that the administrator should read.
    public var warnings: [String] = []
    /// The same warnings, as notices (`warn` adds to both).
    public var warningNotices: [Notice] = []

    // What blocks: `blockers` and `blocking` (PreflightBlockers.swift).

    /// One sentence on what blocks, for the refusal.
    public var blockingSummary: String {
        var parts: [String] = []
        if let first = lintErrors.first {
            parts.append(
                "\(lintErrors.count) PHP syntax error\(lintErrors.count == 1 ? "" : "s") (first: \(first.file)\(first.line.map { " line \($0)" } ?? ""): \(first.message))"
            )
        }
        if let first = conflictMarkers.keys.sorted().first {
            parts.append(
                "conflict markers in \(conflictMarkers.count) file\(conflictMarkers.count == 1 ? "" : "s") (first: \(first) line \(conflictMarkers[first]!))"
            )
        }
        for change in versionChanges where change.backwards {
            parts.append(
                "the version of \(change.component.isEmpty ? "core" : change.component) goes backwards (\(change.before ?? "?") → \(change.after ?? "?"))"
            )
        }
        if let first = missingFiles.first {
            parts.append(
                "\(missingFiles.count) tracked file\(missingFiles.count == 1 ? " is" : "s are") missing (first: \(first))"
            )
        }
        for problem in inconsistentComponents where problem.blocking {
            parts.append("\(problem.component.isEmpty ? "core" : problem.component): \(problem.reason)")
        }
        if let php = phpVersion, !php.satisfied {
            parts.append("the new code needs PHP \(php.required ?? "?") or later; the site's PHP is \(php.current)")
        }
        if let space = snapshotSpace, !space.enough {
            parts.append(
                "not enough free space for the database snapshot in \(space.directory) (\(formatBytes(space.availableBytes)) free, the database takes \(formatBytes(space.databaseBytes)))"
            )
        }
        return parts.joined(separator: "; ")
    }
}

/// A component left inconsistent by the update.
public struct ComponentProblem: Sendable, Codable, Equatable {
    /// The component's folder (empty for core).
    public var component: String
    /// What is wrong, in English.
    public var reason: String
    /// True when Moodle would refuse it or break (false: a warning).
    public var blocking: Bool
    /// What is wrong, as a notice.
    public var notice: Notice?

    init(component: String, reason: String, blocking: Bool) {
        self.component = component
        self.reason = reason
        self.blocking = blocking
    }

    init(component: String, _ notice: Notice, blocking: Bool) {
        self.component = component
        self.reason = notice.english
        self.blocking = blocking
        self.notice = notice
    }
}

extension PreflightReport {
    /// Adds a warning: as a notice, and in English with its detail (a program's words, for
    /// `deliveryctl plan`), when there is one.
    mutating func warn(_ notice: Notice, detail: String? = nil) {
        warnings.append(notice.english + (detail.map { " \($0)" } ?? ""))
        warningNotices.append(notice)
    }
}

/// What `upgrade.php --is-maintenance-required` says of the new code.
public struct UpgradeForecast: Sendable, Codable, Equatable {
    /// An upgrade will run.
    public var pending: Bool
    /// Moodle wants maintenance mode for it.
    public var maintenanceRequired: Bool
    /// A database snapshot will be taken first (the maintenance window then covers it).
    public var snapshot: Bool
}

/// The site's PHP against the new code's minimum.
public struct PHPVersionCheck: Sendable, Codable, Equatable {
    /// The site's PHP CLI version.
    public var current: String
    /// The minimum the new code asks for, when it says.
    public var required: String?
    /// True when the site's PHP is recent enough.
    public var satisfied: Bool
}

/// Checks production against the pre-delivery code before it is served again: PHP syntax of the
/// files the update brought, conflict markers, versions going backwards, local modifications.
struct Preflight {
    let production: String
    let before: String
    let php: String
    let user: UserIdentity
    let recorder: CommandRecorder
    /// Files at the trees' roots that each tree makes for itself (the component cache).
    var ignored: Set<String> = []
    /// The most files linted (a whole-tree change is checked up to this many files).
    var lintLimit = 5000

    /// Only what differs between the trees (no lint): added, changed, removed.
    func differences() -> PreflightReport {
        var report = PreflightReport()
        compareTrees(&report)
        return report
    }

    /// Compares the trees and checks what changed (`php -l`, conflict markers, versions).
    func run(localModifications: [String]) throws(DeliveryError) -> PreflightReport {
        var report = PreflightReport()
        report.localModifications = localModifications
        compareTrees(&report)
        var linted = 0
        for file in (report.added + report.changed).sorted() {
            let path = "\(production)/\(file)"
            if let line = Self.firstConflictMarker(path) { report.conflictMarkers[file] = line }
            if file.hasSuffix(".php") && linted < lintLimit {
                linted += 1
                if let error = try lint(file) { report.lintErrors.append(error) }
            }
            if file == "version.php" || file.hasSuffix("/version.php") {
                report.versionChanges.append(versionChange(file))
            }
        }
        for file in report.removed where file == "version.php" || file.hasSuffix("/version.php") {
            report.versionChanges.append(versionChange(file))
        }
        report.versionChanges = report.versionChanges.filter { $0.before != $0.after }
        return report
    }

    /// The `db/` files whose change only takes effect with a new version of their component.
    static let versionedDefinitions: Set<String> = [
        "upgrade.php", "install.xml", "install.php", "access.php", "services.php", "events.php", "tasks.php",
        "caches.php", "messages.php", "hooks.php",
    ]

    /// Components a (partial) update left inconsistent: `db/` definitions changed without a new
    /// version (Moodle would never apply them), a plugin requiring a newer core than the tree's.
    func componentProblems(_ report: PreflightReport) -> [ComponentProblem] {
        var problems: [ComponentProblem] = []
        let changedVersions = Set(report.versionChanges.map(\.component))
        var flagged: Set<String> = []
        for file in (report.added + report.changed).sorted() {
            let parts = file.split(separator: "/").map(String.init)
            guard parts.count >= 2, parts[parts.count - 2] == "db", Self.versionedDefinitions.contains(parts.last!)
            else { continue }
            var component = parts.dropLast(2).joined(separator: "/")
            if component == "lib" { component = "" }
            let versionFile = component.isEmpty ? "version.php" : "\(component)/version.php"
            guard (try? System.lstatus("\(production)/\(versionFile)"))?.kind == .regular,
                !changedVersions.contains(component), !flagged.contains(component)
            else { continue }
            flagged.insert(component)
            problems.append(
                ComponentProblem(
                    component: component,
                    Notice(.componentUnversionedChange, ["file": .text(file), "versionFile": .text(versionFile)]),
                    blocking: false))
        }
        for change in report.versionChanges where change.after == nil {
            let file = change.component.isEmpty ? "version.php" : "\(change.component)/version.php"
            guard (try? System.lstatus("\(production)/\(file)"))?.kind == .regular else { continue }
            problems.append(
                ComponentProblem(
                    component: change.component, Notice(.componentVersionLost, ["file": .text(file)]), blocking: true))
        }
        let core = Self.declaredVersion("\(production)/version.php").flatMap(Double.init)
        for change in report.versionChanges where !change.component.isEmpty && change.after != nil {
            if let problem = Self.newerCoreNeeded(
                change.component, requires: Self.requiredCore("\(production)/\(change.component)/version.php"),
                core: core)
            {
                problems.append(problem)
            }
        }
        return problems
    }

    /// The rule: a plugin whose `requires` is newer than the core it will run on blocks.
    static func newerCoreNeeded(_ component: String, requires required: Double?, core: Double?) -> ComponentProblem? {
        guard let required, let core, required > core else { return nil }
        return ComponentProblem(
            component: component,
            Notice(
                .componentNeedsNewerCore,
                ["required": .text(String(format2: required)), "core": .text(String(format2: core))]),
            blocking: true)
    }

    /// `$plugin->requires` of a plugin's version.php.
    static func requiredCore(_ path: String) -> Double? {
        guard let bytes = try? System.readFile(path, limit: 1 << 20) else { return nil }
        return requiredCore(in: String(decoding: bytes, as: UTF8.self))
    }

    /// `$plugin->requires` of a plugin's version.php text.
    static func requiredCore(in text: String) -> Double? {
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = String(rawLine).trimmingWhitespace()
            guard line.hasPrefix("$plugin->requires") else { continue }
            let value = line.drop { $0 != "=" }.dropFirst().drop { $0 == " " || $0 == "\t" }
                .prefix { $0.isNumber || $0 == "." }
            return Double(value)
        }
        return nil
    }

    /// The site's PHP against the minimum the new code declares (`lib/phpminimumversionlib.php`).
    func phpVersionCheck() -> PHPVersionCheck? {
        guard
            let result = try? ChildProcess.run(
                Command(php, ["-n", "-r", "echo PHP_VERSION;"], user: user, workingDirectory: "/", timeoutSeconds: 30)),
            result.succeeded
        else { return nil }
        let current = result.standardOutput.trimmingWhitespace()
        var required: String?
        if let bytes = try? System.readFile("\(production)/lib/phpminimumversionlib.php", limit: 1 << 20) {
            for rawLine in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let line = String(rawLine).trimmingWhitespace()
                guard line.hasPrefix("$minimumversion") else { continue }
                let value = line.drop { $0 != "'" && $0 != "\"" }.dropFirst().prefix { $0.isNumber || $0 == "." }
                if !value.isEmpty { required = String(value) }
                break
            }
        }
        let satisfied = required.map { Self.versionAtLeast(current, $0) } ?? true
        return PHPVersionCheck(current: current, required: required, satisfied: satisfied)
    }

    /// Compares dotted versions numerically (`8.2.7` ≥ `8.1.0`).
    static func versionAtLeast(_ version: String, _ minimum: String) -> Bool {
        func numbers(_ text: String) -> [Int] {
            text.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
        }
        let left = numbers(version)
        let right = numbers(minimum)
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index] : 0
            let b = index < right.count ? right[index] : 0
            if a != b { return a > b }
        }
        return true
    }

    /// Walks both trees, comparing kind, size and mtime (as a copy would).
    /// Compares the two trees from their roots, through descriptors of open folders: one
    /// `openat2` per folder and one `fstatat` per entry, instead of a walk from the root for every
    /// path (2.5 s for the 30,000 entries of a real Moodle tree, twice).
    private func compareTrees(_ report: inout PreflightReport) {
        let newRoot = try? System.openDirectory(at: AT_FDCWD, production)
        let oldRoot = try? System.openDirectory(at: AT_FDCWD, before)
        defer {
            if let newRoot { System.close(newRoot) }
            if let oldRoot { System.close(oldRoot) }
        }
        compare("", new: newRoot, old: oldRoot, &report)
    }

    /// One folder of each tree (nil where that tree lacks it), by its path relative to the roots.
    private func compare(
        _ relative: String, new newFolder: Int32?, old oldFolder: Int32?, _ report: inout PreflightReport
    ) {
        let skipped = TreeCopier.versionControlNames.union(relative.isEmpty ? ignored : [])
        let newNames = Set(Self.names(newFolder)).subtracting(skipped)
        let oldNames = Set(Self.names(oldFolder)).subtracting(skipped)
        for name in newNames.union(oldNames).sorted() {
            let child = relative.isEmpty ? name : "\(relative)/\(name)"
            let new = newFolder.flatMap { newNames.contains(name) ? try? System.lstatus(at: $0, name) : nil }
            let old = oldFolder.flatMap { oldNames.contains(name) ? try? System.lstatus(at: $0, name) : nil }
            switch (new?.kind, old?.kind) {
            case (.directory?, .directory?):
                let newChild = try? System.openDirectory(at: newFolder!, name)
                let oldChild = try? System.openDirectory(at: oldFolder!, name)
                defer {
                    if let newChild { System.close(newChild) }
                    if let oldChild { System.close(oldChild) }
                }
                compare(child, new: newChild, old: oldChild, &report)
            case (.directory?, _):
                if old != nil { report.removed.append(child) }
                Self.listAll(child, in: newFolder!, name) { report.added.append($0) }
            case (_, .directory?):
                if new != nil { report.added.append(child) }
                Self.listAll(child, in: oldFolder!, name) { report.removed.append($0) }
            case (nil, _?):
                report.removed.append(child)
            case (_?, nil):
                report.added.append(child)
            case (let newKind?, let oldKind?):
                if newKind != oldKind || new!.size != old!.size
                    || new!.modificationSeconds != old!.modificationSeconds
                    || new!.modificationNanoseconds != old!.modificationNanoseconds
                {
                    report.changed.append(child)
                }
            default:
                break
            }
        }
    }

    /// The names in an open folder (none for nil or an unreadable one).
    private static func names(_ folder: Int32?) -> [String] {
        guard let folder, let entries = try? System.listDirectory(fd: folder) else { return [] }
        return entries.map(\.name)
    }

    /// Every entry below the folder `name` of an open folder that is not itself a folder (VCS
    /// metadata left out), as paths below `relative`.
    private static func listAll(_ relative: String, in parent: Int32, _ name: String, _ found: (String) -> Void) {
        guard let folder = try? System.openDirectory(at: parent, name) else { return }
        defer { System.close(folder) }
        for entry in (try? System.listDirectory(fd: folder)) ?? []
        where !TreeCopier.versionControlNames.contains(entry.name) {
            let child = "\(relative)/\(entry.name)"
            let kind = entry.kind ?? (try? System.lstatus(at: folder, entry.name))?.kind
            if kind == .directory {
                listAll(child, in: folder, entry.name, found)
            } else {
                found(child)
            }
        }
    }

    /// `php -l` on one file, as the web user; nil when the syntax is fine.
    private func lint(_ file: String) throws(DeliveryError) -> LintError? {
        let command = Command(
            php, ["-n", "-d", "display_errors=stdout", "-d", "error_reporting=-1", "-l", "\(production)/\(file)"],
            user: user, workingDirectory: production, timeoutSeconds: 60, outputLimit: 16384)
        let result = try ChildProcess.run(command)
        if result.succeeded { return nil }
        return Self.lintError(file: file, output: result.combinedOutput.replacing("\(production)/", with: ""))
    }

    /// The lint error that `php -l`'s output says, for a file.
    static func lintError(file: String, output: String) -> LintError {
        let message =
            output.split(whereSeparator: \.isNewline).first { $0.contains("error") }.map(String.init)
            ?? output.split(whereSeparator: \.isNewline).first.map(String.init) ?? "php -l failed"
        var line: Int?
        if let marker = message.firstRange(of: " on line ") {
            line = Int(message[marker.upperBound...].prefix { $0.isNumber })
        }
        return LintError(file: file, line: line, message: message.trimmingWhitespace())
    }

    /// The first line that opens or closes a VCS conflict (`<<<<<<< ` or `>>>>>>> `, as git, svn
    /// and cvs write them), in a text file under 4 MiB.
    static func firstConflictMarker(_ path: String) -> Int? {
        guard let status = try? System.lstatus(path), status.kind == .regular, status.size < 4 << 20,
            let bytes = try? System.readFile(path, limit: 4 << 20)
        else { return nil }
        return firstConflictMarker(in: bytes)
    }

    /// The first line that opens or closes a VCS conflict in a file's bytes (nil for a binary file).
    static func firstConflictMarker(in bytes: [UInt8]) -> Int? {
        guard !bytes.contains(0) else { return nil }
        var number = 0
        for line in bytes.split(separator: 10, omittingEmptySubsequences: false) {
            number += 1
            guard line.count >= 7 else { continue }
            let head = Array(line.prefix(8))
            let opening = head.prefix(7).allSatisfy { $0 == 60 }  // <<<<<<<
            let closing = head.prefix(7).allSatisfy { $0 == 62 }  // >>>>>>>
            if (opening || closing) && (head.count == 7 || head[7] == 32 || head[7] == 13) { return number }
        }
        return nil
    }

    /// The version a `version.php` declares (`$version = …` for core, `$plugin->version = …`).
    static func declaredVersion(_ path: String) -> String? {
        guard let bytes = try? System.readFile(path, limit: 1 << 20) else { return nil }
        return declaredVersion(in: String(decoding: bytes, as: UTF8.self))
    }

    /// The version a `version.php` text declares.
    static func declaredVersion(in text: String) -> String? {
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = String(rawLine).trimmingWhitespace()
            for prefix in ["$plugin->version", "$module->version", "$version"] where line.hasPrefix(prefix) {
                let rest = line.dropFirst(prefix.count).drop { $0 == " " || $0 == "\t" }
                guard rest.first == "=" else { continue }
                let value = rest.dropFirst().drop { $0 == " " || $0 == "\t" }.prefix { $0.isNumber || $0 == "." }
                if !value.isEmpty { return String(value) }
            }
        }
        return nil
    }

    private func versionChange(_ file: String) -> VersionChange {
        let component = file == "version.php" ? "" : String(file.dropLast("/version.php".count))
        let old = Self.declaredVersion("\(before)/\(file)")
        let new = Self.declaredVersion("\(production)/\(file)")
        var backwards = false
        if let old, let new, let oldNumber = Double(old), let newNumber = Double(new) {
            backwards = newNumber < oldNumber
        }
        return VersionChange(component: component, before: old, after: new, backwards: backwards)
    }
}

extension String {
    /// A Moodle version number as Moodle writes it (`2024100700.00` → `2024100700.00`, two decimals).
    init(format2 value: Double) {
        let hundredths = Int64((value * 100).rounded())
        let fraction = hundredths % 100
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
