// Thin C shims for the Linux calls that Swift's Glibc module does not expose
// (they need _GNU_SOURCE or are macros). Each returns what the kernel returns;
// errno is left for the Swift side to read at once.
#ifndef CDELIVERYSYSTEM_H
#define CDELIVERYSYSTEM_H

#include <sys/types.h>
#include <spawn.h>
#include <signal.h>
#include <stdint.h>

/// renameat2(2) with RENAME_EXCHANGE: atomically swaps two paths.
int cds_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
/// renameat2(2) with RENAME_NOREPLACE: fails with EEXIST instead of replacing.
int cds_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
/// copy_file_range(2) between two descriptors at their current offsets.
ssize_t cds_copy_file_range(int infd, int outfd, size_t len);
/// ioctl(FICLONE): share all extents of src with dst (reflink); fails where unsupported.
int cds_ficlone(int dstfd, int srcfd);
/// posix_spawn_file_actions_addclosefrom_np(3): close every fd >= lowfd in the child.
int cds_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/// posix_spawn_file_actions_addchdir_np(3): change directory in the child.
int cds_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/// pipe2(2) with O_CLOEXEC.
int cds_pipe_cloexec(int fds[2]);
/// The process's errno, for Swift.
int cds_errno(void);
/// Clears errno.
void cds_clear_errno(void);

/// Takes (F_OFD_SETLK / F_OFD_SETLKW) or releases an exclusive open-file-description lock on the whole file.
int cds_ofd_lock(int fd, int wait);
/// 1 when another open file description holds a conflicting lock, 0 when none does, -1 on error.
int cds_ofd_is_locked(int fd);
/// getdents64(2): reads directory entries (struct linux_dirent64) from fd into buffer.
long cds_getdents64(int fd, void *buffer, unsigned long size);
/// syncfs(2): flushes the file system holding fd.
int cds_syncfs(int fd);
/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: opens `path`
/// below `dirfd` without following a symlink at any level and without leaving `dirfd`; falls back
/// to an O_NOFOLLOW walk of each component where the kernel lacks openat2 (ENOSYS).
int cds_open_beneath(int dirfd, const char *path, int flags, mode_t mode);
/// posix_spawnattr_setflags with POSIX_SPAWN_SETSID added: the child starts a new session (no
/// controlling terminal; it is also the leader of a new process group).
int cds_spawnattr_setsid(posix_spawnattr_t *attributes, short otherflags);
/// pidfd_open(2): a descriptor that polls readable when the process ends (-1 with ENOSYS on old kernels).
int cds_pidfd_open(pid_t pid);
/// accept4(2) with SOCK_CLOEXEC: the accepted descriptor is never inherited by children.
int cds_accept_cloexec(int listenfd);
/// Reads the peer credentials of a connected unix socket (SO_PEERCRED).
int cds_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
/// memfd_create(2) with MFD_CLOEXEC: an anonymous memory file.
int cds_memfd(const char *name);
/// The O_PATH open flag (Glibc's Swift module hides it: it needs _GNU_SOURCE).
int cds_o_path(void);


/// socketpair(2), close-on-exec: `type` is SOCK_STREAM or SOCK_SEQPACKET.
int cds_socketpair(int type, int fds[2]);

/// Sends one byte and the descriptor `passed` over a unix socket (SCM_RIGHTS), without SIGPIPE.
int cds_send_descriptor(int socketfd, int passed);

/// Receives one byte and one descriptor sent by cds_send_descriptor (close-on-exec). Returns the
/// descriptor, -2 at end of file, -1 on an error; a message without a descriptor is an error (EBADMSG),
/// and extra descriptors are closed.
int cds_receive_descriptor(int socketfd);

/// fork(2). Only for a process that has started no thread yet.
pid_t cds_fork(void);

/// Becomes `uid`:`gid` for good, in the calling (single-threaded) process: supplementary groups
/// set to `gid` only, real, effective and saved ids all changed and checked, no new privileges
/// (PR_SET_NO_NEW_PRIVS), not dumpable (no ptrace or /proc/pid/mem by the same uid), and
/// `death_signal` sent when the parent dies. Returns 0 or -1 with errno.
int cds_become_user(uid_t uid, gid_t gid, int death_signal);

#endif
