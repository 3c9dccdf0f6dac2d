/* harness_wire.h: the harness's ZeroMQ sockets to the daemon: request text packed into
 * msgpack, requests and their replies with deadlines, ingest frames, notifications. */
#ifndef DF_IT_HARNESS_WIRE_H
#define DF_IT_HARNESS_WIRE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "harness_process.h"
#include "harness_read.h"

/* Frees every reply and socket of the harness; returns how many harness
 * failures (missing replies, malformed replies, bad request text) there were. */
int it_done(void);

/* Request text: a relaxed JSON turned into msgpack. Maps {k: v, ...},
 * arrays [a, b], strings 'single' or "double" quoted (escapes \\ \' \" \n
 * \0 \xHH) or bare words ([A-Za-z_][A-Za-z0-9_.-]*), integers, floats (with
 * a '.' or an exponent), nil, true, false. Map keys are any value. */
bool it_pack(msgpack_packer *pk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool it_vpack(msgpack_packer *pk, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* The msgpack bytes of request text, in a fresh sbuffer the caller destroys. */
bool it_encode(msgpack_sbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends a request over the api (DEALER with an empty delimiter) and returns
 * the unpacked reply, or a nil object (and a harness failure) when none came
 * before the deadline. Replies live until it_release or it_done. */
const msgpack_object *it_call(it_daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const msgpack_object *it_call_raw(it_daemon *d, const void *buf, size_t len);
/* Appends the events in the text (comma-separated maps) in one request
 * and returns results[0].seq, or IT_NONE (the result printed) when it has none. */
int64_t it_append(it_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ingest: one frame per call. */
bool it_push(it_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool it_push_raw(it_daemon *d, const void *buf, size_t len);
/* Closes the PUSH socket (waiting up to its linger for queued frames to leave). */
void it_push_close(it_daemon *d, int linger_ms);
/* Polls ping until last_seq >= n; false at the deadline. */
bool it_wait_seq(it_daemon *d, int64_t n);
/* Polls stats until stats[key] >= n; false at the deadline. */
bool it_wait_stat(it_daemon *d, const char *key, int64_t n);
int64_t it_last_seq(it_daemon *d);
int64_t it_stat(it_daemon *d, const char *key);

/* Notifications: a SUB socket whose subscription is live (its handshake
 * with the daemon is done and a request has gone round since). */
void *it_sub_open(it_daemon *d, const char *prefix);
/* The next notification's body, with its topic in *topic; NULL when none
 * arrives in timeout_ms (not a failure by itself). */
const msgpack_object *it_sub_recv(void *sub, int timeout_ms, const char **topic);
void it_sub_close(void *sub);

/* A plain DEALER or REQ socket of the harness's context, LINGER 0, connected. */
void *it_socket(int type, const char *endpoint);
void it_close(void *socket);

/* Sends request text and returns reply[key] as it_int does, dropping the reply at
 * once; IT_NONE when no reply came in timeout_ms (a harness failure unless quiet). */
int64_t it_poll_int(it_daemon *d, const char *request, const char *key, int timeout_ms, bool quiet);

/* A growing text, for building requests with many events. */
typedef struct it_buf {
    char *ptr;
    size_t len;
    size_t cap;
} it_buf;
void it_buf_add(it_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty). */
const char *it_buf_get(const it_buf *t);
void it_buf_free(it_buf *t);

/* Monotonic milliseconds, for deadlines. */
int64_t it_mono_ms(void);
/* The polling interval of the wait loops. */
void it_pause_briefly(void);

#endif
