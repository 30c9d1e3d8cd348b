import Foundation
import Testing

@testable import DeliveryCore

@Suite("What to do when the code owner cannot reach the upstream")
struct UpstreamAccessTests {
    let owner = UserIdentity(name: "moodle-code", uid: 998, gid: 998, home: "/var/lib/moodle-code")

    @Test("dubious ownership: the safe.directory line for the repository git names")
    func dubiousOwnership() {
        let error = DeliveryError(
            .vcsFailed,
            "git ls-remote origin failed: exit status 128: fatal: detected dubious ownership in repository at '/srv/upstream.git' | To add an exception …"
        )
        let advice = UpstreamAccess.advice(
            for: error, owner: owner, remote: "/srv/upstream.git", kind: .git, tree: "/srv/site/releases/production")
        #expect(advice.first?.contains("git config --system --add safe.directory /srv/upstream.git") == true)
        #expect(
            advice.last
                == "Then check, as root: setpriv --reuid=moodle-code --regid=998 --init-groups git -C /srv/site/releases/production ls-remote /srv/upstream.git"
        )
    }

    @Test("an SSH remote: the owner's key, the deploy key, the host key accepted once")
    func ssh() {
        let error = DeliveryError(
            .vcsFailed,
            "git ls-remote origin failed: the remote is unreachable: git@forge.example.edu: Permission denied (publickey)."
        )
        let advice = UpstreamAccess.advice(
            for: error, owner: owner, remote: "git@forge.example.edu:school/moodle.git", kind: .git, tree: "/t")
        #expect(
            advice.contains { $0.contains("/var/lib/moodle-code/.ssh/id_ed25519.pub") && $0.contains("ssh-keygen") })
        #expect(advice.contains { $0.contains("read-only deploy key") })
        #expect(advice.contains { $0.hasSuffix("ssh -o StrictHostKeyChecking=accept-new -T git@forge.example.edu") })
        #expect(!advice.contains { $0.contains("usermod") })
        #expect(UpstreamAccess.sshHost("ssh://git@forge.example.edu:2222/moodle.git") == "git@forge.example.edu")
    }

    @Test(
        "a local repository the owner may not read (git calls it 'not a repository'): the group to join, looked at as the owner",
        .enabled(if: getuid() == 0, "runs stat as another user"))
    func permissions() throws {
        let directory = TemporaryDirectory()
        let error = DeliveryError(
            .vcsFailed,
            "git ls-remote origin failed: the remote is unreachable: fatal: '\(directory.path)' does not appear to be a git repository"
        )
        // Closed to others, group root: never "join root's group".
        chmod(directory.path, 0o750)
        let advice = UpstreamAccess.advice(for: error, owner: owner, remote: directory.path, kind: .git, tree: "/t")
        #expect(System.groupName(try System.status(directory.path).gid) == "root")
        #expect(
            advice.first?.hasPrefix("\(directory.path) is there, but the code owner moodle-code may not read it")
                == true)
        #expect(
            advice.first?.hasSuffix(
                "chgrp -R moodle-code \(directory.path) && chmod -R g+rX \(directory.path)") == true, "\(advice)")
        #expect(!advice.contains { $0.contains("usermod") })
        // Another group that may read it: join that group.
        chown(directory.path, 0, 65534)
        let shared = UpstreamAccess.advice(for: error, owner: owner, remote: directory.path, kind: .git, tree: "/t")
        let group = System.groupName(65534)
        #expect(shared.first?.hasSuffix("usermod -aG \(group) moodle-code") == true, "\(shared)")
        // Readable by everyone: not a question of rights, the address is what to check.
        chmod(directory.path, 0o755)
        let open = UpstreamAccess.advice(for: error, owner: owner, remote: directory.path, kind: .git, tree: "/t")
        #expect(open.first?.contains("is not there, or is not a repository") == true, "\(open)")
        // git refusing a repository it does not trust: safe.directory alone, no rights to change.
        let dubious = DeliveryError(
            .vcsFailed,
            "git ls-remote origin failed: fatal: detected dubious ownership in repository at '\(directory.path)'")
        let trust = UpstreamAccess.advice(for: dubious, owner: owner, remote: directory.path, kind: .git, tree: "/t")
        #expect(trust.count == 2 && trust[0].contains("safe.directory"), "\(trust)")
        // Not there at all: the address is what to check.
        let gone = UpstreamAccess.advice(
            for: error, owner: owner, remote: directory.path + "/gone", kind: .git, tree: "/t")
        #expect(gone.first?.contains("is not there, or is not a repository") == true)
        // Behind a folder closed to the code owner: root does not look for it.
        let closed = "\(directory.path)/closed"
        try FileManager.default.createDirectory(atPath: "\(closed)/upstream.git", withIntermediateDirectories: true)
        chmod(closed, 0o700)
        let hidden = UpstreamAccess.advice(
            for: error, owner: owner, remote: "\(closed)/upstream.git", kind: .git, tree: "/t")
        #expect(
            hidden.first?.hasPrefix("The code owner moodle-code cannot reach \(closed)/upstream.git") == true,
            "\(hidden)")
        #expect(
            UpstreamAccess.checkCommand(kind: .svn, tree: "/t", remote: nil)
                == "svn info --non-interactive --revision HEAD /t")
        #expect(UpstreamAccess.checkCommand(kind: .cvs, tree: "/t", remote: nil) == "env --chdir=/t cvs -n -q update")
    }
}
