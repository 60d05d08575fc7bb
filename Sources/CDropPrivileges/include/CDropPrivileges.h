#ifndef CDROPPRIVILEGES_H
#define CDROPPRIVILEGES_H

#include <sys/types.h>

/// Applies `groups`, `gid` and `uid` (uid (uid_t)-1: unchanged) to the process's main thread
/// when it still runs as root after glibc's setgroups/setgid/setuid.
///
/// glibc changes the credentials of every thread (Linux keeps them per thread) except threads
/// it considers exiting. A Swift async main parks the main thread in libdispatch's
/// `dispatch_main`, which calls pthread_exit and then sleeps for ever inside a thread-specific
/// destructor: glibc skips it, and it would stay root. A signal handler run on that thread makes
/// the raw per-thread system calls instead.
///
/// Returns 0 (done, or nothing to do), or an errno value (ETIMEDOUT when the thread did not
/// answer within 2 s).
int cdrop_main_thread(uid_t uid, gid_t gid, const gid_t *groups, int ngroups);

#endif
