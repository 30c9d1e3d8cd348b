#if canImport(Glibc)
    import Glibc
#endif

/// A rehearsal's tree: a copy of production (made by the copier, as the code owner) brought to
/// the upstream revision the rehearsal tries, production left untouched.
extension VersionControl {
    /// Brings `copy` from production's revision to the one of `changes`, file by file: each
    /// file the upstream adds or changes is read through the version control as the code owner
    /// (`svn cat`, `cvs update -p`) and written into the copy through descriptors (no link
    /// followed), owned by the code owner; each file it removes is removed.
    func applyUpstream(
        _ changes: UpstreamChanges, from tree: String, onto copy: String, recorder: CommandRecorder
    ) throws(DeliveryError) {
        try Self.applyFileByFile(changes, vcs: self, from: tree, onto: copy, recorder: recorder)
    }

    static func applyFileByFile(
        _ changes: UpstreamChanges, vcs: any VersionControl, from tree: String, onto copy: String,
        recorder: CommandRecorder
    ) throws(DeliveryError) {
        let owner = vcs.context.owner
        do throws(SystemCallError) {
            let root = try System.openDirectory(at: AT_FDCWD, copy)
            defer { System.close(root) }
            for file in changes.added + changes.changed where !vcs.context.isLocal(file) {
                guard let text = vcs.upstreamText(file, of: tree, changes: changes, recorder: recorder) else {
                    throw SystemCallError(errno: EIO, call: "read from the version control", path: file)
                }
                let folder = try Self.openFolder(of: file, in: root, creatingAs: owner)
                defer { if folder != root { System.close(folder) } }
                try System.writeFileAtomically(
                    at: folder, lastComponent(of: file), Array(text.utf8), mode: 0o644, owner: (owner.uid, owner.gid))
            }
            for file in changes.removed where !vcs.context.isLocal(file) {
                let folder = try Self.openFolder(of: file, in: root, creatingAs: nil)
                defer { if folder != root { System.close(folder) } }
                try TreeCopier.removeEntry(at: folder, lastComponent(of: file))
            }
        } catch {
            throw DeliveryError.io("cannot bring the rehearsal's copy to \(changes.revision.label)", error)
        }
    }

    /// The folder of a relative path in an open tree, made (for `owner`) where missing; opened
    /// through descriptors that follow no link.
    private static func openFolder(of file: String, in root: Int32, creatingAs owner: UserIdentity?)
        throws(SystemCallError) -> Int32
    {
        guard file.contains("/") else { return root }
        var folder = root
        for name in parentDirectory(of: file).split(separator: "/").map(String.init) {
            if let owner, try System.lstatusIfExists(at: folder, name) == nil {
                try System.makeDirectory(at: folder, name, 0o755)
                let made = try System.openDirectory(at: folder, name)
                defer { System.close(made) }
                try System.fileChangeOwner(made, uid: owner.uid, gid: owner.gid)
            }
            let next = try System.openDirectory(at: folder, name)
            if folder != root { System.close(folder) }
            folder = next
        }
        return folder
    }
}

extension GitRepository {
    /// git brings the copy forward itself, as the code owner, with production's repository and an
    /// index of the copy's own (`GIT_INDEX_FILE`): `read-tree -m -u` writes exactly the files
    /// that differ between the two commits (binary ones too) and removes those the upstream
    /// removed; production's index, branches and working tree are left alone.
    func applyUpstream(
        _ changes: UpstreamChanges, from tree: String, onto copy: String, recorder: CommandRecorder
    ) throws(DeliveryError) {
        let found = try git(["rev-parse", "--absolute-git-dir"], tree, recorder, echo: false)
        guard found.succeeded else { throw failure("git", "rev-parse", found) }
        let gitDirectory = found.standardOutput.trimmingWhitespace()
        let index = "\(copy)/.delivery-rehearsal-index"
        func run(_ arguments: [String]) throws(DeliveryError) -> CommandResult {
            var command = try context.command(
                "git", ["-c", "core.quotepath=off", "--git-dir=\(gitDirectory)", "--work-tree=\(copy)"] + arguments,
                in: copy)
            command.environment["GIT_INDEX_FILE"] = index
            command.lowPriority = true
            return try recorder.run(command, echo: false)
        }
        let read = try run(["read-tree", "HEAD"])
        guard read.succeeded else { throw failure("git", "read-tree", read) }
        _ = try run(["update-index", "-q", "--refresh"])
        let forward = try run(["read-tree", "-m", "-u", "HEAD", changes.revision.id])
        guard forward.succeeded else { throw failure("git", "read-tree of \(changes.revision.id.prefix(10))", forward) }
        let indexRemoval = try recorder.run(
            try context.command("rm", ["-f", "--", index], in: copy), echo: false)
        guard indexRemoval.succeeded else { throw failure("rm", "of the rehearsal's index", indexRemoval) }
    }
}
