/* check.h: the assertion macros the tests share, and the runner of a test program's table.
 * A failed check prints where, in which test and why, and counts. A program
 * lists its tests in one table and hands it to df_test_main:
 *
 *     static const df_test tests[] = {{"as_of", test_as_of}, ..., {NULL, NULL}};
 *     int main(int argc, char **argv) { return df_test_main(argc, argv, tests, NULL); }
 *
 * `prog` runs them all, `prog NAME...` only those (exact names, in table
 * order), `prog --list` lists them; an unknown name exits 2. The closing line
 * is "N passed, N failed", counting tests; the exit status is 1 when any
 * check failed. */
#ifndef DF_CHECK_H
#define DF_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Unused in a file that includes this only for the types. */
#define DF_MAYBE_UNUSED __attribute__((unused))

static int df_checks_passed DF_MAYBE_UNUSED;
static int df_checks_failed DF_MAYBE_UNUSED;
/* The test running now, named in failure reports. */
static const char *df_test_current DF_MAYBE_UNUSED = "main";

/* Counts a failed check and prints its place; the caller prints the why and the newline. */
#define DF_CHECK_FAILED(file, line)                                                                \
    do {                                                                                           \
        df_checks_failed++;                                                                        \
        fprintf(stderr, "%s:%d: [%s] ", (file), (line), df_test_current);                          \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            DF_CHECK_FAILED(__FILE__, __LINE__);                                                   \
            fprintf(stderr, "check failed: %s\n", #cond);                                          \
        }                                                                                          \
    } while (0)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);                \
        if (check_a_ == check_e_) {                                                                \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            DF_CHECK_FAILED(__FILE__, __LINE__);                                                   \
            fprintf(stderr, "%s is %lld, expected %lld\n", #actual, check_a_, check_e_);           \
        }                                                                                          \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *check_a_ = (actual), *check_e_ = (expected);                                   \
        if (check_a_ && check_e_ && strcmp(check_a_, check_e_) == 0) {                             \
            df_checks_passed++;                                                                    \
        } else {                                                                                   \
            DF_CHECK_FAILED(__FILE__, __LINE__);                                                   \
            fprintf(stderr, "%s is \"%s\", expected \"%s\"\n", #actual,                            \
                    check_a_ ? check_a_ : "(null)", check_e_ ? check_e_ : "(null)");               \
        }                                                                                          \
    } while (0)

/* One entry of a test program's table; the table ends with {NULL, NULL}. */
typedef struct df_test {
    const char *name;
    void (*run)(void);
} df_test;

/* What a program does around its selected tests: setup runs once before
 * the first (false: none runs), teardown once after the last. Checks
 * failing in either count as a failed test named "setup" or "teardown".
 * ready, when given, is asked before each test: false skips it (a test
 * that left nothing to test against has reported why). */
typedef struct df_fixture {
    bool (*setup)(void);
    void (*teardown)(void);
    bool (*ready)(void);
} df_fixture;

static int df_tests_passed DF_MAYBE_UNUSED;
static int df_tests_failed DF_MAYBE_UNUSED;
static int df_tests_skipped DF_MAYBE_UNUSED;
static bool df_skipping DF_MAYBE_UNUSED; /* the running test (or setup) called df_skip */

/* Skips the running test, or from setup every test, saying why: what it
 * needs is missing here (a mount, a descriptor limit, a data set). A
 * program whose every test was skipped exits 77, which ctest shows as a
 * skip, never as a pass. */
static inline void df_skip(const char *why)
{
    printf("SKIP %s: %s\n", df_test_current, why);
    df_skipping = true;
}

/* Runs a test function and names it when it failed something. */
#define RUN(test) df_run_one(#test, test)

static inline void df_run_one(const char *name, void (*run)(void))
{
    const char *outer = df_test_current;
    int before = df_checks_failed;
    df_test_current = name;
    df_skipping = false;
    run();
    df_test_current = outer;
    if (df_checks_failed != before) {
        df_tests_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else if (df_skipping) {
        df_tests_skipped++;
    } else {
        df_tests_passed++;
    }
    df_skipping = false;
}

/* Counts a check failing outside any test (in setup, teardown) as a failed test of that name. */
static inline void df_count_outside(const char *name, int failed_before)
{
    if (df_checks_failed != failed_before) {
        df_tests_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    }
}

/* Prints the closing line and returns the exit status. */
static inline int df_check_summary(void)
{
    printf("%d checks passed, %d failed\n", df_checks_passed, df_checks_failed);
    if (df_tests_skipped)
        printf("%d passed, %d failed, %d skipped\n", df_tests_passed, df_tests_failed,
               df_tests_skipped);
    else
        printf("%d passed, %d failed\n", df_tests_passed, df_tests_failed);
    if (df_checks_failed != 0 || df_tests_failed != 0)
        return 1;
    return df_tests_skipped > 0 && df_tests_passed == 0 ? 77 : 0;
}

/* A setup that returns false has either failed a check, or skipped (df_skip)
 * every test; anything else is a failure of its own. */
static inline void df_setup_step(const char *name, bool *ok, bool (*step)(void))
{
    int failed = df_checks_failed;
    df_test_current = name;
    df_skipping = false;
    if (step && !step()) {
        *ok = false;
        if (df_skipping)
            df_tests_skipped++;
        else if (df_checks_failed == failed) {
            DF_CHECK_FAILED(__FILE__, __LINE__);
            fprintf(stderr, "%s returned false\n", name);
        }
    }
    df_skipping = false;
    df_test_current = "main";
    df_count_outside(name, failed);
}

static inline void df_teardown_step(void (*step)(void))
{
    int failed = df_checks_failed;
    df_test_current = "teardown";
    if (step)
        step();
    df_test_current = "main";
    df_count_outside("teardown", failed);
}

static inline int df_test_main(int argc, char **argv, const df_test *tests,
                               const df_fixture *fixture)
{
    size_t ntests = 0;
    while (tests[ntests].name)
        ntests++;
    bool selected[ntests + 1];
    memset(selected, argc > 1 ? 0 : 1, sizeof selected);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            for (size_t t = 0; t < ntests; t++)
                printf("%s\n", tests[t].name);
            return 0;
        }
        size_t t = 0;
        while (t < ntests && strcmp(tests[t].name, argv[i]) != 0)
            t++;
        if (t == ntests) {
            fprintf(stderr, "%s: no test named \"%s\" (--list lists them)\n", argv[0], argv[i]);
            return 2;
        }
        selected[t] = true;
    }
    bool ready = true;
    if (fixture)
        df_setup_step("setup", &ready, fixture->setup);
    for (size_t t = 0; t < ntests && ready; t++) {
        if (!selected[t])
            continue;
        if (fixture && fixture->ready && !fixture->ready()) {
            printf("SKIP %s\n", tests[t].name);
            continue;
        }
        df_run_one(tests[t].name, tests[t].run);
    }
    if (fixture)
        df_teardown_step(fixture->teardown);
    return df_check_summary();
}

#endif
