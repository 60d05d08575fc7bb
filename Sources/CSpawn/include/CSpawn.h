#ifndef CSPAWN_H
#define CSPAWN_H

#include <sys/types.h>

/// Starts `path` as a FastCGI worker: `listen_fd` becomes its fd 0 (FCGI_LISTENSOCK_FILENO),
/// `stderr_fd` its fd 1 and 2, every other descriptor is closed, the signal mask is empty and
/// every disposition is the default, it leads a new session, and it is killed (SIGKILL) when
/// this process dies, however it dies (Linux only: elsewhere there is no PR_SET_PDEATHSIG, and
/// workers rely on the proxy's stop).
///
/// The fork happens on a dedicated thread that lives as long as the process, because Linux
/// sends PR_SET_PDEATHSIG when the *thread* that forked ends, not the process: forking on a
/// pool thread that is later retired would kill healthy workers.
///
/// Returns the child's pid once `execve` has succeeded. On failure (fork, or exec of `path`)
/// returns -1 and stores the errno in `*out_errno`; a child whose exec failed is already reaped.
/// `argv` and `envp` are NULL-terminated. Thread-safe; calls are serialized.
pid_t cspawn_start(const char *path, char *const argv[], char *const envp[], int listen_fd, int stderr_fd,
                   int *out_errno);

/// pipe2(fds, O_CLOEXEC), which Swift's Glibc module does not import (it needs _GNU_SOURCE).
/// Returns 0, or -1 with errno set.
int cspawn_pipe_cloexec(int fds[2]);

/// A close-on-exec SOCK_STREAM socket of `domain` (the flag spellings differ between platforms).
/// Returns the descriptor, or -1 with errno set.
int cspawn_socket_cloexec(int domain);

/// For tests only: forks an intermediate process that starts `path` the way `cspawn_start`
/// does (from its own, only thread), writes the worker's pid (a `pid_t`) to `report_fd`, then
/// waits for signals forever. Killing the intermediate must take the worker down with it.
/// Returns the intermediate's pid, or -1 with `*out_errno` set.
pid_t cspawn_test_spawn_via_intermediate(const char *path, char *const argv[], char *const envp[], int listen_fd,
                                         int stderr_fd, int report_fd, int *out_errno);

#endif
