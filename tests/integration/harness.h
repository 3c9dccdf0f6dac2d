/* harness.h: runs the real dealflowd on free loopback ports and talks to it over ZeroMQ. */
#ifndef DF_IT_HARNESS_H
#define DF_IT_HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

/* A fixed event time the tests build their histories around (2023-11-14). */
#define IT_T0   1700000000000LL
#define IT_DAY  86400000LL
#define IT_HOUR 3600000LL

/* What it_int returns when the key is absent or not an integer. */
#define IT_NONE INT64_MIN

#define IT_PATH_MAX     512
#define IT_ENDPOINT_MAX 64
#define IT_MAX_EXTRA    16

/* One daemon process: its temp dir, data dir, log, endpoints and the
 * client sockets the harness keeps to it. */
typedef struct it_daemon {
    char dir[IT_PATH_MAX - 32]; /* removed by it_cleanup */
    char data[IT_PATH_MAX];     /* --data; dir/data unless a test changes it */
    char log[IT_PATH_MAX];      /* the daemon's stderr, appended over restarts */
    char ingest[IT_ENDPOINT_MAX];
    char api[IT_ENDPOINT_MAX];
    char notify[IT_ENDPOINT_MAX];
    const char *extra[IT_MAX_EXTRA]; /* more flags, after the endpoints */
    int nextra;
    pid_t pid; /* 0 when not running */
    void *dealer;
    void *push;
} it_daemon;

/* Makes the temp dir and picks three free ports; extra is a NULL-terminated
 * list of more flags (or NULL). Does not start anything. */
bool it_init(it_daemon *d, const char *const *extra);
/* Forks and execs dealflowd with d's flags; stderr and stdout go to d->log. */
bool it_spawn(it_daemon *d);
/* Pings until the daemon answers; false (and the log printed) when it exits
 * or the deadline passes. */
bool it_wait_ready(it_daemon *d);
/* it_init + it_spawn + it_wait_ready. */
bool it_start(it_daemon *d, const char *const *extra);
/* Waits for the process to exit; returns its exit status, 128 + signal when
 * killed, or -1 when it is still running at the deadline. */
int it_wait_exit(it_daemon *d, int timeout_ms);
/* SIGTERM and wait: the exit status as it_wait_exit (SIGKILL after the deadline). */
int it_stop(it_daemon *d);
/* SIGKILL and wait. The ingest socket is closed so nothing queued reaches a restarted daemon. */
void it_crash(it_daemon *d);
/* Starts the daemon again on the same data dir and ports. */
bool it_restart(it_daemon *d);
/* Stops the daemon if it runs, closes its sockets and removes the temp dir. */
void it_cleanup(it_daemon *d);
void it_print_log(const it_daemon *d);
bool it_log_contains(const it_daemon *d, const char *needle);
/* The port of a tcp endpoint, as text. */
const char *it_port(const char *endpoint);

/* Frees every reply and socket of the harness; returns how many harness
 * failures (missing replies, malformed replies, bad request text) there were. */
int it_done(void);
/* Frees the replies received so far (pointers to them become invalid). */
void it_release(void);

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
/* The unpacked form of bytes the harness holds on to, or a nil object. */
const msgpack_object *it_unpack_keep(const void *buf, size_t len);

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

/* Reading replies. Each accepts NULL or a non-map and answers "absent". */
const msgpack_object *it_get(const msgpack_object *map, const char *key);
/* The reply says ok: true. */
bool it_ok(const msgpack_object *reply);
/* A NUL-terminated copy of a str value, NULL when absent or not a str. */
const char *it_str(const msgpack_object *map, const char *key);
/* The reply's error code, or NULL. */
const char *it_err(const msgpack_object *reply);
int64_t it_int(const msgpack_object *map, const char *key);
/* An int or float as a double; NAN when absent or not a number. */
double it_num(const msgpack_object *map, const char *key);
/* 1 true, 0 false, -1 absent or not a bool. */
int it_bool(const msgpack_object *map, const char *key);
/* The key is present with the value nil. */
bool it_is_nil(const msgpack_object *map, const char *key);
/* Element i of an array, NULL when out of range or not an array. */
const msgpack_object *it_at(const msgpack_object *array, uint32_t i);
/* Elements of an array or pairs of a map; -1 for anything else. */
long it_len(const msgpack_object *o);
/* The object packs to the same bytes as the request text. */
bool it_same(const msgpack_object *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Two objects pack to the same bytes. */
bool it_equal(const msgpack_object *a, const msgpack_object *b);
/* The map has exactly these keys (NULL-terminated list); prints the difference. */
bool it_has_keys(const msgpack_object *map, const char *const *keys);
/* A NUL-terminated copy of a str or bin object, NULL otherwise. */
const char *it_text(const msgpack_object *o);

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

/* Wall-clock milliseconds since the Unix epoch. */
int64_t it_wall_ms(void);

/* An append result {seq, dup}. */
#define CHECK_RESULT(result, seq_, dup_)                                                           \
    do {                                                                                           \
        const msgpack_object *check_res_ = (result);                                               \
        static const char *const check_keys_[] = {"seq", "dup", NULL};                             \
        CHECK(it_has_keys(check_res_, check_keys_));                                               \
        CHECK_INT(it_int(check_res_, "seq"), (seq_));                                              \
        CHECK_INT(it_bool(check_res_, "dup"), (dup_));                                             \
    } while (0)

/* An append result {error, message}. */
#define CHECK_RESULT_ERR(result, code)                                                             \
    do {                                                                                           \
        const msgpack_object *check_res_ = (result);                                               \
        CHECK_STR(it_str(check_res_, "error"), (code));                                            \
        CHECK(it_str(check_res_, "message") != NULL);                                              \
        CHECK(it_get(check_res_, "seq") == NULL);                                                  \
    } while (0)

/* Numbers compared to within 1e-9 (floats that came through arithmetic). */
#define CHECK_NUM(actual, expected)                                                                \
    do {                                                                                           \
        double check_a_ = (actual), check_e_ = (expected);                                         \
        if (fabs(check_a_ - check_e_) <= 1e-9 * (1 + fabs(check_e_))) {                            \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            df_checks_failed++;                                                                    \
            fprintf(stderr, "%s:%d: %s is %.17g, expected %.17g\n", __FILE__, __LINE__, #actual,   \
                    check_a_, check_e_);                                                           \
        }                                                                                          \
    } while (0)

/* The reply failed with this error code. */
#define CHECK_ERR(reply, code)                                                                     \
    do {                                                                                           \
        const msgpack_object *check_r_ = (reply);                                                  \
        CHECK(it_bool(check_r_, "ok") == 0);                                                       \
        CHECK_STR(it_err(check_r_), (code));                                                       \
        CHECK(it_str(check_r_, "message") != NULL);                                                \
    } while (0)

/* The start and the end of a test program's main around daemon d: start it
 * (or count the failure and return the summary), and stop it, checking it
 * exited 0 and the harness saw no failure. */
#define IT_MAIN_START(d, extra)                                                                    \
    do {                                                                                           \
        if (!it_start((d), (extra))) {                                                             \
            it_cleanup(d);                                                                         \
            CHECK(!"dealflowd started");                                                           \
            it_done();                                                                             \
            return df_check_summary();                                                             \
        }                                                                                          \
    } while (0)

#define IT_MAIN_END(d)                                                                             \
    do {                                                                                           \
        CHECK_INT(it_stop(d), 0);                                                                  \
        it_cleanup(d);                                                                             \
        CHECK_INT(it_done(), 0);                                                                   \
        return df_check_summary();                                                                 \
    } while (0)

#endif
