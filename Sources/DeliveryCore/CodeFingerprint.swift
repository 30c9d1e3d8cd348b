import Crypto

#if canImport(Glibc)
    import Glibc
#endif

/// What Moodle's answers about a tree depend on, as digests: the name and kind of every entry (a
/// plugin, a class or a script added, removed or renamed) and the contents of the files that
/// declare versions and components. The contents of other files are left out: changing them
/// changes neither Moodle's component cache (which lists names) nor whether the code matches the
/// database (which compares versions).
///
/// Two digests come from one walk. `answers`: the names and every `version.php`,
/// `lib/components.json`, `db/subplugins.json`, `db/subplugins.php` — two trees with the same one
/// get the same answer to `upgrade.php --is-pending` on the same database. `componentCache`: the
/// names and what `core_component` reads besides them (core's `version.php`, `components.json`,
/// `apis.json`, `db/subplugins.*`, `db/renamedclasses.php`), not a plugin's `version.php` — two
/// trees with the same one get the same component cache (for their own paths), so a plugin's
/// version bump rebuilds none. The helper asks Moodle once per digest instead of once per copy and
/// step (each question is a bootstrap of PHP). The walk goes through descriptors that never follow
/// a link; VCS metadata and the files a tree makes for itself (its component cache) are left out.
enum CodeFingerprint {
    /// Files whose contents count for `answers`, by name.
    static let declaringNames: Set<String> = ["version.php", "components.json", "subplugins.json", "subplugins.php"]
    /// True when the trees the preflight compared give Moodle's "pending?" the same answer: no
    /// entry added or removed, no file changed that declares versions or components
    /// (`declaringNames`).
    static func sameAnswers(_ differences: PreflightReport) -> Bool {
        differences.added.isEmpty && differences.removed.isEmpty
            && !differences.changed.contains { file in
                declaringNames.contains(String(file.split(separator: "/").last ?? ""))
            }
    }

    /// Files whose contents count for `componentCache`, by name, besides core's `version.php`.
    static let componentNames: Set<String> = [
        "components.json", "apis.json", "subplugins.json", "subplugins.php", "renamedclasses.php",
    ]
    /// Core's `version.php` (its `$version` is in the component cache), in both layouts.
    static let coreVersionFiles: Set<String> = ["version.php", "public/version.php"]
    /// The most bytes of one declaring file that are read (Moodle's are a few kB).
    static let fileLimit = 1 << 20

    /// The two digests of a tree.
    struct Digests: Equatable {
        /// For Moodle's answer to `upgrade.php --is-pending`.
        var answers: String
        /// For the tree's component cache.
        var componentCache: String
    }

    /// The `answers` digest of the tree at `root` (hex SHA-256); nil when it cannot be read whole.
    static func of(_ root: String, leavingOut: Set<String> = []) -> String? {
        digests(of: root, leavingOut: leavingOut)?.answers
    }

    /// Both digests of the tree at `root`; nil when it cannot be read whole.
    static func digests(of root: String, leavingOut: Set<String> = []) -> Digests? {
        guard let top = try? System.openDirectory(at: AT_FDCWD, root) else { return nil }
        defer { System.close(top) }
        var answers = SHA256()
        var cache = SHA256()
        var pending = [""]
        while let relative = pending.popLast() {
            guard let folder = try? System.openDirectory(at: top, relative) else { return nil }
            defer { System.close(folder) }
            guard let listed = try? System.listDirectory(fd: folder) else { return nil }
            for entry in listed.sorted(by: { $0.name < $1.name }) {
                let path = relative.isEmpty ? entry.name : "\(relative)/\(entry.name)"
                if leavingOut.contains(path) { continue }
                let entryKind = entry.kind ?? (try? System.lstatus(at: folder, entry.name))?.kind
                let kind: String
                switch entryKind {
                case .directory?:
                    if TreeCopier.versionControlNames.contains(entry.name) { continue }
                    pending.append(path)
                    kind = "d"
                case .regular?: kind = "f"
                case .symlink?: kind = "l:" + ((try? System.readLink(at: folder, entry.name)) ?? "?")
                default: kind = "o"
                }
                let line = Array("\(kind) \(path)\n".utf8)
                answers.update(data: line)
                cache.update(data: line)
                guard entryKind == .regular else { continue }
                let forAnswers = declaringNames.contains(entry.name)
                let forCache = componentNames.contains(entry.name) || coreVersionFiles.contains(path)
                guard forAnswers || forCache else { continue }
                guard let fd = try? System.open(at: folder, entry.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) else {
                    return nil
                }
                defer { System.close(fd) }
                guard let bytes = try? System.readAll(fd, limit: fileLimit, name: path) else { return nil }
                let counted = Array("\(bytes.count)\n".utf8)
                if forAnswers {
                    answers.update(data: counted)
                    answers.update(data: bytes)
                }
                if forCache {
                    cache.update(data: counted)
                    cache.update(data: bytes)
                }
            }
        }
        return Digests(answers: hexString(answers.finalize()), componentCache: hexString(cache.finalize()))
    }
}
