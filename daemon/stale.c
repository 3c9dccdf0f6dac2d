/* stale.c: rotting deals (see stale.h). A spell is found once: by the look
 * whose window holds the moment it went stale, or, when it went stale before
 * the last look, as the change that began it is flushed. */
#include "stale.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "log.h"

bool df_stale_spell(const df_deal *d, const df_pipelines *pl, int64_t *since, int *rot_days)
{
    int outcome;
    if (!d->has_stage)
        return false;
    df_deal_stage_info(d, pl, &outcome, NULL, rot_days);
    if (outcome != DF_OPEN || *rot_days < 0)
        return false;
    *since = df_deal_idle_since(d);
    return true;
}

bool df_stale_on_arrival(const df_deal *before, const df_deal *after, const df_pipelines *pl,
                         int64_t looked, int64_t *since)
{
    int64_t before_since, limit;
    int rot, before_rot;
    if (!df_stale_spell(after, pl, since, &rot))
        return false;
    if (before && df_stale_spell(before, pl, &before_since, &before_rot) &&
        before_since == *since && df_name_same(&before->stage, &after->stage) &&
        df_str_same(df_deal_pipeline(before), df_deal_pipeline(after)))
        return false; /* the same spell */
    return !__builtin_add_overflow(*since, (int64_t)rot * DF_DAY_MS, &limit) && limit <= looked;
}

typedef struct scan {
    df_stale_found found;
    void *ctx;
    df_str pipeline;
    const df_name *stage;
} scan;

static int each_idle(void *ctx, const char *deal, size_t len, int64_t idle_since)
{
    scan *s = ctx;
    df_name id;
    df_name_set(&id, deal, len);
    s->found(s->ctx, &id, s->pipeline, s->stage, idle_since);
    return 0;
}

int df_stale_scan(df_store *st, MDB_txn *txn, const df_pipelines *pl, int64_t looked, int64_t now,
                  df_stale_found found, void *ctx)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < pl->count; i++) {
        const df_pipeline *p = &pl->items[i];
        for (int j = 0; rc == 0 && j < p->nstages; j++) {
            const df_stage_def *def = &p->stages[j];
            int64_t rot = (int64_t)def->rot_days * DF_DAY_MS, after, until;
            if (def->outcome != DF_OPEN || def->rot_days < 0 ||
                __builtin_sub_overflow(looked, rot, &after) ||
                __builtin_sub_overflow(now, rot, &until))
                continue;
            scan s = {found, ctx, {p->name.s, p->name.len}, &def->name};
            rc = df_store_idle_scan(st, txn, s.pipeline, (df_str){def->name.s, def->name.len},
                                    after, until, each_idle, &s);
        }
    }
    return rc;
}

/* ---- the finder ---- */

/* A request flushes first when the last look is this old. */
#define STALE_FORCE_MS 60000
#define STALE_MAX      100000

struct df_stale_finder {
    pthread_mutex_t mu;
    df_stale *stale; /* handed over, not yet taken by the loop (under mu) */
    size_t nstale, stale_cap;
    uint64_t stale_dropped;  /* under mu */
    atomic_bool stale_ready; /* something to take: the loop looks without the lock */

    /* the writer thread's */
    int64_t checked; /* deals that went stale up to here were found */
    int64_t looked;  /* when the writer last looked, by its clock */
    bool failing;    /* the last look failed (and said so) */
    df_stale *found; /* by the flush or look under way */
    size_t nfound, found_cap;
    uint64_t found_dropped;
};

df_stale_finder *df_stale_finder_new(void)
{
    df_stale_finder *f = calloc(1, sizeof(*f));
    if (f)
        pthread_mutex_init(&f->mu, NULL);
    return f;
}

void df_stale_finder_free(df_stale_finder *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f->stale);
    free(f->found);
    free(f);
}

void df_stale_finder_start(df_stale_finder *f, int64_t checked, int64_t now)
{
    f->checked = checked ? checked : now;
    /* a flush to look is forced only after a minute without one */
    f->looked = now;
}

int64_t df_stale_finder_checked(const df_stale_finder *f)
{
    return f->checked;
}

bool df_stale_finder_overdue(const df_stale_finder *f, int64_t now)
{
    return now - f->looked >= STALE_FORCE_MS;
}

/* Adds a notification to those found by the flush or look under way; they
 * reach the loop only once it succeeded. */
static void add_found(df_stale_finder *f, const df_name *deal, df_str pipeline,
                      const df_name *stage, int64_t since, int64_t now)
{
    if (f->nfound >= STALE_MAX ||
        !df_grow((void **)&f->found, &f->found_cap, f->nfound + 1, sizeof(df_stale))) {
        f->found_dropped++;
        return;
    }
    df_stale *n = &f->found[f->nfound++];
    n->deal = *deal;
    df_name_set(&n->pipeline, pipeline.ptr, pipeline.len);
    n->stage = *stage;
    n->since = since;
    n->idle_days = df_days_between(since, now);
}

void df_stale_finder_arrival(df_stale_finder *f, const df_deal *before, const df_deal *after,
                             const df_pipelines *pl, int64_t now)
{
    int64_t since;
    if (df_stale_on_arrival(before, after, pl, f->checked, &since))
        add_found(f, &after->deal, df_deal_pipeline(after), &after->stage, since, now);
}

void df_stale_finder_hand_over(df_stale_finder *f, bool succeeded)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; succeeded && i < f->nfound; i++) {
        if (f->nstale >= STALE_MAX ||
            !df_grow((void **)&f->stale, &f->stale_cap, f->nstale + 1, sizeof(df_stale)))
            f->stale_dropped++;
        else
            f->stale[f->nstale++] = f->found[i];
    }
    if (succeeded)
        f->stale_dropped += f->found_dropped;
    if (f->nstale || f->stale_dropped)
        atomic_store_explicit(&f->stale_ready, true, memory_order_release);
    pthread_mutex_unlock(&f->mu);
    f->nfound = 0;
    f->found_dropped = 0;
}

typedef struct look {
    df_stale_finder *f;
    int64_t now;
} look;

static void found_stale(void *ctx, const df_name *deal, df_str pipeline, const df_name *stage,
                        int64_t since)
{
    look *l = ctx;
    add_found(l->f, deal, pipeline, stage, since, l->now);
}

int df_stale_finder_look(df_stale_finder *f, df_store *st, const df_pipelines *pl)
{
    int64_t now = df_now_ms();
    MDB_txn *txn;
    int rc;
    f->looked = now;
    if (now <= f->checked)
        return 0;
    if ((rc = df_store_write_begin(st, &txn)) != 0)
        return rc;
    look l = {f, now};
    rc = df_stale_scan(st, txn, pl, f->checked, now, found_stale, &l);
    /* The mark is kept only when the look found something, so that an idle
     * daemon does not commit every second: a look that finds nothing may
     * be done again after a restart without reporting anything twice (and
     * flushes keep the mark too). */
    if (rc == 0 && f->nfound > 0 &&
        (rc = df_store_meta_put(st, txn, "stale_checked", (uint64_t)now)) == 0) {
        rc = df_store_write_commit(st, txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc == 0)
        f->checked = now;
    df_stale_finder_hand_over(f, rc == 0);
    /* it is tried every second: say it once, and once more when it works again */
    if (rc != 0 && !f->failing)
        df_log("looking for stale deals failed (tried again every second): %s%s", mdb_strerror(rc),
               rc == MDB_MAP_FULL ? " (restart dealflowd with a larger --map-size)" : "");
    else if (rc == 0 && f->failing)
        df_log("looking for stale deals works again");
    f->failing = rc != 0;
    return rc;
}

size_t df_stale_finder_take(df_stale_finder *f, df_stale **out)
{
    *out = NULL;
    /* called on every turn of the loop: the mutex is for when there is something */
    if (!atomic_load_explicit(&f->stale_ready, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&f->mu);
    atomic_store_explicit(&f->stale_ready, false, memory_order_relaxed);
    size_t n = f->nstale;
    uint64_t dropped = f->stale_dropped;
    *out = f->stale;
    f->stale = NULL;
    f->nstale = f->stale_cap = 0;
    f->stale_dropped = 0;
    pthread_mutex_unlock(&f->mu);
    if (dropped)
        df_log("%llu deal.stale notifications were not published: more than %d went stale at once",
               (unsigned long long)dropped, STALE_MAX);
    return n;
}
