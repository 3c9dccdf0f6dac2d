/* outlook.c: renders forecast and calibration replies, and the series of a
 * metrics reply, as tables for people (pure: a reply in, text out). */
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define BAR_WIDTH 30

/* A period's bound as a UTC date, with the time when it is not midnight. */
static const char *date_text(int64_t ms, char *buf, size_t cap)
{
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, cap, "%" PRId64, ms);
        return buf;
    }
    if (ms % 86400000 == 0)
        strftime(buf, cap, "%Y-%m-%d", &tm);
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static const msgpack_object *array_of_maps(const msgpack_object *reply, const char *key)
{
    const msgpack_object *a = mp_get(reply, key);
    if (!a || a->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    for (uint32_t i = 0; i < a->via.array.size; i++)
        if (a->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
            return NULL;
    return a;
}

static void put_bar(FILE *out, double value, double max)
{
    int len = max > 0 ? (int)lround(value / max * BAR_WIDTH) : 0;
    if (len == 0 && value > 0)
        len = 1;
    for (int b = 0; b < BAR_WIDTH; b++)
        fputc(b < len ? '#' : ' ', out);
}

int forecast_render(FILE *out, const msgpack_object *reply, const char *pipeline)
{
    const msgpack_object *periods = array_of_maps(reply, "periods");
    if (!periods)
        return -1;
    uint32_t n = periods->via.array.size;
    double max = 0;
    for (uint32_t i = 0; i < n; i++) {
        double w = fabs(mp_num_or_zero(&periods->via.array.ptr[i], "weighted"));
        if (w > max)
            max = w;
    }
    fprintf(out, "forecast of pipeline %s  (bar: weighted)\n", pipeline);
    fprintf(out, "%-20s  %-*s  %6s  %14s  %14s  %6s  %14s\n", "period", BAR_WIDTH, "", "open",
            "amount", "weighted", "won", "won amount");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *p = &periods->via.array.ptr[i];
        char start[40], amount[40], won_amount[40];
        fprintf(out, "%-20s  ", date_text(mp_int_or_zero(p, "start"), start, sizeof start));
        put_bar(out, fabs(mp_num_or_zero(p, "weighted")), max);
        fprintf(out, "  %6" PRId64 "  %14s  %14.2f  %6" PRId64 "  %14s\n",
                mp_int_or_zero(p, "count"), mp_num_text(mp_get(p, "amount"), amount, sizeof amount),
                mp_num_or_zero(p, "weighted"), mp_int_or_zero(p, "won_count"),
                mp_num_text(mp_get(p, "won_amount"), won_amount, sizeof won_amount));
    }
    const char *const rows[] = {"overdue", "no_date"};
    const char *const labels[] = {"overdue", "no close date"};
    for (int i = 0; i < 2; i++) {
        const msgpack_object *c = mp_get(reply, rows[i]);
        char amount[40];
        if (!c || c->type != MSGPACK_OBJECT_MAP)
            return -1;
        fprintf(out, "%-20s  %-*s  %6" PRId64 "  %14s  %14.2f\n", labels[i], BAR_WIDTH, "",
                mp_int_or_zero(c, "count"), mp_num_text(mp_get(c, "amount"), amount, sizeof amount),
                mp_num_or_zero(c, "weighted"));
    }
    return 0;
}

int calibration_render(FILE *out, const msgpack_object *reply, const char *pipeline)
{
    const msgpack_object *stages = array_of_maps(reply, "stages");
    if (!stages)
        return -1;
    fprintf(out, "calibration of pipeline %s\n", pipeline);
    fprintf(out, "%-24s  %10s  %8s  %8s  %8s\n", "stage", "configured", "reached", "won", "actual");
    for (uint32_t i = 0; i < stages->via.array.size; i++) {
        const msgpack_object *s = &stages->via.array.ptr[i];
        char name[41], actual[24];
        double a;
        if (mp_num(s, "actual", &a))
            snprintf(actual, sizeof actual, "%.1f%%", a * 100);
        else
            snprintf(actual, sizeof actual, "-");
        fprintf(out, "%-24s  %9" PRId64 "%%  %8" PRId64 "  %8" PRId64 "  %8s\n",
                mp_str(s, "stage", name, sizeof name), mp_int_or_zero(s, "configured"),
                mp_int_or_zero(s, "reached"), mp_int_or_zero(s, "won"), actual);
    }
    return 0;
}

int series_render(FILE *out, const msgpack_object *reply)
{
    const msgpack_object *series = array_of_maps(reply, "series");
    if (!series)
        return -1;
    fprintf(out, "trend\n");
    fprintf(out, "%-20s  %6s  %6s  %8s  %10s  %14s  %14s  %7s\n", "period", "won", "lost",
            "win rate", "avg cycle", "won amount", "lost amount", "created");
    for (uint32_t i = 0; i < series->via.array.size; i++) {
        const msgpack_object *p = &series->via.array.ptr[i];
        char start[40], rate[24], cycle[24], won[40], lost[40];
        double v;
        if (mp_num(p, "win_rate", &v))
            snprintf(rate, sizeof rate, "%.1f%%", v * 100);
        else
            snprintf(rate, sizeof rate, "-");
        if (mp_num(p, "avg_cycle_days", &v))
            snprintf(cycle, sizeof cycle, "%.1f", v);
        else
            snprintf(cycle, sizeof cycle, "-");
        fprintf(out, "%-20s  %6" PRId64 "  %6" PRId64 "  %8s  %10s  %14s  %14s  %7" PRId64 "\n",
                date_text(mp_int_or_zero(p, "start"), start, sizeof start),
                mp_int_or_zero(p, "won"), mp_int_or_zero(p, "lost"), rate, cycle,
                mp_num_text(mp_get(p, "won_amount"), won, sizeof won),
                mp_num_text(mp_get(p, "lost_amount"), lost, sizeof lost),
                mp_int_or_zero(p, "created"));
    }
    return 0;
}
