import DeliveryCore

/// The helper's pid file, written by the helper itself once it listens, and removed when it stops
/// (if it still names it). Scripts find the helper by it, then check that the process is what they
/// think (its executable and command line) before they signal it: see `scripts/install`.
struct PidFile {
    let path: String
    let pid: Int32

    /// Writes `pid` to `path` atomically (mode 0644). The folder must be the helper's user's and
    /// writable by nobody else, like every folder the helper writes in by path.
    static func write(_ path: String, pid: Int32) throws(ServerStartError) -> PidFile {
        guard path.hasPrefix("/"), !path.hasSuffix("/"), !path.utf8.contains(0) else {
            throw ServerStartError("--pid-file must be an absolute file path")
        }
        let folder = String(path[..<path.lastIndex(of: "/")!])
        let info: (mode: UInt32, uid: UInt32, isSocket: Bool, inode: UInt64)?
        do {
            info = try System.fileInfo(folder.isEmpty ? "/" : folder)
        } catch {
            throw ServerStartError("cannot check the pid file's folder \(folder): \(error)")
        }
        guard let info, info.uid == System.effectiveUserIdentifier, info.mode & 0o022 == 0 else {
            throw ServerStartError(
                "the pid file's folder \(folder) must exist, be the helper's user's and writable by nobody else")
        }
        do {
            try System.writeFileAtomically(path, Array("\(pid)\n".utf8), mode: 0o644)
        } catch {
            throw ServerStartError("cannot write the pid file \(path): \(error)")
        }
        return PidFile(path: path, pid: pid)
    }

    /// Removes the file if it still names this helper (a newer one may have written its own).
    func remove() {
        guard let bytes = try? System.readFileNoFollow(path, limit: 64),
            String(decoding: bytes, as: UTF8.self).filter({ !$0.isWhitespace }) == "\(pid)"
        else { return }
        try? System.unlink(path)
    }
}
