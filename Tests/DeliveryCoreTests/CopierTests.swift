import Foundation
import Testing

@testable import DeliveryCore

@Suite("Mirror copies")
struct CopierTests {
    /// Builds a tree with every kind of entry a Moodle tree can hold.
    func makeSource(_ root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/a/b/c", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/.git/objects", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/sub/CVS", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(root)/.svn", withIntermediateDirectories: true)
        try "x".write(toFile: "\(root)/.git/objects/o", atomically: false, encoding: .utf8)
        try "gitdir: ../.git/modules/sub".write(toFile: "\(root)/sub/.git", atomically: false, encoding: .utf8)
        try "entries".write(toFile: "\(root)/sub/CVS/Entries", atomically: false, encoding: .utf8)
        try "<?php // config".write(toFile: "\(root)/config.php", atomically: false, encoding: .utf8)
        try "dot".write(toFile: "\(root)/.htaccess", atomically: false, encoding: .utf8)
        try "secret".write(toFile: "\(root)/a/private.txt", atomically: false, encoding: .utf8)
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: "\(root)/a/b/c/big.bin"))
        try "".write(toFile: "\(root)/a/empty", atomically: false, encoding: .utf8)
        try fm.createSymbolicLink(atPath: "\(root)/a/link-rel", withDestinationPath: "b/c/big.bin")
        try fm.createSymbolicLink(atPath: "\(root)/a/link-out", withDestinationPath: "/etc/passwd")
        try fm.createSymbolicLink(atPath: "\(root)/a/dangling", withDestinationPath: "nowhere")
        chmod("\(root)/a/private.txt", 0o600)
        chmod("\(root)/a/b", 0o750)
        chmod("\(root)/a/b/c", 0o555)
        var times = [
            timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789),
            timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789),
        ]
        utimensat(AT_FDCWD, "\(root)/a/private.txt", &times, 0)
        utimensat(AT_FDCWD, "\(root)/a/link-rel", &times, AT_SYMLINK_NOFOLLOW)
        // Folders last (writing into them moved their times). rsync leaves a folder's time alone when
        // it falls in the same second as its own, so give them an older one, with nanoseconds.
        for folder in ["a/b/c", "a/b", "a", "sub", ""] {
            var old = [
                timespec(tv_sec: 1_500_000_000, tv_nsec: 987_654_321),
                timespec(tv_sec: 1_500_000_000, tv_nsec: 987_654_321),
            ]
            utimensat(AT_FDCWD, folder.isEmpty ? root : "\(root)/\(folder)", &old, 0)
        }
    }

    @Test("an exact mirror: dotfiles, symlinks as links, modes, mtimes to the nanosecond, no VCS metadata")
    func exactMirror() throws {
        let (directory, source, _) = try madeSource()
        let statistics = try TreeCopier().mirror(from: source, to: "\(directory.path)/copy")
        var expected = TreeSnapshot(source, includeTimes: true)
        expected.entries = expected.entries.filter { !$0.key.hasPrefix("sub/.git") && !$0.key.hasPrefix(".svn") }
        let copy = TreeSnapshot("\(directory.path)/copy", includeTimes: true)
        #expect(copy.difference(from: expected) == [])
        #expect(copy.entries["a/link-out"] == "link -> /etc/passwd", "links are copied, never followed")
        #expect(copy.entries[".git/objects/o"] == nil)
        #expect(copy.entries["sub/.git"] == nil)
        #expect(copy.entries["sub/CVS/Entries"] == nil)
        #expect(statistics.files == 5)
        #expect(statistics.symlinks == 3)
        // rsync, what an admin would use, agrees.
        let rsync = try sh(
            "rsync",
            ["-a", "--exclude=.git", "--exclude=.svn", "--exclude=CVS", "\(source)/", "\(directory.path)/rsync/"])
        #expect(rsync.succeeded)
        let byRsync = TreeSnapshot("\(directory.path)/rsync", includeTimes: true)
        #expect(copy.difference(from: byRsync) == [])
    }

    @Test("a refresh shares unchanged files, copies changed ones, and drops deleted ones")
    func incrementalRefresh() throws {
        let (directory, source, _) = try madeSource()
        _ = try TreeCopier().mirror(from: source, to: "\(directory.path)/v1")
        let unchanged = try TreeCopier().mirror(
            from: source, to: "\(directory.path)/v2", sharingUnchangedWith: "\(directory.path)/v1")
        #expect(unchanged.filesCopied == 0)
        try "changed!".write(toFile: "\(source)/config.php", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(source)/.htaccess")
        let changed = try TreeCopier().mirror(
            from: source, to: "\(directory.path)/v3", sharingUnchangedWith: "\(directory.path)/v2")
        #expect(changed.filesCopied == 1)
        let copy = TreeSnapshot("\(directory.path)/v3", includeTimes: true)
        #expect(copy.entries[".htaccess"] == nil)
        #expect(try String(contentsOfFile: "\(directory.path)/v3/config.php", encoding: .utf8) == "changed!")
        #expect(try String(contentsOfFile: "\(directory.path)/v2/config.php", encoding: .utf8) == "<?php // config")
    }

    @Test("removeTree removes read-only folders and never follows links")
    func removeTree() throws {
        let (directory, source, _) = try madeSource()
        let outside = "\(directory.path)/outside"
        try "keep".write(toFile: outside, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(source)/a/b/out", withDestinationPath: outside)
        chmod("\(source)/a/b", 0o555)
        try TreeCopier.removeTree(source)
        #expect(!FileManager.default.fileExists(atPath: source))
        #expect(FileManager.default.fileExists(atPath: outside))
    }

    @Test("re-securing keeps the copy exact after files change, appear and vanish in production")
    func resecureExactness() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try "<?php // new\n".write(toFile: "\(site.production)/local/foo/added.php", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(site.production)/mod/m3")
        chmod("\(site.production)/lib/moodlelib.php", 0o640)
        try site.perform(.secure)
        #expect(
            TreeSnapshot(site.backup, includeTimes: true).difference(
                from: TreeSnapshot(site.production, includeTimes: true)) == [])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(site.siteRoot)/releases").filter {
            $0.hasPrefix(".staging") || $0.hasPrefix(".copy-link")
        }
        #expect(leftovers.isEmpty)
    }

    @Test("Moodle 5.1 public/ layout: web root, CLI and component paths under public/")
    func publicLayout() throws {
        let directory = TemporaryDirectory()
        let tree = "\(directory.path)/moodle51"
        try FileManager.default.createDirectory(atPath: "\(tree)/public/lib", withIntermediateDirectories: true)
        try "<?php $version = 2025100600.00;".write(
            toFile: "\(tree)/public/version.php", atomically: false, encoding: .utf8)
        try "<?php".write(toFile: "\(tree)/public/lib/setup.php", atomically: false, encoding: .utf8)
        try "<?php".write(toFile: "\(tree)/config.php", atomically: false, encoding: .utf8)
        #expect(try SiteAdoption.detectLayout(of: tree) == true)
        let layout = SiteLayout(root: "/srv/site", publicLayout: true)
        #expect(
            layout.cliScript("upgrade.php", in: .production)
                == "/srv/site/releases/production/public/admin/cli/upgrade.php")
        #expect(layout.treeRelative(try ComponentPath("mod/forum")) == "public/mod/forum")
        let classic = SiteLayout(root: "/srv/site", publicLayout: false)
        #expect(classic.cliScript("upgrade.php", in: .backup) == "/srv/site/releases/backup/admin/cli/upgrade.php")
    }

    /// A temporary folder with a tree made by `makeSource` in it, and the path for its copy.
    func madeSource() throws -> (directory: TemporaryDirectory, source: String, copy: String) {
        let directory = TemporaryDirectory()
        try makeSource("\(directory.path)/source")
        return (directory, "\(directory.path)/source", "\(directory.path)/copy")
    }

    /// Source and copy agree on everything a mirror keeps.
    func expectMirror(_ copy: String, of source: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var expected = TreeSnapshot(source, includeTimes: true)
        expected.entries = expected.entries.filter { !$0.key.hasPrefix("sub/.git") && !$0.key.hasPrefix(".svn") }
        #expect(
            TreeSnapshot(copy, includeTimes: true).difference(from: expected) == [], sourceLocation: sourceLocation)
    }

    @Test("a refresh in place turns files into folders, folders into files and links, and drops VCS metadata")
    func entriesChangingKind() throws {
        let (directory, source, copy) = try madeSource()
        defer { withExtendedLifetime(directory) {} }
        _ = try TreeCopier().synchronize(source: source, target: copy)
        let fm = FileManager.default
        // config.php becomes a folder, a/b (with read-only a/b/c) a file, .htaccess a link.
        try fm.removeItem(atPath: "\(source)/config.php")
        try fm.createDirectory(atPath: "\(source)/config.php/inner", withIntermediateDirectories: true)
        try "x".write(toFile: "\(source)/config.php/inner/f.php", atomically: false, encoding: .utf8)
        chmod("\(source)/a/b/c", 0o755)
        try fm.removeItem(atPath: "\(source)/a/b")
        try "now a file".write(toFile: "\(source)/a/b", atomically: false, encoding: .utf8)
        try fm.removeItem(atPath: "\(source)/.htaccess")
        try fm.createSymbolicLink(atPath: "\(source)/.htaccess", withDestinationPath: "a/b")
        // Metadata the copy must not keep: a stray .git folder in the target.
        try fm.createDirectory(atPath: "\(copy)/a/.git", withIntermediateDirectories: true)
        let statistics = try TreeCopier().synchronize(source: source, target: copy)
        #expect(statistics.entriesRemoved >= 1)
        expectMirror(copy, of: source)
        #expect(!fm.fileExists(atPath: "\(copy)/a/.git"))
        #expect(try TreeCopier().differs(source: source, target: copy) == false)
    }

    @Test("modes the umask would strip, set-group-ID files and read-only folders are copied exactly")
    func modes() throws {
        let directory = TemporaryDirectory()
        let source = "\(directory.path)/source"
        try FileManager.default.createDirectory(atPath: "\(source)/ro/deeper", withIntermediateDirectories: true)
        for (name, mode) in [("group-writable", 0o664), ("private", 0o600), ("setgid", 0o2755), ("all", 0o777)] {
            try name.write(toFile: "\(source)/ro/\(name)", atomically: false, encoding: .utf8)
            chmod("\(source)/ro/\(name)", mode_t(mode))
        }
        try "deep".write(toFile: "\(source)/ro/deeper/file", atomically: false, encoding: .utf8)
        chmod("\(source)/ro/deeper", 0o500)
        chmod("\(source)/ro", 0o555)
        chmod(source, 0o775)
        defer {
            chmod("\(source)/ro", 0o755)
            chmod("\(source)/ro/deeper", 0o755)
        }
        let copy = "\(directory.path)/copy"
        _ = try TreeCopier().synchronize(source: source, target: copy)
        expectMirror(copy, of: source)
        #expect(TreeSnapshot(copy).entries["ro/setgid"]?.hasPrefix("file 2755") == true)
        #expect(TreeSnapshot(copy).entries["ro/group-writable"]?.hasPrefix("file 664") == true)
        #expect(TreeSnapshot(copy).entries["ro"]?.hasPrefix("dir 555") == true)
        chmod("\(copy)/ro", 0o755)
        chmod("\(copy)/ro/deeper", 0o755)
    }

    @Test("a folder its owner cannot search gets its mode and times at the end, after its contents")
    func unsearchableFolder() throws {
        let directory = TemporaryDirectory()
        let source = "\(directory.path)/source"
        try FileManager.default.createDirectory(atPath: "\(source)/closed/inner", withIntermediateDirectories: true)
        try "x".write(toFile: "\(source)/closed/inner/file", atomically: false, encoding: .utf8)
        var old = [timespec(tv_sec: 1_500_000_000, tv_nsec: 5), timespec(tv_sec: 1_500_000_000, tv_nsec: 5)]
        utimensat(AT_FDCWD, "\(source)/closed/inner", &old, 0)
        utimensat(AT_FDCWD, "\(source)/closed", &old, 0)
        chmod("\(source)/closed", 0o640)
        defer { chmod("\(source)/closed", 0o755) }
        let copy = "\(directory.path)/copy"
        // Not keeping owners: the path a non-root helper takes.
        _ = try TreeCopier(preserveOwnership: false).synchronize(source: source, target: copy)
        defer { chmod("\(copy)/closed", 0o755) }
        #expect(TreeSnapshot(copy, includeTimes: true).entries["closed"] == "dir 640 t=1500000000.5")
        chmod("\(source)/closed", 0o755)
        chmod("\(copy)/closed", 0o755)
        expectMirror(copy, of: source)
    }

    @Test("the copy lists the PHP scripts it gave a new file, and only those")
    func changedScripts() throws {
        let (directory, source, _) = try madeSource()
        try FileManager.default.createDirectory(atPath: "\(source)/mod/x", withIntermediateDirectories: true)
        for name in ["lib.php", "view.php", "gone.php"] {
            try "<?php // \(name)".write(toFile: "\(source)/mod/x/\(name)", atomically: false, encoding: .utf8)
        }
        let copy = "\(directory.path)/copy"
        let first = try TreeCopier().synchronize(source: source, target: copy, recordingScripts: true)
        #expect(
            Set(first.changedScripts) == ["config.php", "mod/x/lib.php", "mod/x/view.php", "mod/x/gone.php"])
        try "<?php // changed, longer".write(toFile: "\(source)/mod/x/lib.php", atomically: false, encoding: .utf8)
        try "<?php // new".write(toFile: "\(source)/mod/x/new.php", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(source)/mod/x/gone.php")
        let refresh = try TreeCopier().synchronize(source: source, target: copy, recordingScripts: true)
        #expect(Set(refresh.changedScripts) == ["mod/x/lib.php", "mod/x/new.php"])
        #expect(refresh.entriesRemoved == 1)
        let unasked = try TreeCopier().synchronize(source: source, target: "\(directory.path)/other")
        #expect(unasked.changedScripts.isEmpty)
        expectMirror(copy, of: source)
    }

    @Test(
        "as root, owners are kept, in new folders and in refreshed ones",
        .enabled(if: geteuid() == 0, "changing owners needs root"))
    func owners() throws {
        let (directory, source, _) = try madeSource()
        chown("\(source)/a/private.txt", 65534, 65534)
        chown("\(source)/a/b", 65534, 0)
        lchown("\(source)/a/link-rel", 65534, 65534)
        let copy = "\(directory.path)/copy"
        _ = try TreeCopier().synchronize(source: source, target: copy)
        func owner(_ path: String) -> (UInt32, UInt32) {
            var info = stat()
            lstat(path, &info)
            return (info.st_uid, info.st_gid)
        }
        #expect(owner("\(copy)/a/private.txt") == (65534, 65534))
        #expect(owner("\(copy)/a/b") == (65534, 0))
        #expect(owner("\(copy)/a/link-rel") == (65534, 65534))
        #expect(owner("\(copy)/config.php") == (0, 0))
        // An owner change alone is a difference, and a refresh repairs it.
        chown("\(source)/config.php", 65534, 65534)
        #expect(try TreeCopier().differs(source: source, target: copy))
        _ = try TreeCopier().synchronize(source: source, target: copy)
        #expect(owner("\(copy)/config.php") == (65534, 65534))
        #expect(try TreeCopier().differs(source: source, target: copy) == false)
    }

    @Test("checking only changes nothing, and sees a time, an extra file and a missing target")
    func checkOnly() throws {
        let (directory, source, copy) = try madeSource()
        defer { withExtendedLifetime(directory) {} }
        #expect(try TreeCopier().differs(source: source, target: copy))
        #expect(!FileManager.default.fileExists(atPath: copy), "checking made no target")
        _ = try TreeCopier().synchronize(source: source, target: copy)
        #expect(try TreeCopier().differs(source: source, target: copy) == false)
        try "extra".write(toFile: "\(copy)/a/extra", atomically: false, encoding: .utf8)
        let before = TreeSnapshot(copy, includeTimes: true)
        #expect(try TreeCopier().differs(source: source, target: copy))
        #expect(TreeSnapshot(copy, includeTimes: true) == before)
        try FileManager.default.removeItem(atPath: "\(copy)/a/extra")
        var times = [timespec(tv_sec: 1_400_000_000, tv_nsec: 0), timespec(tv_sec: 1_400_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, "\(copy)/a/empty", &times, 0)
        #expect(try TreeCopier().differs(source: source, target: copy))
    }

    @Test("progress counts entries and folders, and ends with every folder found done")
    func progress() throws {
        let (directory, source, _) = try madeSource()
        var reports: [CopyProgress] = []
        let statistics = try TreeCopier().synchronize(
            source: source, target: "\(directory.path)/copy", onProgress: { reports.append($0) })
        let last = try #require(reports.last)
        #expect(last.foldersDone == last.foldersFound)
        #expect(last.foldersFound == statistics.directories)
        #expect(last.entries == statistics.files + statistics.symlinks + statistics.directories - 1)
        #expect(zip(reports, reports.dropFirst()).allSatisfy { $0.entries <= $1.entries })
    }

}
