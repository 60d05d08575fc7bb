#define _GNU_SOURCE
#include "CSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Everything the child needs is prepared here before fork: after fork in a multithreaded
// process the child may only make async-signal-safe calls (no malloc, no locks).
struct spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    int listen_fd;
    int stderr_fd;
    // Upper bound for the close loop on kernels without close_range (measured before fork).
    int max_fd;
    pid_t result;
    int error;
    int done;
};

static int descriptor_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > INT_MAX) {
        return 65536;
    }
    return (int)limit.rlim_cur;
}

static void close_descriptors(unsigned first, unsigned last, int max_fd) {
    if (first > last) {
        return;
    }
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, first, last, 0) == 0) {
        return;
    }
#endif
    // Kernels before 5.9 have no close_range: close one by one up to the descriptor limit.
    unsigned top = last < (unsigned)max_fd ? last : (unsigned)max_fd;
    for (unsigned fd = first; fd <= top; fd++) {
        close((int)fd);
    }
}

#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
// The kernel's struct sigaction on these architectures (glibc's own copy is private).
struct raw_kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

// glibc's sigaction refuses the signals it reserves for threads (32 and 33), yet an ignored one
// is inherited across exec like any other, so the reset goes to the kernel directly.
static void reset_reserved_signal(int sig) {
    struct raw_kernel_sigaction action;
    memset(&action, 0, sizeof action);
    (void)syscall(SYS_rt_sigaction, sig, &action, NULL, sizeof action.mask);
}
#else
static void reset_reserved_signal(int sig) {
    (void)sig;
}
#endif

int cspawn_pipe_cloexec(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC);
#else
    // No pipe2 here: a fork on another thread in between could leak these two into its exec.
    if (pipe(fds) != 0) {
        return -1;
    }
    (void)fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int cspawn_socket_cloexec(int domain) {
#ifdef SOCK_CLOEXEC
    return socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    int fd = socket(domain, SOCK_STREAM, 0);
    if (fd >= 0) {
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    return fd;
#endif
}

// Runs in the child between fork and exec: async-signal-safe calls only.
__attribute__((noreturn)) static void run_child(const struct spawn_request *request, pid_t parent, int report_fd) {
    int error = 0;
    int report = report_fd;

#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        error = errno;
        goto fail;
    }
#endif
    // The parent may have died between fork and prctl; nobody would ever kill us then.
    if (getppid() != parent) {
        _exit(127);
    }

    // Lift all three descriptors above 2 first: any of them may itself be 0, 1 or 2 (a daemon
    // started with closed standard streams), and placing one must not overwrite another.
    int listen_fd = fcntl(request->listen_fd, F_DUPFD_CLOEXEC, 3);
    int output_fd = fcntl(request->stderr_fd, F_DUPFD_CLOEXEC, 3);
    int lifted_report = fcntl(report_fd, F_DUPFD_CLOEXEC, 3);
    if (listen_fd < 0 || output_fd < 0 || lifted_report < 0) {
        error = errno;
        goto fail;
    }
    report = lifted_report;
    // dup2 clears close-on-exec on the target, so exactly these three survive exec.
    if (dup2(listen_fd, 0) < 0 || dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) {
        error = errno;
        goto fail;
    }
    // The report pipe stays open (it is close-on-exec) so that an exec failure can be told.
    close_descriptors(3, (unsigned)report - 1, request->max_fd);
    close_descriptors((unsigned)report + 1, ~0U, request->max_fd);

    // Handlers are reset by exec, but ignored signals and the mask are inherited; the Swift
    // runtime and NIO ignore SIGPIPE and the spawner thread blocks everything. Dispositions go
    // first, while everything is still blocked, so no inherited handler can run in the child.
    struct sigaction default_action;
    memset(&default_action, 0, sizeof default_action);
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &default_action, NULL) != 0) {
            reset_reserved_signal(sig);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) {
        error = errno;
        goto fail;
    }

    // Own session and process group: a Ctrl-C on the proxy's terminal must not reach the
    // workers before the proxy has drained them, and stop can signal a worker's whole group.
    (void)setsid();

    execve(request->path, request->argv, request->envp);
    error = errno;

fail:
    while (write(report, &error, sizeof error) < 0 && errno == EINTR) {
    }
    _exit(127);
}

// Forks and execs from the calling thread; the caller's signal mask must block everything.
static pid_t spawn_here(const struct spawn_request *request, int *out_errno) {
    int report[2];
    if (cspawn_pipe_cloexec(report) != 0) {
        *out_errno = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *out_errno = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        run_child(request, parent, report[1]);
    }
    close(report[1]);

    // EOF means the write end vanished at a successful exec; an int means exec failed.
    int child_error = 0;
    ssize_t count;
    do {
        count = read(report[0], &child_error, sizeof child_error);
    } while (count < 0 && errno == EINTR);
    close(report[0]);

    if (count == (ssize_t)sizeof child_error) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        *out_errno = child_error;
        return -1;
    }
    return pid;
}

// One spawner thread for the whole process. It is never joined and never ends, so the
// PR_SET_PDEATHSIG of its children fires only when the process itself dies.
static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t spawner_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spawner_cond = PTHREAD_COND_INITIALIZER;
static struct spawn_request *pending_request;
static int spawner_running;

static void *spawner_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&spawner_lock);
    for (;;) {
        while (pending_request == NULL || pending_request->done) {
            pthread_cond_wait(&spawner_cond, &spawner_lock);
        }
        struct spawn_request *request = pending_request;
        pthread_mutex_unlock(&spawner_lock);

        request->result = spawn_here(request, &request->error);

        pthread_mutex_lock(&spawner_lock);
        request->done = 1;
        pthread_cond_broadcast(&spawner_cond);
    }
    return NULL;
}

static int start_spawner(void) {
    pthread_attr_t attributes;
    int rc = pthread_attr_init(&attributes);
    if (rc != 0) {
        return rc;
    }
    (void)pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    // The new thread inherits this mask: it must never run a signal handler (signals are the
    // event loops' business), and its forked children start with everything blocked until
    // their dispositions are reset.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    rc = pthread_create(&thread, &attributes, spawner_main, NULL);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    return rc;
}

/// A request for the spawner (or the test intermediate), nothing done yet.
static struct spawn_request make_request(const char *path, char *const argv[], char *const envp[], int listen_fd,
                                         int stderr_fd) {
    struct spawn_request request = {
        .path = path,
        .argv = argv,
        .envp = envp,
        .listen_fd = listen_fd,
        .stderr_fd = stderr_fd,
        .max_fd = descriptor_limit(),
        .result = -1,
        .error = 0,
        .done = 0,
    };
    return request;
}

pid_t cspawn_start(const char *path, char *const argv[], char *const envp[], int listen_fd, int stderr_fd,
                   int *out_errno) {
    struct spawn_request request = make_request(path, argv, envp, listen_fd, stderr_fd);

    // Serializes callers: the spawner handles one request at a time.
    pthread_mutex_lock(&caller_lock);
    if (!spawner_running) {
        int rc = start_spawner();
        if (rc != 0) {
            pthread_mutex_unlock(&caller_lock);
            *out_errno = rc;
            return -1;
        }
        spawner_running = 1;
    }
    pthread_mutex_lock(&spawner_lock);
    pending_request = &request;
    pthread_cond_broadcast(&spawner_cond);
    while (!request.done) {
        pthread_cond_wait(&spawner_cond, &spawner_lock);
    }
    pending_request = NULL;
    pthread_mutex_unlock(&spawner_lock);
    pthread_mutex_unlock(&caller_lock);

    if (request.result < 0) {
        *out_errno = request.error;
    }
    return request.result;
}


pid_t cspawn_test_spawn_via_intermediate(const char *path, char *const argv[], char *const envp[], int listen_fd,
                                         int stderr_fd, int report_fd, int *out_errno) {
    struct spawn_request request = make_request(path, argv, envp, listen_fd, stderr_fd);
    // Blocked before fork so that no inherited Swift handler can run in the intermediate.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
#ifdef __linux__
        // The intermediate must not outlive the test process either.
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        if (getppid() != parent) {
            _exit(1);
        }
        int error = 0;
        pid_t worker = spawn_here(&request, &error);
        while (write(report_fd, &worker, sizeof worker) < 0 && errno == EINTR) {
        }
        // Everything is blocked: only SIGKILL ends this.
        for (;;) {
            pause();
        }
    }
    int error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (pid < 0) {
        *out_errno = error;
    }
    return pid;
}
