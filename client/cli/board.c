/* board.c: renders board and metrics replies as tables for people (pure: a reply in, text out). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "cli.h"

#define NAME_MAX_SHOWN 40
#define COL_RESET      "\033[0m"
#define COL_BOLD       "\033[1m"
#define COL_DIM        "\033[2m"
#define COL_RED        "\033[31m"
#define COL_BAR        "\033[36m"

/* Ints as they are, floats with two decimals, nil as "-". */
static const char *amount_text(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
    return mp_num_text(mp_get(map, key), buf, cap);
}

int board_render(FILE *out, const msgpack_object *reply, const char *pipeline,
                 const render_opts *opt)
{
    const msgpack_object *stages = mp_get(reply, "stages");
    if (!stages || stages->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    uint32_t n = stages->via.array.size;
    int name_w = 5;
    double max_amount = 0;
    int64_t max_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *s = &stages->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_MAP)
            return -1;
        const msgpack_object *name = mp_get(s, "stage");
        int w = name && name->type == MSGPACK_OBJECT_STR ? (int)name->via.str.size : 0;
        const msgpack_object *removed = mp_get(s, "removed");
        if (removed && removed->type == MSGPACK_OBJECT_BOOLEAN && removed->via.boolean)
            w += (int)strlen(" (removed)");
        if (w > name_w)
            name_w = w > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : w;
        double amount = fabs(mp_num_or_zero(s, "amount"));
        if (amount > max_amount)
            max_amount = amount;
        if (mp_int_or_zero(s, "count") > max_count)
            max_count = mp_int_or_zero(s, "count");
    }
    int bar_w = opt && opt->bar_width > 0 ? opt->bar_width : 30;
    bool colour = opt && opt->colour;
    /* Without any amount the bar shows the count, so an empty pipeline of
     * leads still reads at a glance. */
    bool by_amount = max_amount > 0;
    fprintf(out, "%spipeline %s%s  (bar: %s)\n", colour ? COL_BOLD : "", pipeline,
            colour ? COL_RESET : "", by_amount ? "amount" : "count");
    fprintf(out, "%s%-*s  %-*s  %8s  %14s  %14s  %8s  %6s%s\n", colour ? COL_BOLD : "", name_w,
            "stage", bar_w, "", "count", "amount", "weighted", "avg days", "stale",
            colour ? COL_RESET : "");
    int64_t total_count = 0, total_int = 0;
    double total_amount = 0, total_weighted = 0;
    bool all_int = true; /* the total is shown as the rows are: an int while every amount is */
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *s = &stages->via.array.ptr[i];
        char name[NAME_MAX_SHOWN + 1], full[NAME_MAX_SHOWN + 16], amount[40];
        mp_str(s, "stage", name, sizeof name);
        const msgpack_object *removed = mp_get(s, "removed");
        bool is_removed =
            removed && removed->type == MSGPACK_OBJECT_BOOLEAN && removed->via.boolean;
        snprintf(full, sizeof full, "%s%s", name, is_removed ? " (removed)" : "");
        int64_t count = mp_int_or_zero(s, "count");
        double value = by_amount ? fabs(mp_num_or_zero(s, "amount")) : (double)count;
        double max = by_amount ? max_amount : (double)max_count;
        int len = max > 0 ? (int)lround(value / max * bar_w) : 0;
        if (len == 0 && value > 0)
            len = 1;
        total_count += count;
        total_amount += mp_num_or_zero(s, "amount");
        int64_t amount_int = 0;
        const msgpack_object *amount_value = mp_get(s, "amount");
        bool is_int = mp_int(s, "amount", &amount_int);
        if ((amount_value && amount_value->type != MSGPACK_OBJECT_NIL && !is_int) ||
            __builtin_add_overflow(total_int, amount_int, &total_int))
            all_int = false;
        total_weighted += mp_num_or_zero(s, "weighted");
        int64_t stale = mp_int_or_zero(s, "stale");
        fprintf(out, "%s%-*s%s  %s", is_removed && colour ? COL_DIM : "", name_w, full,
                is_removed && colour ? COL_RESET : "", colour ? COL_BAR : "");
        for (int b = 0; b < len; b++)
            fputs(colour ? "\xe2\x96\x88" : "#", out);
        /* a closed stage has no days in stage (nil), nor a filtered board stale counts */
        char days[24], stale_text[24];
        const msgpack_object *days_value = mp_get(s, "avg_days_in_stage");
        const msgpack_object *stale_value = mp_get(s, "stale");
        if (days_value && days_value->type == MSGPACK_OBJECT_NIL)
            snprintf(days, sizeof days, "-");
        else
            snprintf(days, sizeof days, "%.1f", mp_num_or_zero(s, "avg_days_in_stage"));
        if (stale_value && stale_value->type == MSGPACK_OBJECT_NIL)
            snprintf(stale_text, sizeof stale_text, "-");
        else
            snprintf(stale_text, sizeof stale_text, "%" PRId64, stale);
        fprintf(out, "%s%*s  %8" PRId64 "  %14s  %14.2f  %8s  %s%6s%s\n", colour ? COL_RESET : "",
                bar_w - len, "", count, amount_text(s, "amount", amount, sizeof amount),
                mp_num_or_zero(s, "weighted"), days, stale > 0 && colour ? COL_RED : "", stale_text,
                stale > 0 && colour ? COL_RESET : "");
    }
    char total[40];
    if (all_int)
        snprintf(total, sizeof total, "%" PRId64, total_int);
    else
        snprintf(total, sizeof total, "%.2f", total_amount);
    fprintf(out, "%-*s  %-*s  %8" PRId64 "  %14s  %14.2f\n", name_w, "total", bar_w, "",
            total_count, total, total_weighted);
    return 0;
}

static void metric_line(FILE *out, const char *label, const msgpack_object *reply, const char *key,
                        bool percent)
{
    const msgpack_object *v = mp_get(reply, key);
    char buf[48];
    double d;
    if (percent && mp_num(reply, key, &d))
        snprintf(buf, sizeof buf, "%.1f%%", d * 100);
    else if (v && (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32))
        snprintf(buf, sizeof buf, "%.2f", v->via.f64);
    else
        mp_num_text(v, buf, sizeof buf);
    fprintf(out, "%-22s %s\n", label, buf);
}

int metrics_render(FILE *out, const msgpack_object *reply, const char *pipeline)
{
    if (!reply || reply->type != MSGPACK_OBJECT_MAP || !mp_get(reply, "won"))
        return -1;
    fprintf(out, "metrics of pipeline %s\n", pipeline);
    metric_line(out, "won", reply, "won", false);
    metric_line(out, "lost", reply, "lost", false);
    metric_line(out, "win rate", reply, "win_rate", true);
    metric_line(out, "avg cycle (days)", reply, "avg_cycle_days", false);
    /* figures a daemon before them does not answer are left out */
    static const char *const amounts[][2] = {{"won amount", "won_amount"},
                                             {"avg won amount", "avg_won_amount"},
                                             {"lost amount", "lost_amount"},
                                             {"created", "created"}};
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++)
        if (mp_get(reply, amounts[i][1]))
            metric_line(out, amounts[i][0], reply, amounts[i][1], false);
    metric_line(out, "open", reply, "open", false);
    metric_line(out, "open amount", reply, "open_amount", false);
    metric_line(out, "weighted", reply, "weighted", false);
    metric_line(out, "velocity (per day)", reply, "velocity", false);
    const msgpack_object *days = mp_get(reply, "avg_days_in_stage");
    if (days && days->type == MSGPACK_OBJECT_MAP && days->via.map.size > 0) {
        fprintf(out, "avg days in stage\n");
        for (uint32_t i = 0; i < days->via.map.size; i++) {
            const msgpack_object *k = &days->via.map.ptr[i].key;
            char name[NAME_MAX_SHOWN + 1], value[48];
            mp_key_name(k, name, sizeof name);
            const msgpack_object *v = &days->via.map.ptr[i].val;
            if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
                snprintf(value, sizeof value, "%.1f", v->via.f64);
            else
                mp_num_text(v, value, sizeof value);
            fprintf(out, "  %-20s %s\n", name, value);
        }
    }
    const msgpack_object *conv = mp_get(reply, "conversion");
    if (conv && conv->type == MSGPACK_OBJECT_ARRAY && conv->via.array.size > 0) {
        fprintf(out, "conversion\n");
        for (uint32_t i = 0; i < conv->via.array.size; i++) {
            const msgpack_object *c = &conv->via.array.ptr[i];
            char from[NAME_MAX_SHOWN + 1], to[NAME_MAX_SHOWN + 1], pair[2 * NAME_MAX_SHOWN + 8],
                rate[24];
            double r;
            snprintf(pair, sizeof pair, "%s -> %s", mp_str(c, "from", from, sizeof from),
                     mp_str(c, "to", to, sizeof to));
            if (mp_num(c, "rate", &r))
                snprintf(rate, sizeof rate, "%.1f%%", r * 100);
            else
                snprintf(rate, sizeof rate, "-");
            fprintf(out, "  %-30s %s\n", pair, rate);
        }
    }
    return 0;
}

/* Rows of a map of name -> count, largest first, with each one's share. */
static void count_table(FILE *out, const char *title, const msgpack_object *map, bool sorted)
{
    uint32_t n = map->via.map.size;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        if (map->via.map.ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            total += map->via.map.ptr[i].val.via.u64;
    fprintf(out, "%-30s %8s %7s\n", title, "lost", "share");
    bool shown[n > 0 ? n : 1];
    memset(shown, 0, sizeof shown);
    for (uint32_t row = 0; row < n; row++) {
        uint32_t pick = row;
        if (sorted) { /* the largest not yet shown; ties in reply order */
            pick = n;
            for (uint32_t i = 0; i < n; i++) {
                const msgpack_object *v = &map->via.map.ptr[i].val;
                uint64_t c = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
                const msgpack_object *best = pick < n ? &map->via.map.ptr[pick].val : NULL;
                uint64_t b =
                    best && best->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? best->via.u64 : 0;
                if (!shown[i] && (pick == n || c > b))
                    pick = i;
            }
        }
        shown[pick] = true;
        const msgpack_object *k = &map->via.map.ptr[pick].key;
        const msgpack_object *v = &map->via.map.ptr[pick].val;
        char name[NAME_MAX_SHOWN + 1];
        mp_key_name(k, name, sizeof name);
        uint64_t count = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
        fprintf(out, "  %-28s %8" PRIu64 " %6.1f%%\n", name, count,
                total ? 100.0 * (double)count / (double)total : 0.0);
    }
}

int losses_render(FILE *out, const msgpack_object *reply, const char *pipeline)
{
    const msgpack_object *from = mp_get(reply, "lost_from");
    const msgpack_object *reasons = mp_get(reply, "loss_reasons");
    if (!from || from->type != MSGPACK_OBJECT_MAP || !reasons ||
        reasons->type != MSGPACK_OBJECT_MAP)
        return -1;
    fprintf(out, "losses of pipeline %s\n", pipeline);
    metric_line(out, "lost", reply, "lost", false);
    metric_line(out, "lost amount", reply, "lost_amount", false);
    count_table(out, "lost from", from, false);
    count_table(out, "reason", reasons, true);
    return 0;
}
