// LD_PRELOAD library: counts malloc calls; SIGTTIN prints the count so far to stderr.
// Used by Benchmarks/allocs-per-request (allocations per proxied request of a release build).
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long count;
extern void *__libc_malloc(size_t);

void *malloc(size_t size) {
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

static void report(int signal) {
    (void)signal;
    char line[64];
    int length = snprintf(line, sizeof line, "mallocs=%ld\n", atomic_load(&count));
    (void)!write(STDERR_FILENO, line, (size_t)length);
}

__attribute__((constructor)) static void install(void) { signal(SIGTTIN, report); }
