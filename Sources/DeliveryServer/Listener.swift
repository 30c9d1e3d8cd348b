import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// The listening socket: opened, bound and listened on by the helper itself (libfcgi's
/// `FCGX_OpenSocket` exits the process on errors and deletes whatever is at the path), or passed
/// in by systemd socket activation.
struct Listener {
    /// The listening descriptor (non-blocking, close-on-exec).
    let fd: Int32
    /// The socket file the helper created and removes at exit; nil under socket activation and
    /// in the request-facing process of a split helper (the monitor removes it).
    let ownedPath: String?
    /// The inode of the socket file it made (nil for systemd's socket).
    var ownedInode: UInt64? = nil
    /// Where it listens, for the log: the path, or "systemd".
    var shownPath: String? = nil

    /// The descriptor systemd passes first (`SD_LISTEN_FDS_START`).
    static let systemdFirstDescriptor: Int32 = 3

    /// Takes the socket systemd passed (`LISTEN_PID` is this process, `LISTEN_FDS` is 1), if any,
    /// and removes those variables so that no child inherits them.
    static func fromSystemd() throws(ServerStartError) -> Listener? {
        guard let pid = System.environment("LISTEN_PID"), Int32(pid) == System.processIdentifier,
            let count = System.environment("LISTEN_FDS")
        else {
            return nil
        }
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { System.unsetEnvironment(name) }
        guard count == "1" else {
            throw ServerStartError("systemd passed \(count) sockets; deliveryd takes exactly one")
        }
        let fd = systemdFirstDescriptor
        guard System.isListeningUnixSocket(fd) else {
            throw ServerStartError("the socket systemd passed is not a listening unix stream socket")
        }
        do {
            try System.setCloseOnExec(fd)
            try System.setNonBlocking(fd, true)
        } catch {
            throw ServerStartError("cannot prepare the socket systemd passed: \(error)")
        }
        return Listener(fd: fd, ownedPath: nil)
    }

    /// Opens the socket at `path`: group `group`, mode 0660.
    ///
    /// Refuses when another process answers on the path, or when the path is something other
    /// than a socket; removes a stale socket file that nobody answers on.
    static func open(path: String, group: String?) throws(ServerStartError) -> Listener {
        var groupId: UInt32?
        if let group {
            guard let id = System.groupIdentifier(group) else {
                throw ServerStartError("the socket group '\(group)' does not exist")
            }
            groupId = id
        }
        do {
            if let existing = try System.fileInfo(path) {
                guard existing.isSocket else {
                    throw ServerStartError("\(path) exists and is not a socket; remove it or choose another socketPath")
                }
                if try System.unixSocketAnswers(path) {
                    throw ServerStartError("another deliveryd answers on \(path); stop it first")
                }
                try System.unlink(path)
            }
        } catch let error as ServerStartError {
            throw error
        } catch {
            throw ServerStartError("cannot check the socket path: \(error)")
        }
        let fd: Int32
        do {
            fd = try System.unixSocket()
        } catch {
            throw ServerStartError("cannot make a socket: \(error)")
        }
        do {
            // Created 0600, then opened to the group: never wider than intended.
            try System.bind(fd, path: path, umask: 0o177)
            try System.setGroupAndMode(path, group: groupId, mode: 0o660)
            try System.listen(fd, backlog: 64)
            try System.setNonBlocking(fd, true)
        } catch {
            System.close(fd)
            try? System.unlink(path)
            throw ServerStartError("cannot listen on \(path): \(error)")
        }
        let inode = (try? System.fileInfo(path))??.inode
        return Listener(fd: fd, ownedPath: path, ownedInode: inode)
    }

    /// Stops accepting: blocked and future accepts fail, pollers wake.
    func shutdown() {
        System.shutdownBoth(fd)
    }

    /// Closes the socket and removes the file the helper created, unless another instance has
    /// put its own there since (a restart that started the next one before this one was gone).
    func close() {
        System.close(fd)
        removeOwnedFile()
    }

    /// Removes the socket file the helper created (the monitor does it once the request-facing
    /// process, which holds the socket, has ended), unless another instance's is there now.
    func removeOwnedFile() {
        if let ownedPath, let info = (try? System.fileInfo(ownedPath)) ?? nil, info.isSocket,
            ownedInode == nil || info.inode == ownedInode
        {
            try? System.unlink(ownedPath)
        }
    }
}
