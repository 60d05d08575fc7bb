/*
 * Opens many keep-alive HTTP/1.1 connections and holds them idle, for Benchmarks/compare's idle10k
 * scenario (memory per idle client connection).
 *
 *   idleclient PORT N PATH [IN_FLIGHT] [HOLD_SECONDS]
 *
 * Connects N times to 127.0.0.1:PORT, sends one `GET PATH` on each and reads its answer (at most
 * IN_FLIGHT, default 32, requests outstanding at once, so a proxy's backend queue never overflows),
 * then keeps every connection open without sending anything. Prints one line when all N were
 * answered (or failed):
 *
 *   ready opened=N ok=OK failed=F
 *
 * (OK: answers with status 200 and the whole body; F: refused connections, other statuses, closes
 * before the answer), then waits until SIGTERM or SIGINT, or HOLD_SECONDS (default 300) as a
 * safety bound, and prints
 *
 *   done open=M closed_by_server=C
 *
 * (M: connections still open at that moment) before closing them all and exiting 0.
 * Responses must carry Content-Length (the benchmark responder's all do).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, WAITING, IDLE, CLOSED };

struct conn {
    int fd;
    enum state state;
    int head_length;        /* bytes of the answer head read so far (until the blank line) */
    long body_remaining;    /* -1 until the head is complete */
    int status;
    char head[1024];
};

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Feeds answer bytes to the connection's parser; returns 1 when the answer is complete. */
static int consume(struct conn *c, const char *data, long length) {
    while (length > 0) {
        if (c->body_remaining < 0) {
            if (c->head_length >= (int)sizeof c->head - 1) {
                c->status = -1; /* head too large for this client: count as failed */
                return 1;
            }
            c->head[c->head_length++] = *data++;
            length--;
            c->head[c->head_length] = '\0';
            if (c->head_length >= 4 && memcmp(c->head + c->head_length - 4, "\r\n\r\n", 4) == 0) {
                c->status = (int)strtol(c->head + 9, NULL, 10);
                const char *cl = strcasestr(c->head, "\r\ncontent-length:");
                c->body_remaining = cl != NULL ? strtol(cl + 17, NULL, 10) : 0;
            }
        } else {
            long take = length < c->body_remaining ? length : c->body_remaining;
            c->body_remaining -= take;
            data += take;
            length -= take;
            if (length > 0) {
                c->status = -1; /* more bytes than announced */
                return 1;
            }
        }
        if (c->body_remaining == 0) {
            return 1;
        }
    }
    return c->body_remaining == 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT N PATH [IN_FLIGHT] [HOLD_SECONDS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int total = atoi(argv[2]);
    const char *path = argv[3];
    int in_flight_limit = argc > 4 ? atoi(argv[4]) : 32;
    double hold_seconds = argc > 5 ? atof(argv[5]) : 300;
    if (total < 1 || in_flight_limit < 1) {
        fprintf(stderr, "idleclient: N and IN_FLIGHT must be positive\n");
        return 2;
    }

    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    char request[512];
    int request_length = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);

    struct conn *conns = calloc((size_t)total, sizeof *conns);
    int epoll_fd = epoll_create1(0);
    if (conns == NULL || epoll_fd < 0) {
        perror("idleclient");
        return 1;
    }
    int opened = 0, in_flight = 0, ok = 0, failed = 0, open_now = 0, closed_by_server = 0, ready = 0;
    double start = now();
    struct epoll_event events[256];
    char scratch[65536];

    while (!stop_requested) {
        while (!ready && opened < total && in_flight < in_flight_limit) {
            struct conn *c = &conns[opened];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            c->body_remaining = -1;
            opened++;
            if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS)) {
                if (c->fd >= 0) {
                    close(c->fd);
                }
                c->state = CLOSED;
                failed++;
                continue;
            }
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->state = CONNECTING;
            struct epoll_event event = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)(c - conns)};
            epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event);
            in_flight++;
            open_now++;
        }
        if (!ready && opened == total && in_flight == 0) {
            printf("ready opened=%d ok=%d failed=%d\n", opened, ok, failed);
            fflush(stdout);
            ready = 1;
        }
        if (now() - start > hold_seconds) {
            break;
        }
        int n = epoll_wait(epoll_fd, events, 256, 1000);
        for (int i = 0; i < n; i++) {
            struct conn *c = &conns[events[i].data.u32];
            if (c->state == CLOSED) {
                continue;
            }
            int broken = 0;
            if (c->state == CONNECTING && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int error = 0;
                socklen_t error_length = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &error_length);
                if (error != 0 || write(c->fd, request, (size_t)request_length) != request_length) {
                    broken = 1;
                } else {
                    c->state = WAITING;
                    struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = events[i].data.u32};
                    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
                    continue;
                }
            }
            if (!broken && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                long got = read(c->fd, scratch, sizeof scratch);
                if (got > 0 && c->state == WAITING) {
                    if (consume(c, scratch, got)) {
                        in_flight--;
                        if (c->status == 200) {
                            ok++;
                        } else {
                            failed++;
                        }
                        c->state = IDLE;
                    }
                } else if (got == 0 || (got < 0 && errno != EAGAIN)) {
                    broken = 1;
                }
            }
            if (broken) {
                if (c->state == IDLE) {
                    closed_by_server++;
                } else {
                    in_flight--;
                    failed++;
                }
                epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->state = CLOSED;
                open_now--;
            }
        }
    }
    if (!ready) {
        printf("ready opened=%d ok=%d failed=%d timeout\n", opened, ok, failed + in_flight);
    }
    printf("done open=%d closed_by_server=%d\n", open_now, closed_by_server);
    fflush(stdout);
    return 0;
}
