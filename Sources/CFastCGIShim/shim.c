#define _GNU_SOURCE
#include "CFastCGIShim.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int cfs_accept_cloexec(int listenfd) {
    return accept4(listenfd, NULL, NULL, SOCK_CLOEXEC);
}

int cfs_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
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

int cfs_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int cfs_errno(void) {
    return errno;
}

int cfs_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}
