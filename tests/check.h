/* check.h: the few assertion macros the unit and integration tests share.
 * A failed check prints where and why and counts; df_check_summary prints
 * "N passed, N failed" and returns the exit status. */
#ifndef DF_CHECK_H
#define DF_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int df_checks_passed;
static int df_checks_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            df_checks_failed++;                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);                \
        if (check_a_ == check_e_) {                                                                \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            df_checks_failed++;                                                                    \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__, #actual,     \
                    check_a_, check_e_);                                                           \
        }                                                                                          \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *check_a_ = (actual), *check_e_ = (expected);                                   \
        if (check_a_ && check_e_ && strcmp(check_a_, check_e_) == 0) {                             \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            df_checks_failed++;                                                                    \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #actual, \
                    check_a_ ? check_a_ : "(null)", check_e_ ? check_e_ : "(null)");               \
        }                                                                                          \
    } while (0)

/* Runs a test function and names it when it failed something. */
#define RUN(test)                                                                                  \
    do {                                                                                           \
        int check_before_ = df_checks_failed;                                                      \
        test();                                                                                    \
        if (df_checks_failed != check_before_)                                                     \
            fprintf(stderr, "FAIL %s\n", #test);                                                   \
    } while (0)

static inline int df_check_summary(void)
{
    printf("%d passed, %d failed\n", df_checks_passed, df_checks_failed);
    return df_checks_failed == 0 ? 0 : 1;
}

#endif
