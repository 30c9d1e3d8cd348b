#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What a mirror copy did.
public struct CopyStatistics: Sendable, Codable, Equatable {
    /// Regular files in the new copy.
    public var files = 0
    /// Folders in the new copy (its root included).
    public var directories = 0
    /// Symlinks in the new copy.
    public var symlinks = 0
    /// Bytes of file contents in the new copy.
    public var bytes: Int64 = 0
    /// Files whose contents were copied (the rest were unchanged and shared with the previous copy).
    public var filesCopied = 0
    /// Entries left out: sockets, fifos, devices (relative paths).
    public var skipped: [String] = []
    /// Absolute symlinks pointing into the source tree (they would serve the source, not the copy).
    public var absoluteLinksIntoSource: [String] = []

    /// Makes empty statistics.
    public init() {}
}

/// Mirrors a code tree into a new folder: deletions propagate (the destination is new), dotfiles,
/// symlinks (copied as links, never followed), modes, mtimes and, as root, owners are kept; VCS
/// metadata (`.git`, `.svn`, `CVS`) is left out.
///
/// Unchanged files (same size, mtime, mode and owner as in `previous`, the last complete version
/// of the same copy) are hard-linked from it instead of copied. Copies are never written in place
/// (every refresh builds a new tree and swaps it in), so sharing inodes with the previous version
/// is safe. Contents are copied with reflinks where the file system supports them, else
/// `copy_file_range`.
public struct TreeCopier: Sendable {
    /// Names of folders (and `.git` files of submodules) never copied.
    public static let versionControlNames: Set<String> = [".git", ".svn", "CVS"]

    /// Keep owners (possible only as root).
    public var preserveOwnership: Bool

    /// Makes a copier; owners are kept when running as root.
    public init(preserveOwnership: Bool = System.effectiveUserIdentifier == 0) {
        self.preserveOwnership = preserveOwnership
    }

    /// Copies `source` to `destination`, which must not exist yet.
    ///
    /// - Parameters:
    ///   - source: the tree (or single file) to copy.
    ///   - destination: a new path on the same file system as `previous`.
    ///   - previous: the matching path in the last complete copy, to share unchanged files with.
    ///   - onProgress: called every few hundred entries with the count of entries done.
    ///   - shouldContinue: polled regularly; returning false stops the copy with `.preempted`.
    /// - Throws: `DeliveryError` `.io` with the path; what was written is left for the caller to remove.
    public func mirror(
        from source: String, to destination: String, sharingUnchangedWith previous: String? = nil,
        onProgress: @escaping (Int) -> Void = { _ in }, shouldContinue: @escaping () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        var run = CopyRun(
            copier: self, sourceRoot: source, previousRoot: previous, onProgress: onProgress,
            shouldContinue: shouldContinue)
        let status: FileStatus
        do {
            status = try System.lstatus(source)
        } catch {
            throw DeliveryError.io("cannot read the source tree", error)
        }
        try run.copyEntry(relative: "", status: status, destination: destination)
        return run.statistics
    }

    /// Removes a tree without following symlinks, making read-only folders writable first.
    public static func removeTree(_ path: String) throws(DeliveryError) {
        let status: FileStatus?
        do {
            status = try System.lstatusIfExists(path)
        } catch {
            throw DeliveryError.io("cannot remove \(path)", error)
        }
        guard let status else { return }
        do {
            if status.kind == .directory {
                if status.mode & 0o700 != 0o700 { try System.changeMode(path, status.mode | 0o700) }
                for entry in try System.listDirectory(path) {
                    let child = "\(path)/\(entry.name)"
                    if entry.kind == .directory || entry.kind == nil {
                        try removeTree(child)
                    } else {
                        try System.unlink(child)
                    }
                }
                try System.removeDirectory(path)
            } else {
                try System.unlink(path)
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot remove \(path)", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "cannot remove \(path): \(error)")
        }
    }
}

/// Hard-links a file; false (copy instead) on too many links, another file system or protected links.
private func linkOrDecline(_ existing: String, _ new: String) throws(SystemCallError) -> Bool {
    do {
        try System.link(existing, new)
        return true
    } catch {
        if error.errno == EMLINK || error.errno == EXDEV || error.errno == EPERM { return false }
        throw error
    }
}

private struct CopyRun {
    let copier: TreeCopier
    let sourceRoot: String
    let previousRoot: String?
    let onProgress: (Int) -> Void
    let shouldContinue: () -> Bool
    var statistics = CopyStatistics()
    var entriesDone = 0

    init(
        copier: TreeCopier, sourceRoot: String, previousRoot: String?, onProgress: @escaping (Int) -> Void,
        shouldContinue: @escaping () -> Bool
    ) {
        self.copier = copier
        self.sourceRoot = sourceRoot
        self.previousRoot = previousRoot
        self.onProgress = onProgress
        self.shouldContinue = shouldContinue
    }

    private func sourcePath(_ relative: String) -> String {
        relative.isEmpty ? sourceRoot : "\(sourceRoot)/\(relative)"
    }

    mutating func copyEntry(relative: String, status: FileStatus, destination: String) throws(DeliveryError) {
        entriesDone += 1
        if entriesDone % 512 == 0 {
            onProgress(entriesDone)
            if !shouldContinue() {
                throw DeliveryError(.preempted, "the copy was stopped before it finished")
            }
        }
        let source = sourcePath(relative)
        do {
            switch status.kind {
            case .directory:
                try copyDirectory(relative: relative, status: status, destination: destination)
            case .regular:
                try copyFile(relative: relative, source: source, status: status, destination: destination)
            case .symlink:
                let target = try System.readLink(source)
                try System.symlink(target: target, at: destination)
                if copier.preserveOwnership { try System.changeOwner(destination, uid: status.uid, gid: status.gid) }
                try System.setTimes(
                    destination, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
                if target.hasPrefix("/") && (target == sourceRoot || target.hasPrefix(sourceRoot + "/")) {
                    statistics.absoluteLinksIntoSource.append(relative)
                }
                statistics.symlinks += 1
            case .other:
                statistics.skipped.append(relative)
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("copy failed at '\(relative.isEmpty ? "." : relative)'", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "copy failed at '\(relative)': \(error)")
        }
    }

    private mutating func copyDirectory(relative: String, status: FileStatus, destination: String) throws {
        try System.makeDirectory(destination, 0o700)
        statistics.directories += 1
        let entries = try System.listDirectory(sourcePath(relative)).sorted { $0.name < $1.name }
        for entry in entries {
            let childRelative = relative.isEmpty ? entry.name : "\(relative)/\(entry.name)"
            let childStatus = try System.lstatus(sourcePath(childRelative))
            if TreeCopier.versionControlNames.contains(entry.name)
                && (childStatus.kind == .directory || (entry.name == ".git" && childStatus.kind == .regular))
            {
                continue
            }
            try copyEntry(relative: childRelative, status: childStatus, destination: "\(destination)/\(entry.name)")
        }
        if copier.preserveOwnership { try System.changeOwner(destination, uid: status.uid, gid: status.gid) }
        try System.changeMode(destination, status.mode)
        try System.setTimes(
            destination, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
    }

    private mutating func copyFile(relative: String, source: String, status: FileStatus, destination: String) throws {
        statistics.files += 1
        statistics.bytes += status.size
        if let previousRoot {
            let previous = relative.isEmpty ? previousRoot : "\(previousRoot)/\(relative)"
            if let old = try System.lstatusIfExists(previous), old.kind == .regular, old.size == status.size,
                old.modificationSeconds == status.modificationSeconds,
                old.modificationNanoseconds == status.modificationNanoseconds, old.mode == status.mode,
                !copier.preserveOwnership || (old.uid == status.uid && old.gid == status.gid)
            {
                if try linkOrDecline(previous, destination) { return }
            }
        }
        statistics.filesCopied += 1
        let input = try System.open(source, O_RDONLY | O_NOFOLLOW)
        defer { System.close(input) }
        let output = try System.open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        defer { System.close(output) }
        try System.copyContents(from: input, to: output, size: status.size)
        if copier.preserveOwnership { try System.fileChangeOwner(output, uid: status.uid, gid: status.gid) }
        try System.fileChangeMode(output, status.mode)
        try System.setTimes(
            fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
    }
}
