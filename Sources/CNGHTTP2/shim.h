#ifndef CNGHTTP2_SHIM_H
#define CNGHTTP2_SHIM_H

// The Swift side calls only what is declared here or in nghttp2.h that is stable across the
// versions we meet: Debian 12 ships 1.52, which lacks the `*2` functions (nghttp2_ssize) that
// 1.61 added and later versions prefer (the old ones are deprecated there). The inline wrappers
// pick whichever the headers offer, so the Swift code sees one signature.

#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#if defined(NGHTTP2_VERSION_NUM) && NGHTTP2_VERSION_NUM >= 0x013d00
#define CNGHTTP2_HAVE_SSIZE_API 1
#else
#define CNGHTTP2_HAVE_SSIZE_API 0
#endif

/// Reads the next piece of a DATA source: like nghttp2_data_source_read_callback(2), with the
/// return type spelt `ptrdiff_t` (ssize_t and nghttp2_ssize are both that wide on our targets).
typedef ptrdiff_t (*cnghttp2_data_read_callback)(nghttp2_session *session, int32_t stream_id,
                                                 uint8_t *buf, size_t length, uint32_t *data_flags,
                                                 nghttp2_data_source *source, void *user_data);

static inline ptrdiff_t cnghttp2_session_mem_recv(nghttp2_session *session, const uint8_t *in,
                                                  size_t inlen) {
#if CNGHTTP2_HAVE_SSIZE_API
    return nghttp2_session_mem_recv2(session, in, inlen);
#else
    return nghttp2_session_mem_recv(session, in, inlen);
#endif
}

static inline ptrdiff_t cnghttp2_session_mem_send(nghttp2_session *session,
                                                  const uint8_t **data) {
#if CNGHTTP2_HAVE_SSIZE_API
    return nghttp2_session_mem_send2(session, data);
#else
    return nghttp2_session_mem_send(session, data);
#endif
}

/// nghttp2_submit_response(2); `read` NULL sends the headers with END_STREAM.
static inline int cnghttp2_submit_response(nghttp2_session *session, int32_t stream_id,
                                           const nghttp2_nv *nva, size_t nvlen,
                                           cnghttp2_data_read_callback read) {
#if CNGHTTP2_HAVE_SSIZE_API
    nghttp2_data_provider2 provider;
    provider.source.ptr = NULL;
    provider.read_callback = (nghttp2_data_source_read_callback2)read;
    return nghttp2_submit_response2(session, stream_id, nva, nvlen, read ? &provider : NULL);
#else
    nghttp2_data_provider provider;
    provider.source.ptr = NULL;
    provider.read_callback = (nghttp2_data_source_read_callback)read;
    return nghttp2_submit_response(session, stream_id, nva, nvlen, read ? &provider : NULL);
#endif
}

/// nghttp2_submit_request(2), for in-process clients (tests); returns the stream id or an error.
static inline int32_t cnghttp2_submit_request(nghttp2_session *session, const nghttp2_nv *nva,
                                              size_t nvlen, cnghttp2_data_read_callback read,
                                              void *stream_user_data) {
#if CNGHTTP2_HAVE_SSIZE_API
    nghttp2_data_provider2 provider;
    provider.source.ptr = NULL;
    provider.read_callback = (nghttp2_data_source_read_callback2)read;
    return nghttp2_submit_request2(session, NULL, nva, nvlen, read ? &provider : NULL,
                                   stream_user_data);
#else
    nghttp2_data_provider provider;
    provider.source.ptr = NULL;
    provider.read_callback = (nghttp2_data_source_read_callback)read;
    return nghttp2_submit_request(session, NULL, nva, nvlen, read ? &provider : NULL,
                                  stream_user_data);
#endif
}

// Flood and rapid-reset limits that appeared after 1.52 upstream (1.57 and 1.61) but that
// distributions backport with their security fixes (Debian 12's 1.52.0-1+deb12u2 has both).
// Weak references: the setters are called when the library in use has them.
NGHTTP2_EXTERN void nghttp2_option_set_stream_reset_rate_limit(nghttp2_option *option,
                                                               uint64_t burst, uint64_t rate);
NGHTTP2_EXTERN void nghttp2_option_set_max_continuations(nghttp2_option *option, size_t val);
#pragma weak nghttp2_option_set_stream_reset_rate_limit
#pragma weak nghttp2_option_set_max_continuations

/// Returns 1 when the library has the rate limit and it was set, 0 otherwise.
static inline int cnghttp2_option_set_stream_reset_rate_limit(nghttp2_option *option,
                                                              uint64_t burst, uint64_t rate) {
    if (!nghttp2_option_set_stream_reset_rate_limit) return 0;
    nghttp2_option_set_stream_reset_rate_limit(option, burst, rate);
    return 1;
}

/// Returns 1 when the library has the limit and it was set, 0 otherwise.
static inline int cnghttp2_option_set_max_continuations(nghttp2_option *option, size_t val) {
    if (!nghttp2_option_set_max_continuations) return 0;
    nghttp2_option_set_max_continuations(option, val);
    return 1;
}

#endif
