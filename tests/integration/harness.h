/* harness.h: runs the real dealflowd on free loopback ports and talks to it over ZeroMQ:
 * the harness's parts (process, wire, read) and the checks the tests make with them. */
#ifndef DF_IT_HARNESS_H
#define DF_IT_HARNESS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "check.h"
#include "harness_process.h"
#include "harness_read.h"
#include "harness_wire.h"

/* A fixed event time the tests build their histories around (2023-11-14). */
#define IT_T0   1700000000000LL
#define IT_DAY  86400000LL
#define IT_HOUR 3600000LL

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
            DF_CHECK_FAILED(__FILE__, __LINE__);                                                   \
            fprintf(stderr, "%s is %.17g, expected %.17g\n", #actual, check_a_, check_e_);         \
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

/* The setup and teardown of a test program around daemon d: start it (a
 * failed check when it does not), and stop it, checking it exited 0 and the
 * harness saw no failure. */
static inline bool it_setup(it_daemon *d, const char *const *extra)
{
    if (it_start(d, extra))
        return true;
    it_cleanup(d);
    CHECK(!"dealflowd started");
    return false;
}

static inline void it_teardown(it_daemon *d)
{
    CHECK_INT(it_stop(d), 0);
    it_cleanup(d);
    CHECK_INT(it_done(), 0);
}

#endif
