/// What to do when the code owner cannot reach the upstream: `init` (and so `scripts/install`)
/// asks the upstream as the code owner right after adopting a site, and turns the VCS's own
/// reason into the commands that fix it. Switch and run-all ask again before every delivery.
public enum UpstreamAccess {
    /// The commands to run, for the reason the VCS gave (`error.message` keeps its first lines).
    /// - Parameters:
    ///   - owner: the code owner the VCS ran as.
    ///   - remote: the upstream's address (git's remote URL, svn's repository root), when known.
    ///   - kind, tree: the VCS and production's working copy, for the command that checks again.
    ///   - look: how a local upstream's group and mode are read: as the code owner by default
    ///     (`lookAsOwner`), so that root never resolves a path the code owner chose (its remote).
    public static func advice(
        for error: DeliveryError, owner: UserIdentity, remote: String?, kind: VersionControlKind, tree: String,
        look: ((String) -> LocalUpstream)? = nil
    ) -> [String] {
        let message = error.message
        let lowered = message.lowercased()
        let asOwner = "setpriv --reuid=\(owner.name) --regid=\(owner.gid) --init-groups"
        var steps: [String] = []
        let dubious = lowered.contains("dubious ownership")
        if dubious, let path = quoted(after: "repository at", in: message) {
            steps.append(
                "git refuses a repository owned by another user. If you trust it, as root: git config --system --add safe.directory \(path)"
            )
        }
        let ssh = remote.map { $0.hasPrefix("ssh://") || ($0.contains("@") && $0.contains(":") && !$0.contains("://")) }
        if lowered.contains("publickey") || lowered.contains("host key verification") || ssh == true {
            let key = "\(owner.home)/.ssh/id_ed25519"
            steps.append(
                "The code owner \(owner.name) reaches the upstream over SSH with its own key, \(key).pub. Make one if it has none: \(asOwner) ssh-keygen -t ed25519 -N '' -f \(key)"
            )
            steps.append("Add that public key to the upstream as a read-only deploy key.")
            if let host = remote.flatMap(sshHost) {
                steps.append(
                    "Accept the server's host key once, as the code owner: \(asOwner) ssh -o StrictHostKeyChecking=accept-new -T \(host)"
                )
            }
        }
        // A local repository: git says "does not appear to be a git repository" for one its user
        // may not read; the code owner looks whether it is there (stat needs no right on it).
        let local = remote.map { $0.hasPrefix("file://") ? String($0.dropFirst(7)) : $0 }.flatMap {
            $0.hasPrefix("/") ? $0 : nil
        }
        // git's own refusal says it all: the owner reads the repository, git does not trust it.
        let seen = ssh == true || dubious ? nil : local.map { (look ?? { lookAsOwner($0, owner: owner) })($0) }
        if let local, case .present(let group, let mode) = seen, mode & 0o005 != 0o005 {
            let how =
                group == "root"
                // Joining root's group would give the code owner far more than this repository.
                ? "give it a group of its own, as root: chgrp -R \(owner.name) \(local) && chmod -R g+rX \(local)"
                : "as root, usermod -aG \(group) \(owner.name)\(mode & 0o050 == 0o050 ? "" : " && chmod -R g+rX \(local)")"
            steps.append(
                "\(local) is there, but the code owner \(owner.name) may not read it (group \(group), mode \(String(mode, radix: 8))): \(how)"
            )
        } else if let local, case .unreachable = seen {
            steps.append(
                "The code owner \(owner.name) cannot reach \(local) (a folder on the way is closed to it, or it is not there): give it access to the folders above, or check the address."
            )
        } else if lowered.contains("does not appear to be a git repository") || lowered.contains("no repository found")
            || lowered.contains("does not exist")
        {
            steps.append(
                "The upstream \(remote ?? "") is not there, or is not a repository: check its address (git remote -v, svn info, CVS/Root in the tree)."
            )
        }
        steps.append(
            "\(steps.isEmpty ? "Check" : "Then check"), as root: \(asOwner) \(checkCommand(kind: kind, tree: tree, remote: remote))"
        )
        return steps
    }

    /// What the code owner sees of a local upstream.
    public enum LocalUpstream: Equatable, Sendable {
        /// It is there, with this group and mode (the owner may still be unable to read it).
        case present(group: String, mode: UInt32)
        /// Not there, as far as the code owner can tell.
        case absent
        /// A folder on the way is closed to the code owner.
        case unreachable
    }

    /// Asks `stat` as the code owner what is at a path: the path is the code owner's choice (its
    /// remote), so root never resolves it.
    public static func lookAsOwner(_ path: String, owner: UserIdentity) -> LocalUpstream {
        guard let stat = ChildProcess.locate("stat") else { return .unreachable }
        let command = Command(
            stat, ["--format", "%G %a", "--", path], user: owner, timeoutSeconds: 10, outputLimit: 4096)
        guard let result = try? ChildProcess.run(command, onLine: { _ in }) else { return .unreachable }
        if result.exitCode == 0 {
            let parts = result.standardOutput.trimmingWhitespace().split(separator: " ")
            if parts.count == 2, let mode = UInt32(parts[1], radix: 8) {
                return .present(group: String(parts[0]), mode: mode)
            }
            return .unreachable
        }
        return result.standardError.contains("No such file or directory") ? .absent : .unreachable
    }

    /// The text between the quotes after `marker` (git quotes paths with ').
    static func quoted(after marker: String, in text: String) -> String? {
        guard let range = text.range(of: marker) else { return nil }
        let rest = text[range.upperBound...]
        guard let open = rest.firstIndex(of: "'") else { return nil }
        let tail = rest[rest.index(after: open)...]
        guard let close = tail.firstIndex(of: "'") else { return nil }
        return String(tail[..<close])
    }

    /// `user@host` of an SSH remote (`git@forge:group/moodle.git`, `ssh://git@forge/moodle.git`).
    static func sshHost(_ remote: String) -> String? {
        var rest = Substring(remote)
        if rest.hasPrefix("ssh://") { rest = rest.dropFirst(6) }
        let end = rest.firstIndex { $0 == ":" || $0 == "/" } ?? rest.endIndex
        let host = rest[..<end]
        return host.isEmpty ? nil : String(host)
    }

    static func checkCommand(kind: VersionControlKind, tree: String, remote: String?) -> String {
        switch kind {
        case .git: "git -C \(tree) ls-remote \(remote ?? "origin")"
        case .svn: "svn info --non-interactive --revision HEAD \(tree)"
        case .cvs: "env --chdir=\(tree) cvs -n -q update"
        }
    }
}
