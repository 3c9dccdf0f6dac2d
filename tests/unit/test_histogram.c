/* test_histogram.c: unit tests of the latency histograms: which bucket an
 * observation falls in, cumulative counts, the sum, and observations from
 * two threads at once. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "histogram.h"

static void test_bounds_ascend(void)
{
    CHECK(df_histogram_bounds_us[0] > 0);
    for (size_t i = 1; i < DF_HISTOGRAM_BOUNDS; i++)
        CHECK(df_histogram_bounds_us[i] > df_histogram_bounds_us[i - 1]);
}

static void test_empty(void)
{
    df_histogram h;
    df_histogram_init(&h);
    df_histogram_snapshot s = df_histogram_read(&h);
    CHECK_INT(s.count, 0);
    CHECK_INT(s.sum_us, 0);
    for (size_t i = 0; i < DF_HISTOGRAM_BOUNDS; i++)
        CHECK_INT(s.le[i], 0);
}

/* An observation equal to a bound counts in that bound's bucket (le is
 * "less than or equal"); one above the largest only in count. */
static void test_edges(void)
{
    df_histogram h;
    df_histogram_init(&h);
    df_histogram_observe(&h, 0);
    df_histogram_observe(&h, 50);
    df_histogram_observe(&h, 51);
    df_histogram_observe(&h, 1000);
    df_histogram_observe(&h, 10000000);
    df_histogram_observe(&h, 10000001);
    df_histogram_observe(&h, UINT32_MAX);
    df_histogram_snapshot s = df_histogram_read(&h);
    CHECK_INT(df_histogram_bounds_us[0], 50);
    CHECK_INT(s.le[0], 2); /* 0, 50 */
    CHECK_INT(s.le[1], 3); /* 51 <= 100 */
    CHECK_INT(s.le[3], 3); /* nothing up to 500 */
    CHECK_INT(s.le[4], 4); /* 1000 */
    CHECK_INT(s.le[DF_HISTOGRAM_BOUNDS - 1], 5);
    CHECK_INT(df_histogram_bounds_us[DF_HISTOGRAM_BOUNDS - 1], 10000000);
    CHECK_INT(s.count, 7);
    CHECK_INT(s.sum_us, 0 + 50 + 51 + 1000 + 10000000 + 10000001 + (uint64_t)UINT32_MAX);
}

static void test_cumulative(void)
{
    df_histogram h;
    df_histogram_init(&h);
    for (uint64_t us = 1; us <= 20000000; us = us * 3 + 7)
        df_histogram_observe(&h, us);
    df_histogram_snapshot s = df_histogram_read(&h);
    uint64_t expect = 0;
    for (size_t i = 0; i < DF_HISTOGRAM_BOUNDS; i++) {
        if (i > 0)
            CHECK(s.le[i] >= s.le[i - 1]);
        expect = 0;
        for (uint64_t us = 1; us <= 20000000; us = us * 3 + 7)
            expect += us <= df_histogram_bounds_us[i];
        CHECK_INT(s.le[i], expect);
    }
    CHECK(s.count >= s.le[DF_HISTOGRAM_BOUNDS - 1]);
}

#define PER_THREAD 100000

static void *observe_many(void *arg)
{
    df_histogram *h = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++)
        df_histogram_observe(h, i % 3 == 0 ? 40 : 3000);
    return NULL;
}

static void test_two_threads(void)
{
    df_histogram h;
    df_histogram_init(&h);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, observe_many, &h), 0);
    observe_many(&h);
    /* a read while the other thread observes is still a valid histogram */
    df_histogram_snapshot mid = df_histogram_read(&h);
    CHECK(mid.le[0] <= mid.count);
    pthread_join(t, NULL);
    df_histogram_snapshot s = df_histogram_read(&h);
    uint64_t small = 2 * ((PER_THREAD + 2) / 3);
    CHECK_INT(s.count, 2 * PER_THREAD);
    CHECK_INT(s.le[0], small);
    CHECK_INT(s.le[5], small);          /* 3000 > 2500 */
    CHECK_INT(s.le[6], 2 * PER_THREAD); /* 3000 <= 5000 */
    CHECK_INT(s.sum_us, small * 40 + (2 * PER_THREAD - small) * 3000);
}

static const df_test tests[] = {
    {"bounds_ascend", test_bounds_ascend},
    {"empty", test_empty},
    {"edges", test_edges},
    {"cumulative", test_cumulative},
    {"two_threads", test_two_threads},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return df_test_main(argc, argv, tests, NULL);
}
