// Linux socket calls that Swift's Glibc module does not expose (they need _GNU_SOURCE).
// Each returns what the kernel returns; errno is left for the Swift side to read at once.
#ifndef CFASTCGISHIM_H
#define CFASTCGISHIM_H

#include <sys/types.h>

/// accept4(2) with SOCK_CLOEXEC: the accepted descriptor is never inherited by children.
int cfs_accept_cloexec(int listenfd);
/// Reads the peer credentials of a connected unix socket (SO_PEERCRED).
int cfs_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);
/// pipe2(2) with O_CLOEXEC.
int cfs_pipe_cloexec(int fds[2]);
/// memfd_create(2) with MFD_CLOEXEC: an anonymous memory file.
int cfs_memfd(const char *name);
/// The calling thread's errno.
int cfs_errno(void);

#endif
