#define _GNU_SOURCE
#include "CDeliverySystem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/fs.h>

int cds_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_EXCHANGE);
}

int cds_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}

ssize_t cds_copy_file_range(int infd, int outfd, size_t len) {
    return copy_file_range(infd, NULL, outfd, NULL, len, 0);
}

int cds_ficlone(int dstfd, int srcfd) {
    return ioctl(dstfd, FICLONE, srcfd);
}

int cds_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

int cds_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int cds_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cds_errno(void) { return errno; }

void cds_clear_errno(void) { errno = 0; }

int cds_ofd_lock(int fd, int wait) {
    struct flock lock;
    memset(&lock, 0, sizeof(lock));
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock);
}

int cds_ofd_is_locked(int fd) {
    struct flock lock;
    memset(&lock, 0, sizeof(lock));
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_GETLK, &lock) != 0) {
        return -1;
    }
    return lock.l_type == F_UNLCK ? 0 : 1;
}

int cds_syncfs(int fd) {
    return syncfs(fd);
}

long cds_getdents64(int fd, void *buffer, unsigned long size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

#include <linux/openat2.h>

/* The walk used where openat2 is missing: every component opened with O_NOFOLLOW relative to the
   previous one; ".." and absolute paths are refused (they could leave dirfd). */
static int open_beneath_walk(int dirfd, const char *path, int flags, mode_t mode) {
    char buffer[4096];
    size_t length = strlen(path);
    if (path[0] == '/' || length == 0 || length >= sizeof buffer) { errno = EXDEV; return -1; }
    memcpy(buffer, path, length + 1);
    int current = dirfd;
    char *part = buffer;
    for (;;) {
        char *slash = strchr(part, '/');
        if (slash != NULL) *slash = '\0';
        if (strcmp(part, "..") == 0) {
            if (current != dirfd) close(current);
            errno = EXDEV;
            return -1;
        }
        int next;
        if (slash == NULL) {
            next = openat(current, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        } else if (part[0] == '\0' || strcmp(part, ".") == 0) {
            part = slash + 1;
            continue;
        } else {
            next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int saved = errno;
        if (current != dirfd) close(current);
        errno = saved;
        if (next < 0 || slash == NULL) return next;
        current = next;
        part = slash + 1;
    }
}

int cds_open_beneath(int dirfd, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) how.mode = mode;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    int tries = 0;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 64);
    if (fd < 0 && errno == ENOSYS) return open_beneath_walk(dirfd, path, flags, mode);
    return (int)fd;
}

int cds_spawnattr_setsid(posix_spawnattr_t *attributes, short otherflags) {
    return posix_spawnattr_setflags(attributes, (short)(otherflags | POSIX_SPAWN_SETSID));
}

int cds_o_path(void) { return O_PATH; }

int cds_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int cds_accept_cloexec(int listenfd) {
    return accept4(listenfd, NULL, NULL, SOCK_CLOEXEC);
}

int cds_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        return -1;
    }
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int cds_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int cds_socketpair(int type, int fds[2]) {
    return socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds);
}

int cds_send_descriptor(int socketfd, int passed) {
    char byte = 'd';
    struct iovec vector = { .iov_base = &byte, .iov_len = 1 };
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1,
        .msg_control = control.buffer, .msg_controllen = sizeof control.buffer,
    };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &passed, sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(socketfd, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent == 1 ? 0 : -1;
}

int cds_receive_descriptor(int socketfd) {
    char byte;
    struct iovec vector = { .iov_base = &byte, .iov_len = 1 };
    union {
        char buffer[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } control;
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1,
        .msg_control = control.buffer, .msg_controllen = sizeof control.buffer,
    };
    ssize_t received;
    do {
        received = recvmsg(socketfd, &message, MSG_CMSG_CLOEXEC);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    int found = -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t index = 0; index < count; index++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + index * sizeof(int), sizeof(int));
            if (found < 0) found = fd; else close(fd);
        }
    }
    if (received == 0 && found < 0) return -2;
    if (found < 0 || (message.msg_flags & MSG_CTRUNC)) {
        if (found >= 0) close(found);
        errno = EBADMSG;
        return -1;
    }
    return found;
}

pid_t cds_fork(void) { return fork(); }

int cds_become_user(uid_t uid, gid_t gid, int death_signal) {
    if (setgroups(1, &gid) != 0) return -1;
    if (setresgid(gid, gid, gid) != 0) return -1;
    if (setresuid(uid, uid, uid) != 0) return -1;
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0) return -1;
    if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid) {
        errno = EPERM;
        return -1;
    }
    // Root again must be impossible: a process that could regain it has not dropped it.
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -1;
    if (prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0) return -1;
    return 0;
}
