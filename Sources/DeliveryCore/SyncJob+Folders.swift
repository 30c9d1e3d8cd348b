import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// One folder of a synchronisation: its entries compared, copied, linked or removed; then the folders' metadata.
extension SyncJob {
    func synchronizeDirectory(_ folder: Folder) throws(DeliveryError) {
        let relative = folder.relative
        var local = CopyStatistics()
        var scripts: [String] = []
        defer {
            statistics.withLock { $0.add(local) }
            if !scripts.isEmpty { changedScripts.withLock { $0 += scripts } }
        }
        var folders: OpenFolders?
        defer {
            if let folders {
                System.close(folders.source)
                System.close(folders.target)
                if case .some(.some(let link)) = folders.link { System.close(link) }
            }
        }
        do {
            let source = try System.openDirectory(at: roots.source, relative)
            let target: Int32
            do {
                target = try System.openDirectory(at: roots.target, relative)
            } catch {
                System.close(source)
                throw error
            }
            folders = OpenFolders(source: source, target: target)
            let sourceStatus = folder.status
            local.directories += 1
            // Names of the target not (yet) seen in the source: what is left is removed.
            var targetNames: [String: FileKind?] = [:]
            var changedHere = folder.created
            if !folder.created {
                for entry in try System.listDirectory(fd: target) { targetNames[entry.name] = entry.kind }
                if let targetStatus = folder.targetStatus, !same(sourceStatus, targetStatus) { changedHere = true }
            }
            // Entries seen, added to the shared count once per folder.
            var seen = 0
            defer { entriesDone.add(seen, ordering: .relaxed) }
            for entry in try System.listDirectory(fd: source) {
                let name = entry.name
                let inTarget = !targetNames.isEmpty && targetNames.removeValue(forKey: name) != nil
                if !skip.isEmpty && skip.contains(child(of: relative, name)) { continue }
                let status = try System.lstatus(at: source, name)
                if TreeCopier.versionControlNames.contains(name)
                    && (status.kind == .directory || (name == ".git" && status.kind == .regular))
                {
                    // Left out of the copy, and out of the target when it is there.
                    if inTarget { targetNames[name] = .some(nil) }
                    continue
                }
                seen += 1
                let existing = inTarget ? try System.lstatusIfExists(at: target, name) : nil
                switch status.kind {
                case .directory:
                    if let existing, existing.kind == .directory {
                        enqueue(
                            Folder(
                                relative: child(of: relative, name), created: false, createdWithMode: false,
                                status: status, targetStatus: existing))
                        continue
                    }
                    try difference(&local)
                    local.changedOther -= 1
                    if existing != nil { try TreeCopier.removeEntry(at: target, name) }
                    // Made searchable and writable for the copy; its own mode comes last.
                    let direct = creatable(withMode: status.mode) && status.mode & 0o700 == 0o700
                    try System.makeDirectory(at: target, name, direct ? mode_t(status.mode) : 0o700)
                    local.changedOther += 1
                    changedHere = true
                    enqueue(
                        Folder(
                            relative: child(of: relative, name), created: true, createdWithMode: direct,
                            status: status, targetStatus: nil))
                case .regular:
                    local.files += 1
                    local.bytes += status.size
                    if let existing, same(status, existing) { continue }
                    try difference(&local)
                    local.changedOther -= 1
                    changedHere = true
                    try placeFile(
                        name, status: status, existing: existing, in: folder,
                        folders: &folders!, statistics: &local)
                    if recordingScripts && name.hasSuffix(".php") { scripts.append(child(of: relative, name)) }
                case .symlink:
                    local.symlinks += 1
                    let linkTarget = try System.readLink(at: source, name)
                    if linkTarget.hasPrefix("/") && (linkTarget == sourceRoot || linkTarget.hasPrefix(sourceRoot + "/"))
                    {
                        local.absoluteLinksIntoSource.append(child(of: relative, name))
                    }
                    if let existing, existing.kind == .symlink, same(status, existing),
                        (try? System.readLink(at: target, name)) == linkTarget
                    {
                        continue
                    }
                    try difference(&local)
                    changedHere = true
                    let made = existing == nil ? name : temporaryName(name)
                    try System.symlink(target: linkTarget, at: target, made)
                    _ = try copier.giveOwner(of: status, name: child(of: relative, name), made: madeOwner(in: folder)) {
                        uid, gid throws(SystemCallError) in try System.changeOwner(at: target, made, uid: uid, gid: gid)
                    }
                    try System.setTimes(
                        at: target, made, seconds: status.modificationSeconds,
                        nanoseconds: status.modificationNanoseconds)
                    if let existing {
                        if existing.kind == .directory { try TreeCopier.removeEntry(at: target, name) }
                        try System.rename(at: target, made, name)
                    }
                case .other:
                    local.skipped.append(child(of: relative, name))
                }
            }
            for (name, _) in targetNames {
                try difference(&local)
                local.changedOther -= 1
                local.entriesRemoved += 1
                changedHere = true
                try TreeCopier.removeEntry(at: target, name)
            }
            // Nothing changes this folder's own entries any more (its subfolders' contents are
            // theirs): its times can be set now. A mode without the owner's search bit would stop
            // the copy reaching its subfolders, so such a folder waits for the end.
            if changedHere {
                if checkOnly {
                    try difference(&local)
                } else if copier.preserveOwnership || sourceStatus.mode & 0o100 != 0 {
                    try setMetadata(of: folder, fd: target)
                } else {
                    directoriesToFix.withLock { $0.append(folder) }
                }
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("copy failed at '\(relative.isEmpty ? "." : relative)'", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "copy failed at '\(relative)': \(error)")
        }
    }

    /// The relative path of an entry of a folder (made only when needed: most entries never need it).
    func child(of relative: String, _ name: String) -> String {
        relative.isEmpty ? name : "\(relative)/\(name)"
    }

    /// The absolute path of an entry of the target.
    func path(_ relative: String) -> String {
        relative.isEmpty ? targetRoot : "\(targetRoot)/\(relative)"
    }

    /// Puts a regular file in place: a hard link from the tree to share with when the file is
    /// unchanged there, else a copy. A file replacing an existing entry is made under a temporary
    /// name and renamed over it, so that no existing inode is ever changed.
    func placeFile(
        _ name: String, status: FileStatus, existing: FileStatus?, in folder: Folder,
        folders: inout OpenFolders, statistics local: inout CopyStatistics
    ) throws {
        let made = existing == nil ? name : temporaryName(name)
        var linked = false
        if let linkRoot = roots.link {
            if case .none = folders.link {
                folders.link = .some(try? System.openDirectory(at: linkRoot, folder.relative))
            }
            if case .some(.some(let link)) = folders.link, let old = try System.lstatusIfExists(at: link, name),
                old.kind == .regular, same(status, old)
            {
                do {
                    try System.link(at: link, name, to: folders.target, made)
                    linked = true
                } catch {
                    if error.errno != EMLINK && error.errno != EXDEV && error.errno != EPERM { throw error }
                }
            }
        }
        if linked {
            local.filesLinked += 1
        } else {
            local.filesCopied += 1
            let input = try System.open(at: folders.source, name, O_RDONLY | O_NOFOLLOW)
            defer { System.close(input) }
            let direct = creatable(withMode: status.mode)
            let output = try System.open(
                at: folders.target, made, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                direct ? mode_t(status.mode) : 0o600)
            defer { System.close(output) }
            var cloned = false
            if status.size > 0 && !cloneUnsupported.load(ordering: .relaxed) {
                switch System.cloneContents(from: input, to: output) {
                case .cloned: cloned = true
                case .unsupported: cloneUnsupported.store(true, ordering: .relaxed)
                case .failed: break
                }
            }
            if !cloned { try System.copyContents(from: input, to: output, size: status.size, tryClone: false) }
            let ownerChanged = try copier.giveOwner(of: status, name: name, made: madeOwner(in: folder)) {
                uid, gid throws(SystemCallError) in try System.fileChangeOwner(output, uid: uid, gid: gid)
            }
            if !direct || ownerChanged { try System.fileChangeMode(output, status.mode) }
            try System.setTimes(
                fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
        }
        if let existing {
            if existing.kind == .directory { try TreeCopier.removeEntry(at: folders.target, name) }
            try System.rename(at: folders.target, made, name)
        }
    }

    /// Sets a folder's owner, mode and times from the source, through its open descriptor.
    func setMetadata(of folder: Folder, fd: Int32) throws(SystemCallError) {
        let status = folder.status
        let ownerChanged = try copier.giveOwner(of: status, name: folder.relative, made: madeOwner(in: folder)) {
            uid, gid throws(SystemCallError) in try System.fileChangeOwner(fd, uid: uid, gid: gid)
        }
        if !folder.createdWithMode || ownerChanged { try System.fileChangeMode(fd, status.mode) }
        try System.setTimes(fd: fd, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
    }

    /// Sets the mode, owner and times of the folders left for the end (modes that would have
    /// stopped the copy), deepest first.
    func fixDirectories() throws(DeliveryError) {
        var folders = directoriesToFix.withLock { $0 }
        folders.sort { $0.relative.count > $1.relative.count }
        do {
            for folder in folders {
                let status = folder.status
                let relative = folder.relative
                let ownerChanged = try copier.giveOwner(of: status, name: relative, made: madeOwner(in: folder)) {
                    uid, gid throws(SystemCallError) in
                    try System.changeOwner(at: roots.target, relative.isEmpty ? "." : relative, uid: uid, gid: gid)
                }
                if !folder.createdWithMode || ownerChanged {
                    try System.changeMode(at: roots.target, relative, status.mode)
                }
                try System.setTimes(
                    at: roots.target, relative, seconds: status.modificationSeconds,
                    nanoseconds: status.modificationNanoseconds)
            }
        } catch {
            throw DeliveryError.io("cannot set folder times", error)
        }
    }

    /// A component that is a single file: `component` below the tree roots `source` and `target`,
    /// reached through descriptors only.
    static func synchronizeSingle(
        copier: TreeCopier, source root: String, target targetRoot: String, component: String, status: FileStatus,
        checkOnly: Bool, recordingScripts: Bool
    ) throws(DeliveryError) -> CopyStatistics {
        var local = CopyStatistics()
        let name = lastComponent(of: component)
        let source = "\(root)/\(component)"
        do {
            let targetFolder = try Roots.open(
                targetRoot, below: component.contains("/") ? parentDirectory(of: component) : nil)
            defer { System.close(targetFolder) }
            let existing = try System.lstatusIfExists(at: targetFolder, name)
            guard status.kind == .regular else {
                local.skipped.append(lastComponent(of: source))
                return local
            }
            local.files = 1
            local.bytes = status.size
            let sameFile =
                existing.map {
                    $0.kind == status.kind && $0.size == status.size && $0.mode == status.mode
                        && $0.modificationSeconds == status.modificationSeconds
                        && $0.modificationNanoseconds == status.modificationNanoseconds
                        && copier.ownersMatch(status, $0)
                } ?? false
            if sameFile { return local }
            if checkOnly {
                local.changedOther = 1
                return local
            }
            let sourceFolder = try Roots.open(
                root, below: component.contains("/") ? parentDirectory(of: component) : nil)
            defer { System.close(sourceFolder) }
            let made = existing == nil ? name : ".\(name).delivery-\(UInt32.random(in: 0...UInt32.max))"
            let input = try System.open(at: sourceFolder, name, O_RDONLY | O_NOFOLLOW)
            defer { System.close(input) }
            let output = try System.open(at: targetFolder, made, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
            defer { System.close(output) }
            try System.copyContents(from: input, to: output, size: status.size)
            _ = try copier.giveOwner(of: status, name: component, made: nil) { uid, gid throws(SystemCallError) in
                try System.fileChangeOwner(output, uid: uid, gid: gid)
            }
            try System.fileChangeMode(output, status.mode)
            try System.setTimes(
                fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
            if let existing {
                if existing.kind == .directory { try TreeCopier.removeEntry(at: targetFolder, name) }
                try System.rename(at: targetFolder, made, name)
            }
            local.filesCopied = 1
            if recordingScripts && name.hasSuffix(".php") { local.changedScripts = [""] }
        } catch {
            throw DeliveryError.io("copy failed at '\(source)'", error)
        }
        return local
    }
}
