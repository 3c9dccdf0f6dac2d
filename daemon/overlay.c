/* overlay.c: the deals changed since the last flush (see overlay.h). The
 * writer thread changes them without a lock except where a reader could see
 * the change: a table that grows, a committed record that steps aside or
 * is freed, the table readers look in. */
#include "overlay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

/* Rough heap cost of a table entry and of an allocation. */
#define ENTRY_COST 64
#define ALLOC_COST 16

struct df_overlay {
    pthread_mutex_t mu;
    df_table *visible;    /* the table readers look in (changes under mu) */
    df_table *deals;      /* deal -> df_pending, the writer's */
    df_pending **touched; /* deals the current batch changed */
    size_t ntouched, touched_cap;
    size_t bytes;
};

static void free_pending(void *value)
{
    df_pending *p = value;
    if (p) {
        free(p->record);
        free(p->committed);
        free(p->seqs);
        free(p);
    }
}

df_overlay *df_overlay_new(void)
{
    df_overlay *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    if (!(o->deals = df_table_new())) {
        free(o);
        return NULL;
    }
    o->visible = o->deals;
    pthread_mutex_init(&o->mu, NULL);
    return o;
}

void df_overlay_free(df_overlay *o)
{
    if (!o)
        return;
    if (o->visible != o->deals)
        df_table_free(o->visible, free_pending);
    df_table_free(o->deals, free_pending);
    free(o->touched);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

df_pending *df_overlay_find(const df_overlay *o, const char *deal, size_t len)
{
    return df_table_get(o->deals, deal, len);
}

df_pending *df_overlay_add(df_overlay *o, const char *deal, size_t len)
{
    df_pending *p = df_table_get(o->deals, deal, len);
    if (p)
        return p;
    bool added;
    /* the table may grow: readers must not look meanwhile */
    pthread_mutex_lock(&o->mu);
    void **slot = df_table_put(o->deals, deal, len, &added);
    if (slot && (p = calloc(1, sizeof(*p) + len))) {
        p->id_len = (uint8_t)len;
        memcpy(p->id, deal, len);
        *slot = p;
        o->bytes += sizeof(*p) + len + ALLOC_COST + ENTRY_COST;
    }
    pthread_mutex_unlock(&o->mu);
    return p;
}

bool df_overlay_push_seq(df_overlay *o, df_pending *p, uint64_t seq)
{
    if (p->nseqs == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 4;
        uint64_t *seqs = realloc(p->seqs, cap * sizeof(*seqs));
        if (!seqs)
            return false;
        o->bytes += (cap - p->cap) * sizeof(*seqs) + (p->cap ? 0 : ALLOC_COST);
        p->seqs = seqs;
        p->cap = cap;
    }
    p->seqs[p->nseqs++] = seq;
    return true;
}

bool df_overlay_keep(df_overlay *o, df_pending *p, const df_deal *d)
{
    uint8_t buf[DF_DEAL_RECORD_MAX];
    size_t len = df_deal_encode(d, buf);
    if (!p->touched) {
        if (o->ntouched == o->touched_cap) {
            size_t cap = o->touched_cap ? o->touched_cap * 2 : 1024;
            df_pending **touched = realloc(o->touched, cap * sizeof(*touched));
            if (!touched)
                return false;
            o->touched = touched;
            o->touched_cap = cap;
        }
        o->touched[o->ntouched++] = p;
        /* the committed state steps aside for readers until the commit */
        pthread_mutex_lock(&o->mu);
        p->committed = p->record;
        p->committed_len = p->len;
        p->record = NULL;
        p->len = 0;
        p->touched = true;
        pthread_mutex_unlock(&o->mu);
    }
    if (len != p->len || !p->record) {
        uint8_t *record = realloc(p->record, len);
        if (!record)
            return false;
        o->bytes += len - p->len + (p->record ? 0 : ALLOC_COST);
        p->record = record;
        p->len = (uint32_t)len;
    }
    memcpy(p->record, buf, len);
    return true;
}

df_pending *const *df_overlay_touched(const df_overlay *o, size_t *count)
{
    *count = o->ntouched;
    return o->touched;
}

void df_overlay_publish(df_overlay *o)
{
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->ntouched; i++) {
        df_pending *p = o->touched[i];
        if (p->committed)
            o->bytes -= p->committed_len + ALLOC_COST;
        free(p->committed);
        p->committed = NULL;
        p->committed_len = 0;
        p->touched = false;
    }
    o->ntouched = 0;
    pthread_mutex_unlock(&o->mu);
}

void df_overlay_clear(df_overlay *o)
{
    pthread_mutex_lock(&o->mu);
    df_table_clear(o->deals, free_pending);
    pthread_mutex_unlock(&o->mu);
    o->ntouched = 0;
    o->bytes = 0;
}

bool df_overlay_rebuild(df_overlay *o)
{
    df_table *fresh = df_table_new();
    if (!fresh)
        return false;
    /* a rebuild that did not finish left its table to readers' old one */
    if (o->deals != o->visible)
        df_table_free(o->deals, free_pending);
    o->deals = fresh;
    o->ntouched = 0;
    o->bytes = 0;
    return true;
}

void df_overlay_rebuilt(df_overlay *o)
{
    pthread_mutex_lock(&o->mu);
    df_table *old = o->visible;
    o->visible = o->deals;
    pthread_mutex_unlock(&o->mu);
    if (old != o->deals)
        df_table_free(old, free_pending);
}

df_table_item *df_overlay_sorted(const df_overlay *o, size_t *count)
{
    *count = df_table_count(o->deals);
    return df_table_sorted(o->deals);
}

size_t df_overlay_bytes(const df_overlay *o)
{
    return o->bytes;
}

bool df_overlay_lookup(df_overlay *o, const char *deal, size_t len, uint8_t *record,
                       size_t *record_len)
{
    pthread_mutex_lock(&o->mu);
    const df_pending *p = df_table_get(o->visible, deal, len);
    const uint8_t *state = NULL;
    if (p) {
        state = p->touched ? p->committed : p->record;
        *record_len = p->touched ? p->committed_len : p->len;
    }
    if (state)
        memcpy(record, state, *record_len);
    pthread_mutex_unlock(&o->mu);
    return state != NULL;
}
