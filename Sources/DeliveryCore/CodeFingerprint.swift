import Crypto

#if canImport(Glibc)
    import Glibc
#endif

/// What Moodle's answers about a tree depend on, as one digest: the name and kind of every entry
/// (a plugin, a class or a script added, removed or renamed) and the contents of the files that
/// declare versions and components (`version.php`, `lib/components.json`, `db/subplugins.json`,
/// `db/subplugins.php`). The contents of other files are left out: changing them changes neither
/// Moodle's component cache (which lists names) nor whether the code matches the database (which
/// compares versions).
///
/// Two trees with the same fingerprint get the same component cache (for their own paths) and the
/// same answer to `upgrade.php --is-pending` on the same database: the helper asks Moodle once per
/// fingerprint instead of once per copy and step (each question is a bootstrap of PHP). The walk
/// goes through descriptors that never follow a link; VCS metadata and the files a tree makes for
/// itself (its component cache) are left out.
enum CodeFingerprint {
    /// Files whose contents count, by name.
    static let declaringNames: Set<String> = ["version.php", "components.json", "subplugins.json", "subplugins.php"]
    /// The most bytes of one declaring file that are read (Moodle's are a few kB).
    static let fileLimit = 1 << 20

    /// The fingerprint of the tree at `root` (hex SHA-256); nil when it cannot be read whole.
    static func of(_ root: String, leavingOut: Set<String> = []) -> String? {
        guard let top = try? System.openDirectory(at: AT_FDCWD, root) else { return nil }
        defer { System.close(top) }
        var hasher = SHA256()
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
                hasher.update(data: Array("\(kind) \(path)\n".utf8))
                if entryKind == .regular && declaringNames.contains(entry.name) {
                    guard let fd = try? System.open(at: folder, entry.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) else {
                        return nil
                    }
                    defer { System.close(fd) }
                    guard let bytes = try? System.readAll(fd, limit: fileLimit, name: path) else { return nil }
                    hasher.update(data: Array("\(bytes.count)\n".utf8))
                    hasher.update(data: bytes)
                }
            }
        }
        return hexString(hasher.finalize())
    }
}
