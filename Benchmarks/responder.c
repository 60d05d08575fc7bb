/*
 * Minimal multi-threaded FastCGI responder for Benchmarks/compare, built against libfcgi.
 *
 *   responder SOCKET_PATH [THREADS]
 *
 * THREADS threads (default 80) each run an FCGX_Accept_r loop on one Unix socket. libfcgi
 * honours FCGI_KEEP_CONN: a thread then keeps serving the same connection until the proxy closes
 * it, so THREADS must be at least the number of connections a proxy may hold open (the proxies
 * in the benchmark are capped at 64). Answers by REQUEST_URI (query ignored):
 *   /small  ~100-byte text body
 *   /64k    65536-byte body
 *   /post   reads the whole request body, answers its length in bytes
 *   /stream?mb=N  N MiB (1..65536, default 1024) written in 64 KiB chunks, with Content-Length:
 *           the streamed-response scenario (a proxy that buffers whole responses shows it in RSS)
 *   other   404
 * Every response carries Content-Length, so proxies can keep client connections alive without
 * chunking. No logging, no file system access.
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int listen_fd;
static char big_body[65536];
static const char small_body[] =
    "Hello from the benchmark responder. This body is about one hundred bytes long, padding ok.\n";

static int path_is(const char *uri, const char *path) {
    size_t n = strlen(path);
    return uri != NULL && strncmp(uri, path, n) == 0 && (uri[n] == '\0' || uri[n] == '?');
}

static void answer(FCGX_Request *req, const char *status, const char *body, size_t length) {
    /* snprintf, not FCGX_FPrintF: libfcgi's own formatter does not know %zu. */
    char head[128];
    int n = snprintf(head, sizeof head, "Status: %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                     status, length);
    FCGX_PutStr(head, n, req->out);
    FCGX_PutStr(body, (int)length, req->out);
}

/* The mb=N of a query string, or `fallback` when absent; 0 when not a number in range. */
static long query_mb(const char *query, long fallback) {
    for (const char *p = query; p != NULL && *p != '\0'; p = strchr(p, '&')) {
        if (*p == '&') {
            p++;
        }
        if (strncmp(p, "mb=", 3) == 0) {
            char *end;
            long value = strtol(p + 3, &end, 10);
            return (end != p + 3 && (*end == '\0' || *end == '&') && value >= 1 && value <= 65536) ? value : 0;
        }
    }
    return fallback;
}

/* Headers first, then the body as 64 KiB writes: libfcgi frames each into records as it goes, so
 * the responder never holds more than its 64 KiB buffer whatever the size. */
static void stream(FCGX_Request *req, long mebibytes) {
    char head[128];
    int n = snprintf(head, sizeof head, "Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %ld\r\n\r\n",
                     mebibytes * 1048576L);
    FCGX_PutStr(head, n, req->out);
    for (long i = 0; i < mebibytes * 16; i++) {
        if (FCGX_PutStr(big_body, (int)sizeof big_body, req->out) < 0) {
            return; /* the proxy went away */
        }
    }
}

static void *serve(void *unused) {
    (void)unused;
    FCGX_Request req;
    if (FCGX_InitRequest(&req, listen_fd, 0) != 0) {
        fprintf(stderr, "responder: FCGX_InitRequest failed\n");
        return NULL;
    }
    char scratch[16384];
    for (;;) {
        if (FCGX_Accept_r(&req) < 0) {
            usleep(1000); /* a broken connection; accept the next one */
            continue;
        }
        const char *uri = FCGX_GetParam("REQUEST_URI", req.envp);
        if (path_is(uri, "/small")) {
            answer(&req, "200 OK", small_body, sizeof small_body - 1);
        } else if (path_is(uri, "/64k")) {
            answer(&req, "200 OK", big_body, sizeof big_body);
        } else if (path_is(uri, "/stream")) {
            long mebibytes = query_mb(FCGX_GetParam("QUERY_STRING", req.envp), 1024);
            if (mebibytes > 0) {
                stream(&req, mebibytes);
            } else {
                static const char bad[] = "mb must be 1..65536\n";
                answer(&req, "400 Bad Request", bad, sizeof bad - 1);
            }
        } else if (path_is(uri, "/post")) {
            long total = 0;
            int got;
            while ((got = FCGX_GetStr(scratch, sizeof scratch, req.in)) > 0) {
                total += got;
            }
            char text[32];
            int n = snprintf(text, sizeof text, "%ld\n", total);
            answer(&req, "200 OK", text, (size_t)n);
        } else {
            static const char missing[] = "not found\n";
            answer(&req, "404 Not Found", missing, sizeof missing - 1);
        }
        FCGX_Finish_r(&req);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOCKET_PATH [THREADS]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 80;
    if (threads < 1) {
        threads = 1;
    }
    memset(big_body, 'x', sizeof big_body);
    signal(SIGPIPE, SIG_IGN);
    if (FCGX_Init() != 0) {
        fprintf(stderr, "responder: FCGX_Init failed\n");
        return 1;
    }
    /* libfcgi catches SIGTERM to make FCGX_Accept_r fail ("shutdown pending"); the benchmark
     * wants the default: stop at once. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    unlink(argv[1]);
    /* Proxies whose workers drop privileges (nginx, h2o) must be able to connect. */
    mode_t old_mask = umask(0);
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    umask(old_mask);
    if (listen_fd < 0) {
        fprintf(stderr, "responder: cannot listen on %s\n", argv[1]);
        return 1;
    }
    chmod(argv[1], 0777);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int i = 0; i < threads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&ids[i], &attr, serve, NULL) != 0) {
            fprintf(stderr, "responder: pthread_create failed\n");
            return 1;
        }
        pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
    }
    return 0;
}
