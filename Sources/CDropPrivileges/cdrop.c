#define _GNU_SOURCE
#include "CDropPrivileges.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUPS 256

static uid_t target_uid;
static gid_t target_gid;
static gid_t target_groups[MAX_GROUPS];
static int target_ngroups;
static volatile sig_atomic_t handler_result;
static sem_t handler_done;

/// Only async-signal-safe calls: raw syscalls (per thread, unlike glibc's wrappers) and sem_post.
static void drop_handler(int signal_number) {
    (void)signal_number;
    int saved = errno;
    int result = 0;
    if (syscall(SYS_geteuid) == 0) {
        if (syscall(SYS_setgroups, target_ngroups, target_groups) != 0) {
            result = errno;
        } else if (syscall(SYS_setresgid, target_gid, target_gid, target_gid) != 0) {
            result = errno;
        } else if (target_uid != (uid_t)-1 && syscall(SYS_setresuid, target_uid, target_uid, target_uid) != 0) {
            result = errno;
        }
    }
    handler_result = result;
    sem_post(&handler_done);
    errno = saved;
}

int cdrop_main_thread(uid_t uid, gid_t gid, const gid_t *groups, int ngroups) {
    pid_t main_thread = getpid();
    if ((pid_t)syscall(SYS_gettid) == main_thread) {
        return 0;  // the caller is the main thread: glibc already changed it.
    }
    if (ngroups < 0 || ngroups > MAX_GROUPS) {
        return EINVAL;
    }
    target_uid = uid;
    target_gid = gid;
    memcpy(target_groups, groups, sizeof(gid_t) * (size_t)ngroups);
    target_ngroups = ngroups;
    handler_result = 0;
    if (sem_init(&handler_done, 0, 0) != 0) {
        return errno;
    }
    int signal_number = SIGRTMIN + 5;
    struct sigaction action, previous;
    memset(&action, 0, sizeof(action));
    action.sa_handler = drop_handler;
    sigfillset(&action.sa_mask);
    if (sigaction(signal_number, &action, &previous) != 0) {
        int error = errno;
        sem_destroy(&handler_done);
        return error;
    }
    int result;
    if (syscall(SYS_tgkill, main_thread, main_thread, signal_number) != 0) {
        result = errno;
    } else {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 2;
        int waited;
        while ((waited = sem_timedwait(&handler_done, &deadline)) != 0 && errno == EINTR) {
        }
        result = waited == 0 ? handler_result : errno;
    }
    if (result != ETIMEDOUT) {
        sigaction(signal_number, &previous, NULL);
        sem_destroy(&handler_done);
    }
    return result;
}
