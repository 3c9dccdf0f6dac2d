/* descriptors.c: the descriptor limit raised at start, and open descriptors
 * counted against it (in /proc/self/fd), so that an operator learns from
 * the log why new clients wait before they all do. */
#include "descriptors.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define WARN_PERCENT     90
#define CALM_PERCENT     80
#define WARN_INTERVAL_MS 60000

static const char *limit_text(rlim_t v, char *buf, size_t size)
{
    if (v == RLIM_INFINITY)
        return "unlimited";
    snprintf(buf, size, "%llu", (unsigned long long)v);
    return buf;
}

void df_descriptors_raise(df_descriptor_watch *watch)
{
    struct rlimit rl;
    char soft[32], hard[32];
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        df_log("cannot read the descriptor limit: %s", strerror(errno));
        return;
    }
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            df_log("cannot raise the descriptor limit from %s to %s: %s",
                   limit_text(was, soft, sizeof(soft)), limit_text(rl.rlim_max, hard, sizeof(hard)),
                   strerror(errno));
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur != was)
        df_log("descriptor limit %s (raised from %s)", limit_text(rl.rlim_cur, soft, sizeof(soft)),
               limit_text(was, hard, sizeof(hard)));
    else
        df_log("descriptor limit %s", limit_text(rl.rlim_cur, soft, sizeof(soft)));
    watch->limit = rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur;
}

/* The open descriptors, or -1 when they cannot be counted. */
static long count_open(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n - 1; /* the directory's own */
}

void df_descriptors_check(df_descriptor_watch *watch)
{
    if (watch->limit == 0)
        return;
    long open = count_open();
    if (open < 0)
        return;
    uint64_t percent = (uint64_t)open * 100 / watch->limit;
    int64_t now = df_now_ms();
    if (percent >= WARN_PERCENT) {
        if (!watch->near || now - watch->warned_ms >= WARN_INTERVAL_MS) {
            df_log("%ld descriptors open of a limit of %llu: every connection takes one, and "
                   "at the limit new clients wait until one closes",
                   open, (unsigned long long)watch->limit);
            watch->warned_ms = now;
        }
        watch->near = true;
    } else if (watch->near && percent < CALM_PERCENT) {
        df_log("%ld descriptors open of a limit of %llu", open, (unsigned long long)watch->limit);
        watch->near = false;
    }
}
