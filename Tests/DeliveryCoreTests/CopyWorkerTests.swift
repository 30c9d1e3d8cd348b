import Foundation
import Testing

@testable import DeliveryCore

/// The copies are made by `delivery-copy` as the code owner when the engine runs as root.
@Suite(
    "Copies as the code owner (delivery-copy)",
    .enabled(if: getuid() == 0, "needs root to run the worker as another user"))
struct CopyWorkerTests {
    let owner = try! UserIdentity.lookup("nobody")
    let webGroup = try! UserIdentity.lookup("www-data").gid

    /// A small tree of root's that `nobody` can read, with a secret for the web server's group.
    func makeTree(_ directory: TemporaryDirectory) throws -> (source: String, target: String) {
        let source = "\(directory.path)/production"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(source)/mod/forum", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(directory.path)/releases", withIntermediateDirectories: true)
        try "<?php // version".write(toFile: "\(source)/version.php", atomically: false, encoding: .utf8)
        try "<?php // forum".write(toFile: "\(source)/mod/forum/lib.php", atomically: false, encoding: .utf8)
        try "<?php // secret".write(toFile: "\(source)/secret.php", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: "\(source)/mod/link", withDestinationPath: "forum/lib.php")
        chown("\(source)/secret.php", 0, webGroup)
        chmod("\(source)/secret.php", 0o640)
        return (source, "\(directory.path)/releases/.backup.a")
    }

    func copy(_ job: CopyJob, recorder: CommandRecorder, shouldContinue: () -> Bool = { true }) throws(DeliveryError)
        -> CopyStatistics
    {
        try CopyWorker.prepareTarget(job.target, for: owner)
        return try CopyWorker.run(
            job, as: owner, groups: [webGroup], recorder: recorder, shouldContinue: shouldContinue)
    }

    @Test("the copy is the code owner's, made by delivery-copy; a group it has is kept, with the mode")
    func copiesAsTheOwner() throws {
        let directory = TemporaryDirectory()
        let (source, target) = try makeTree(directory)
        let recorder = CommandRecorder(onLine: { _ in })
        let statistics = try copy(CopyJob(source: source, target: target), recorder: recorder)
        #expect(statistics.files == 3)
        #expect(TreeSnapshot(target) == TreeSnapshot(source))
        #expect(recorder.summaries.count == 1)
        #expect(recorder.summaries.first?.user == "nobody")
        #expect(recorder.summaries.first?.command.contains("/delivery-copy ") == true)
        for entry in ["", "version.php", "mod", "mod/forum/lib.php", "mod/link", "secret.php"] {
            let status = try System.lstatus(entry.isEmpty ? target : "\(target)/\(entry)")
            #expect(status.uid == owner.uid, "\(entry) belongs to nobody")
        }
        let secret = try System.lstatus("\(target)/secret.php")
        #expect(secret.gid == webGroup && secret.mode & 0o7777 == 0o640)
        // Checked again: nothing differs (the owner is not compared, the kept group is).
        let again = try copy(CopyJob(source: source, target: target, checkOnly: true), recorder: recorder)
        #expect(!again.changed)
    }

    @Test("what the code owner cannot read fails the copy with the cause and the user")
    func unreadableFails() throws {
        let directory = TemporaryDirectory()
        let (source, target) = try makeTree(directory)
        try "root only".write(toFile: "\(source)/mod/private.txt", atomically: false, encoding: .utf8)
        chmod("\(source)/mod/private.txt", 0o600)
        let error = #expect(throws: DeliveryError.self) {
            try copy(CopyJob(source: source, target: target), recorder: CommandRecorder(onLine: { _ in }))
        }
        #expect(error?.message.contains("as nobody") == true)
        #expect(error?.message.contains("Permission denied") == true, "\(error?.message ?? "")")
    }

    @Test("a group the code owner lacks, with rights others lack, is refused rather than handed to its group")
    func foreignGroupRefused() throws {
        let directory = TemporaryDirectory()
        let (source, target) = try makeTree(directory)
        chown("\(source)/version.php", owner.uid, 0)
        chmod("\(source)/version.php", 0o640)
        let error = #expect(throws: DeliveryError.self) {
            try copy(CopyJob(source: source, target: target), recorder: CommandRecorder(onLine: { _ in }))
        }
        #expect(error?.message.contains("keep group 0") == true, "\(error?.message ?? "")")
    }

    @Test("a preempted copy stops the worker")
    func preempted() throws {
        let directory = TemporaryDirectory()
        let (source, target) = try makeTree(directory)
        let error = #expect(throws: DeliveryError.self) {
            try copy(
                CopyJob(source: source, target: target), recorder: CommandRecorder(onLine: { _ in }),
                shouldContinue: { false })
        }
        #expect(error?.code == .preempted)
    }

    @Test("the component cache is built and written by the code owner's worker; what is not PHP is refused")
    func componentCache() throws {
        let directory = TemporaryDirectory()
        let (source, _) = try makeTree(directory)
        let php = try #require(ChildProcess.locate("php"))
        let script = "\(source)/cache.php"
        try "<?php echo '<?php // cache of ', get_current_user() === '' ? '?' : posix_geteuid(), \"\\n\";"
            .write(toFile: script, atomically: false, encoding: .utf8)
        _ = try sh("/bin/chown", ["-R", "nobody:", "\(source)/mod"])
        let job = ComponentCacheJob(
            php: php, script: script, codeRoot: source, treeRoot: source, file: "mod/cache-file.php", timeoutSeconds: 30
        )
        let recorder = CommandRecorder(onLine: { _ in })
        try CopyWorker.buildComponentCache(job, as: owner, groups: [webGroup], recorder: recorder)
        let written = try String(contentsOfFile: "\(source)/mod/cache-file.php", encoding: .utf8)
        #expect(written == "<?php // cache of \(owner.uid)\n", "PHP ran as the code owner")
        #expect(try System.lstatus("\(source)/mod/cache-file.php").uid == owner.uid)
        #expect(recorder.summaries.map(\.user) == ["nobody"])
        try "<?php echo 'not a cache';".write(toFile: script, atomically: false, encoding: .utf8)
        let error = #expect(throws: DeliveryError.self) {
            try CopyWorker.buildComponentCache(job, as: owner, groups: [webGroup], recorder: recorder)
        }
        #expect(error?.message.contains("could not be built as nobody") == true, "\(error?.message ?? "")")
    }

    @Test("a copy of the code owner's is emptied by it, then its folder removed by root; a tree of root's by root")
    func removal() throws {
        let directory = TemporaryDirectory()
        let (source, target) = try makeTree(directory)
        let recorder = CommandRecorder(onLine: { _ in })
        _ = try copy(CopyJob(source: source, target: target), recorder: recorder)
        chmod("\(target)/mod/forum", 0o555)
        try CopyWorker.removeTree(target, owner: owner, recorder: recorder)
        #expect(try System.lstatusIfExists(target) == nil)
        #expect(recorder.summaries.count == 2 && recorder.summaries.allSatisfy { $0.user == "nobody" })
        let leftover = "\(directory.path)/releases/.staging-old"
        try FileManager.default.createDirectory(atPath: "\(leftover)/a", withIntermediateDirectories: true)
        try CopyWorker.removeTree(leftover, owner: owner, recorder: recorder)
        #expect(try System.lstatusIfExists(leftover) == nil)
        #expect(recorder.summaries.count == 2, "root's own leftover is removed by root")
    }

    @Test("the target's root is made in root's folder and given to the code owner")
    func targetPrepared() throws {
        let directory = TemporaryDirectory()
        let (_, target) = try makeTree(directory)
        try "not a folder".write(toFile: target, atomically: false, encoding: .utf8)
        try CopyWorker.prepareTarget(target, for: owner)
        let status = try System.lstatus(target)
        #expect(status.kind == .directory && status.uid == owner.uid && status.gid == owner.gid)
    }
}
