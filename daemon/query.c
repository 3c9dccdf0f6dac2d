/* query.c: the api's requests and its read operations. Each read sees
 * committed state only: every acknowledged event and nothing that is not
 * yet on disk. `deal` looks in the writer's in-memory state first; the
 * others read one LMDB read transaction, after the derived state they need
 * has been flushed. */
#include "query.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outlook.h"
#include "read_state.h"
#include "record.h"
#include "redact.h"
#include "reply.h"
#include "report.h"
#include "version.h"

#define VERSION_STRING DF_VERSION

#define LIST_DEFAULT     100
#define PAGE_MAX         10000
#define EVENTS_DEFAULT   1000
#define REJECTED_DEFAULT 100

/* Each op returns ANSWERED once its reply is packed (ok or a refusal), or
 * an LMDB error with nothing packed, which df_request_answer answers. */
#define ANSWERED 0

/* What one request works with. */
typedef struct query {
    df_daemon *d;
    df_read_state *r;
    const msgpack_object *req;
    msgpack_packer *pk;
    MDB_txn *txn;
    int64_t now;
    uint64_t pipeline_changes; /* the writer's count, read before txn began */
} query;

static void fail(query *q, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(query *q, int code, const char *fmt, ...)
{
    char message[DF_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    df_reply_error(q->pk, code, message);
}

static void store_failed(query *q, int rc)
{
    if (rc == DF_STORE_ECORRUPT) {
        unsigned long long seq = (unsigned long long)df_store_corrupt_seq(q->d->store);
        df_log("the stored event at seq %llu does not match its digest", seq);
        fail(q, DF_ECORRUPT, "the stored event at seq %llu does not match its digest", seq);
        return;
    }
    df_log("read failed: %s", mdb_strerror(rc));
    fail(q, DF_EINTERNAL, "the store could not be read: %s", mdb_strerror(rc));
}

/* The writer's counters; all 0 for a daemon without a writer. */
static df_writer_counters counters(const df_daemon *d)
{
    return d->writer ? df_writer_counters_get(d->writer) : (df_writer_counters){0};
}

/* ---- request keys ---- */

static bool bad_key(query *q, const char *key, const char *what)
{
    fail(q, DF_EBAD_REQUEST, "`%s` must be %s", key, what);
    return false;
}

/* Reads an optional string key into out (len 0 when absent). */
static bool opt_str(query *q, const char *key, df_str *out)
{
    bool bad = false;
    out->ptr = NULL;
    out->len = 0;
    if (!df_get_str(q->req, key, out, &bad) && bad)
        return bad_key(q, key, "a string");
    return true;
}

static bool opt_uint(query *q, const char *key, uint64_t *out, uint64_t fallback, uint64_t min,
                     uint64_t max)
{
    bool bad = false;
    char what[80];
    if (!df_get_uint(q->req, key, out, &bad))
        *out = fallback;
    if (bad || *out < min || *out > max) {
        snprintf(what, sizeof(what), "an integer in %llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        return bad_key(q, key, what);
    }
    return true;
}

static bool opt_bool(query *q, const char *key, bool *out)
{
    bool bad = false;
    if (!df_get_bool(q->req, key, out, &bad))
        *out = false;
    return bad ? bad_key(q, key, "a boolean") : true;
}

static bool opt_time(query *q, const char *key, int64_t *out, bool *given)
{
    bool bad = false;
    *given = df_get_int(q->req, key, out, &bad);
    if (bad)
        return bad_key(q, key, "an integer (ms since the Unix epoch)");
    return true;
}

static bool read_now(query *q)
{
    bool given;
    int64_t now;
    if (!opt_time(q, "now", &now, &given))
        return false;
    q->now = given ? now : df_now_ms();
    return true;
}

/* The figures of board, metrics and forecast as of a past moment need a
 * history of the aggregate rows that the store does not keep yet: `as_of`
 * is refused rather than answered with today's figures, which a client
 * would take for the past's. */
static bool refuse_as_of(query *q, const char *op)
{
    if (!df_map_get(q->req, "as_of"))
        return true;
    fail(q, DF_EBAD_REQUEST,
         "`%s` does not take `as_of` yet: its figures are as the pipeline stands now "
         "(`deal` takes `as_of`)",
         op);
    return false;
}

static bool read_deal_id(query *q, df_deal *deal)
{
    df_str id;
    if (!opt_str(q, "deal", &id))
        return false;
    if (id.len == 0 || id.len > DF_MAX_ID)
        return bad_key(q, "deal", "a string of 1..128 bytes");
    df_deal_init(deal, id.ptr, id.len);
    return true;
}

static int load_pipelines(query *q)
{
    return df_read_state_load_pipelines(q->r, q->d->store, q->txn, q->pipeline_changes);
}

/* Reads `pipeline` (default `default`), which must be defined. */
static const df_pipeline *read_pipeline(query *q)
{
    df_str name;
    if (!opt_str(q, "pipeline", &name))
        return NULL;
    if (!name.ptr)
        name = (df_str){DF_DEFAULT_PIPELINE, sizeof DF_DEFAULT_PIPELINE - 1};
    int rc = load_pipelines(q);
    if (rc != 0) {
        store_failed(q, rc);
        return NULL;
    }
    const df_pipeline *p = df_pipelines_find(&q->r->pipelines, name.ptr, name.len);
    if (!p)
        fail(q, DF_EUNKNOWN_PIPELINE, "pipeline `%.*s` is not defined", (int)name.len, name.ptr);
    return p;
}

static bool read_list_filter(query *q, df_list_page *l)
{
    df_list_filter *f = &l->filter;
    df_str status;
    bool bad = false, stale;
    if (!opt_str(q, "pipeline", &f->pipeline) || !opt_str(q, "stage", &f->stage) ||
        !opt_str(q, "owner", &f->owner) || !opt_str(q, "product", &f->product) ||
        !opt_str(q, "source", &f->source) || !opt_str(q, "status", &status) || !read_now(q) ||
        !opt_uint(q, "limit", &l->limit, LIST_DEFAULT, 1, PAGE_MAX))
        return false;
    f->now = q->now;
    if (status.ptr) {
        for (int o = DF_OPEN; o <= DF_LOST; o++)
            if (df_str_eq(status, df_outcome_name(o)))
                f->status = o;
        if (f->status < 0)
            return bad_key(q, "status", "one of open, won, lost");
    }
    if (df_get_bool(q->req, "stale", &stale, &bad))
        f->stale = stale;
    if (bad)
        return bad_key(q, "stale", "true or false");
    f->has_idle = df_get_uint(q->req, "idle_days", &f->idle_days, &bad);
    if (bad || f->idle_days > 1000000)
        return bad_key(q, "idle_days", "an integer in 0..1000000");
    return true;
}

static bool read_cursor(query *q, char *after, size_t *len, bool *has)
{
    df_str cursor;
    *has = false;
    if (!opt_str(q, "cursor", &cursor))
        return false;
    if (!cursor.ptr)
        return true;
    if (!df_cursor_decode(cursor, after, len))
        return bad_key(q, "cursor", "a cursor from an earlier `list` reply");
    *has = true;
    return true;
}

/* ---- ping and stats ---- */

static int op_ping(query *q)
{
    df_writer_counters c = counters(q->d);
    df_reply_ok(q->pk, 2);
    df_pack_cstr(q->pk, "version");
    df_pack_cstr(q->pk, VERSION_STRING);
    df_pack_cstr(q->pk, "last_seq");
    msgpack_pack_uint64(q->pk, c.committed_seq);
    return ANSWERED;
}

static int op_stats(query *q)
{
    df_daemon *d = q->d;
    df_writer_counters c = counters(d);
    df_store_space space = df_store_space_get(d->store);
    df_stats s = {
        .notifications = d->notifications,
        .stale_notifications = d->stale_notifications,
        .pending = (d->filling ? d->filling->count : 0) + (d->appends ? d->appends->count : 0),
        .uptime_ms = df_now_ms() - d->started_ms,
        .db_bytes = df_store_disk_bytes(d->store),
        .disk_free_bytes = space.disk_free,
        .map_bytes = space.map_bytes,
        .map_used_bytes = space.map_used,
        .commit_latency = df_writer_commit_latency(d->writer),
        .append_latency = df_histogram_read(&d->append_latency),
    };
    int rc = df_store_chain_head(d->store, q->txn, s.chain_head);
    if (rc != 0)
        return rc;
    df_reply_stats(q->pk, &c, &s);
    return ANSWERED;
}

/* ---- deal and history ---- */

static int deal_not_known(query *q, const df_deal *deal)
{
    char shown[64];
    fail(q, DF_ENOT_FOUND, "deal `%s` is not known",
         df_printable(deal->deal.s, deal->deal.len, shown, sizeof(shown)));
    return ANSWERED;
}

static int op_deal(query *q)
{
    df_read_state *r = q->r;
    df_deal *deal = &r->deal;
    char shown[64];
    int64_t as_of;
    bool has_as_of, has_now;
    int rc;
    if (!read_deal_id(q, deal) || !opt_time(q, "as_of", &as_of, &has_as_of) ||
        !opt_time(q, "now", &q->now, &has_now))
        return ANSWERED;
    if (!has_now)
        q->now = has_as_of ? as_of : df_now_ms();
    if ((rc = load_pipelines(q)) != 0)
        return rc;
    uint8_t record[DF_DEAL_RECORD_MAX];
    size_t len;
    if (!has_as_of && q->d->writer &&
        df_writer_lookup(q->d->writer, deal->deal.s, deal->deal.len, record, &len)) {
        rc = df_deal_decode(record, len, deal) == 0 ? 0 : MDB_CORRUPTED;
    } else {
        /* a flush may have moved the deal from memory to the store since the
         * transaction began: only a transaction begun after the miss sees it */
        df_store_read_end(q->d->store, q->txn);
        if ((rc = df_store_read_begin(q->d->store, &q->txn)) != 0)
            return rc;
        rc = df_store_deal_get(q->d->store, q->txn, deal);
    }
    if (rc == MDB_NOTFOUND)
        return deal_not_known(q, deal);
    if (rc != 0)
        return rc;
    if (has_as_of) {
        /* the request waited for a flush: the store holds every event of the deal */
        df_refolder *refolder = df_read_state_refolder(r);
        if (!refolder) {
            fail(q, DF_EINTERNAL, "out of memory");
            return ANSWERED;
        }
        rc = df_refold(refolder, q->d->store, q->txn, &r->pipelines, as_of, NULL, 0, deal);
        if (rc != 0)
            return rc;
        if (deal->version == 0) {
            fail(q, DF_ENOT_FOUND, "deal `%s` has no event at or before %lld",
                 df_printable(deal->deal.s, deal->deal.len, shown, sizeof(shown)),
                 (long long)as_of);
            return ANSWERED;
        }
    }
    df_deal_view_at(deal, q->now, &r->pipelines, &r->view);
    df_reply_deal(q->pk, deal, &r->view);
    return ANSWERED;
}

/* What the items of one page may take: the reply's byte cap (reply.h)
 * less what it packs around them. */
static size_t page_bytes(const query *q)
{
    return df_reply_bytes_max(q->d->opt.max_message) - DF_REPLY_FRAME_BYTES;
}

/* Reads `after` and `limit` (default_limit when absent) and makes room for
 * the page, whose items take their stored bytes and item_extra more in the
 * reply. False when it answered with an error. */
static bool read_page(query *q, uint64_t default_limit, size_t item_extra, df_page *p,
                      uint64_t *after)
{
    uint64_t limit;
    if (!opt_uint(q, "after", after, 0, 0, UINT64_MAX) ||
        !opt_uint(q, "limit", &limit, default_limit, 1, PAGE_MAX))
        return false;
    if (!df_page_init(p, limit, page_bytes(q), item_extra)) {
        fail(q, DF_EINTERNAL, "out of memory");
        return false;
    }
    return true;
}

static int op_history(query *q)
{
    df_deal *deal = &q->r->deal;
    uint64_t after;
    df_page p;
    int rc;
    if (!read_deal_id(q, deal) || !read_page(q, EVENTS_DEFAULT, 0, &p, &after))
        return ANSWERED;
    rc = df_store_deal_get(q->d->store, q->txn, deal);
    if (rc == MDB_NOTFOUND)
        deal_not_known(q, deal);
    else if (rc == 0 && (rc = df_page_deal_events(&p, q->d->store, q->txn, deal, after)) == 0)
        df_reply_history(q->pk, p.events, p.count);
    df_page_free(&p);
    return rc == MDB_NOTFOUND ? ANSWERED : rc;
}

/* The proof of each event of a page of the log that follows `after`, and
 * the chain's hash at each. */
static int page_proofs(query *q, const df_page *p, uint64_t after, df_log_proof **proofs,
                       uint8_t **hashes)
{
    uint8_t hash[DF_CHAIN_BYTES];
    int rc;
    *proofs = malloc(p->count * sizeof(**proofs) + 1);
    *hashes = malloc(p->count * DF_CHAIN_BYTES + 1);
    if (!*proofs || !*hashes)
        return ENOMEM;
    if ((rc = df_store_chain_at(q->d->store, q->txn, after, hash)) != 0)
        return rc;
    for (size_t i = 0; i < p->count; i++) {
        if ((rc = df_store_log_proof(q->d->store, q->txn, p->seqs[i], &(*proofs)[i])) != 0)
            return rc;
        df_chain_next(hash, (*proofs)[i].digest, hash);
        memcpy(*hashes + i * DF_CHAIN_BYTES, hash, DF_CHAIN_BYTES);
    }
    return 0;
}

/* What the proof adds to an event besides its bytes again: three keys, two
 * hashes, the headers (with room to spare). */
#define PROOF_EXTRA 128

static int op_replay(query *q)
{
    uint64_t after;
    bool proof;
    uint8_t *hashes = NULL;
    df_log_proof *proofs = NULL;
    df_page p;
    int rc;
    if (!opt_bool(q, "proof", &proof) ||
        !read_page(q, EVENTS_DEFAULT, proof ? PROOF_EXTRA / 2 : 0, &p, &after))
        return ANSWERED;
    if (proof) /* each event is sent twice: as the map, and as `raw` */
        p.bytes_max /= 2;
    uint64_t last_seq = df_store_log_last(q->d->store, q->txn);
    if ((rc = df_page_log(&p, q->d->store, q->txn, after)) == 0 && !proof)
        df_reply_replay(q->pk, p.events, p.count, last_seq);
    else if (rc == 0 && (rc = page_proofs(q, &p, after, &proofs, &hashes)) == 0)
        df_reply_replay_proof(q->pk, p.events, proofs, hashes, p.count, last_seq);
    free(proofs);
    free(hashes);
    df_page_free(&p);
    return rc;
}

/* deal.moved notifications as they were published, for subscribers that
 * missed some. */
static int op_moves(query *q)
{
    uint64_t after, limit;
    msgpack_sbuffer moves;
    size_t count;
    if (!opt_uint(q, "after", &after, 0, 0, UINT64_MAX) ||
        !opt_uint(q, "limit", &limit, EVENTS_DEFAULT, 1, PAGE_MAX))
        return ANSWERED;
    int rc = df_pack_moves(&moves, q->d->store, q->txn, after, limit, page_bytes(q), &count);
    if (rc == 0)
        df_reply_moves(q->pk, count, &moves, df_store_moves_last(q->d->store, q->txn));
    msgpack_sbuffer_destroy(&moves);
    return rc;
}

static int op_rejected(query *q)
{
    uint64_t after;
    df_page p;
    int rc;
    if (!read_page(q, REJECTED_DEFAULT, DF_REPLY_REJECTED_EXTRA, &p, &after))
        return ANSWERED;
    if ((rc = df_page_rejected(&p, q->d->store, q->txn, after)) != 0) {
        df_page_free(&p);
        return rc;
    }
    df_reply_rejected(q->pk, p.events, p.count, after + 1);
    df_page_free(&p);
    return ANSWERED;
}

/* ---- list, board and metrics ---- */

static int op_list(query *q)
{
    df_list_page *l = &q->r->list;
    char after[DF_MAX_ID], cursor[DF_CURSOR_MAX];
    size_t after_len = 0;
    bool has_after;
    int rc;
    df_list_page_reset(l);
    l->bytes_max = page_bytes(q);
    if (!read_list_filter(q, l) || !read_cursor(q, after, &after_len, &has_after))
        return ANSWERED;
    if ((rc = load_pipelines(q)) != 0)
        return rc;
    rc =
        df_list_scan(l, q->d->store, q->txn, &q->r->pipelines, has_after ? after : NULL, after_len);
    if (rc == 0 && l->more)
        df_reply_list(q->pk, l->count, &l->deals, cursor,
                      df_cursor_encode(l->last, l->last_len, cursor));
    else if (rc == 0)
        df_reply_list(q->pk, l->count, &l->deals, NULL, 0);
    msgpack_sbuffer_destroy(&l->deals);
    return rc;
}

/* Reads `owner`, `product` and `source`: the scope of the figures. At most
 * one of them: figures are kept for each alone (metrics.h). */
static bool read_scope(query *q, df_agg_scope *scope, df_str *value)
{
    df_str owner, product, source;
    if (!opt_str(q, "owner", &owner) || !opt_str(q, "product", &product) ||
        !opt_str(q, "source", &source))
        return false;
    if ((owner.ptr != NULL) + (product.ptr != NULL) + (source.ptr != NULL) > 1) {
        fail(q, DF_EBAD_REQUEST,
             "`owner`, `product` and `source` filter figures one at a time, not combined");
        return false;
    }
    *scope = DF_SCOPE_ALL;
    *value = (df_str){NULL, 0};
    if (owner.ptr) {
        *scope = DF_SCOPE_OWNER;
        *value = owner;
    } else if (product.ptr) {
        if (!df_agg_product_scoped(product.ptr, product.len))
            return bad_key(q, "product", "a string of at most 128 bytes without NUL");
        *scope = DF_SCOPE_PRODUCT;
        *value = product;
    } else if (source.ptr) {
        *scope = DF_SCOPE_SOURCE;
        *value = source;
    }
    return true;
}

/* Reads `by` (`week`, `month` or `quarter`; *given is false without it). */
static bool read_by(query *q, df_period_kind *by, bool *given)
{
    df_str name;
    if (!opt_str(q, "by", &name))
        return false;
    *given = name.ptr != NULL;
    *by = DF_PERIOD_MONTH;
    if (name.ptr && !df_period_parse(name.ptr, name.len, by))
        return bad_key(q, "by", "`week`, `month` or `quarter`");
    return true;
}

static bool make_periods(query *q, df_period_kind by, int64_t from, int64_t to, df_period *periods,
                         int *nperiods)
{
    *nperiods = df_periods_make(by, from, to, periods, DF_MAX_PERIODS);
    if (*nperiods < 0) {
        fail(q, DF_EBAD_REQUEST, "`from` to `to` spans more than %d periods", DF_MAX_PERIODS);
        return false;
    }
    return true;
}

/* The periods of a metrics series: none (*nperiods -1) without `by`. */
static bool read_series_periods(query *q, bool has_from, int64_t from, bool has_to, int64_t to,
                                df_period *periods, int *nperiods)
{
    df_period_kind by;
    bool given;
    *nperiods = -1;
    if (!read_by(q, &by, &given))
        return false;
    if (!given)
        return true;
    if (!has_from || !has_to) {
        fail(q, DF_EBAD_REQUEST, "`by` needs a window: `from` and `to`");
        return false;
    }
    return make_periods(q, by, from, to, periods, nperiods);
}

/* The metrics reply with `series`: the windowed figures of each period. */
static int reply_metrics_series(query *q, df_agg_scope scope, df_str value,
                                const df_period *periods, int nperiods, const df_metrics *m)
{
    const df_figures *whole = &q->r->figures;
    df_figures *f = malloc(sizeof *f);
    msgpack_sbuffer series;
    msgpack_packer spk;
    int rc = 0;
    if (!f)
        return ENOMEM;
    msgpack_sbuffer_init(&series);
    msgpack_packer_init(&spk, &series, msgpack_sbuffer_write);
    msgpack_pack_array(&spk, (size_t)nperiods);
    for (int i = 0; i < nperiods && rc == 0; i++) {
        df_metrics pm;
        df_figures_init(f, whole->pipeline, whole->now);
        f->has_from = f->has_to = true;
        f->from = periods[i].start;
        f->to = periods[i].end;
        if ((rc = df_report_load(q->d->store, q->txn, whole->pipeline, scope, value, f,
                                 DF_REPORT_METRICS)) == 0) {
            df_metrics_compute(f, &pm);
            df_pack_metrics_period(&spk, periods[i].start, periods[i].end, f, &pm);
        }
    }
    if (rc == 0)
        df_reply_metrics_series(q->pk, whole, m, series.data, series.size);
    msgpack_sbuffer_destroy(&series);
    free(f);
    return rc;
}

/* Open deals by the period their close_date falls in, and the deals won in
 * each period. */
static int op_forecast(query *q)
{
    const df_pipeline *p;
    df_agg_scope scope;
    df_str value;
    df_period_kind by;
    bool has_by, has_from, has_to;
    int64_t from, to;
    if (!refuse_as_of(q, "forecast") || !read_now(q) || !read_scope(q, &scope, &value) ||
        !read_by(q, &by, &has_by) || !opt_time(q, "from", &from, &has_from) ||
        !opt_time(q, "to", &to, &has_to))
        return ANSWERED;
    if (!has_from)
        from = df_period_start(by, q->now);
    if (!has_to) { /* three periods from the one `from` falls in */
        to = df_period_start(by, from);
        for (int i = 0; i < 3; i++)
            to = df_period_next(by, to);
    }
    df_forecast *fc = malloc(sizeof *fc);
    if (!fc)
        return ENOMEM;
    int rc = ANSWERED;
    if (make_periods(q, by, from, to, fc->periods, &fc->nperiods) && (p = read_pipeline(q))) {
        fc->pipeline = p;
        rc = df_forecast_load(q->d->store, q->txn, scope, value, q->now, fc);
        if (rc == 0)
            df_reply_forecast(q->pk, fc);
    }
    free(fc);
    return rc;
}

/* For each stage, the closed deals of the window that have been in it and
 * how many of them were won, against its configured probability. */
static int op_calibration(query *q)
{
    const df_pipeline *p;
    df_agg_scope scope;
    df_str value;
    bool has_from, has_to;
    int64_t from, to;
    df_calibration c;
    if (!read_scope(q, &scope, &value) || !opt_time(q, "from", &from, &has_from) ||
        !opt_time(q, "to", &to, &has_to) || !(p = read_pipeline(q)))
        return ANSWERED;
    c.pipeline = p;
    int rc = df_calibration_load(q->d->store, q->txn, scope, value, has_from, from, has_to, to, &c);
    if (rc == 0)
        df_reply_calibration(q->pk, &c);
    return rc;
}

static int op_board(query *q)
{
    df_figures *figures = &q->r->figures;
    const df_pipeline *p;
    df_agg_scope scope;
    df_str value;
    int rc;
    if (!refuse_as_of(q, "board") || !read_now(q) || !read_scope(q, &scope, &value) ||
        !(p = read_pipeline(q)))
        return ANSWERED;
    df_figures_init(figures, p, q->now);
    figures->stale_unknown = scope != DF_SCOPE_ALL;
    if ((rc = df_report_load(q->d->store, q->txn, p, scope, value, figures, DF_REPORT_BOARD)) != 0)
        return rc;
    df_reply_board(q->pk, figures);
    return ANSWERED;
}

static int op_metrics(query *q)
{
    df_figures *figures = &q->r->figures;
    const df_pipeline *p;
    df_agg_scope scope;
    df_str value;
    int64_t from, to;
    bool has_from, has_to;
    df_metrics m;
    int rc;
    df_period periods[DF_MAX_PERIODS];
    int nperiods;
    if (!refuse_as_of(q, "metrics") || !read_now(q) || !read_scope(q, &scope, &value) ||
        !opt_time(q, "from", &from, &has_from) || !opt_time(q, "to", &to, &has_to) ||
        !read_series_periods(q, has_from, from, has_to, to, periods, &nperiods) ||
        !(p = read_pipeline(q)))
        return ANSWERED;
    df_figures_init(figures, p, q->now);
    figures->has_from = has_from;
    figures->from = from;
    figures->has_to = has_to;
    figures->to = to;
    rc = df_report_load(q->d->store, q->txn, p, scope, value, figures, DF_REPORT_METRICS);
    if (rc != 0)
        return rc;
    df_metrics_compute(figures, &m);
    if (nperiods < 0) {
        df_reply_metrics(q->pk, figures, &m);
        return ANSWERED;
    }
    return reply_metrics_series(q, scope, value, periods, nperiods, &m);
}

/* Every pipeline, in the order they were first defined, or the one
 * `pipeline` names. */
static int op_pipelines(query *q)
{
    df_str name;
    int rc;
    if (!opt_str(q, "pipeline", &name))
        return ANSWERED;
    if ((rc = load_pipelines(q)) != 0)
        return rc;
    const df_pipelines *pl = &q->r->pipelines;
    if (name.ptr) {
        const df_pipeline *p = df_pipelines_find(pl, name.ptr, name.len);
        if (p)
            df_reply_pipelines(q->pk, &p, 1);
        else
            fail(q, DF_EUNKNOWN_PIPELINE, "pipeline `%.*s` is not defined", (int)name.len,
                 name.ptr);
        return ANSWERED;
    }
    const df_pipeline *all[DF_MAX_PIPELINES];
    for (int i = 0; i < pl->count; i++)
        all[i] = &pl->items[i];
    df_reply_pipelines(q->pk, all, (size_t)pl->count);
    return ANSWERED;
}

/* ---- requests ---- */

/* When a read must wait for the writer's flush (df_request_needs_flush). */
typedef enum flush_need {
    FLUSH_NEVER,
    FLUSH_ALWAYS,
    FLUSH_FOR_AS_OF, /* only when the request has `as_of` */
} flush_need;

struct df_read_op {
    const char *name;
    int (*run)(query *q);
    flush_need flush;
    unsigned roles; /* who may ask (auth.h); anyone without keys */
};

static const df_read_op read_ops[] = {
    {"ping", op_ping, FLUSH_NEVER, DF_ROLES_ANY},
    {"stats", op_stats, FLUSH_NEVER, DF_ROLES_READ},
    {"deal", op_deal, FLUSH_FOR_AS_OF, DF_ROLES_READ},
    {"history", op_history, FLUSH_ALWAYS, DF_ROLES_READ},
    {"list", op_list, FLUSH_ALWAYS, DF_ROLES_READ},
    {"board", op_board, FLUSH_ALWAYS, DF_ROLES_READ},
    {"replay", op_replay, FLUSH_NEVER, DF_ROLES_READ},
    {"rejected", op_rejected, FLUSH_NEVER, DF_ROLE_ADMIN},
    {"moves", op_moves, FLUSH_NEVER, DF_ROLES_READ},
    {"metrics", op_metrics, FLUSH_ALWAYS, DF_ROLES_READ},
    {"forecast", op_forecast, FLUSH_ALWAYS, DF_ROLES_READ},
    {"calibration", op_calibration, FLUSH_ALWAYS, DF_ROLES_READ},
    {"pipelines", op_pipelines, FLUSH_NEVER, DF_ROLES_READ},
};

int df_request_read(df_daemon *d, const char *body, size_t len, df_parsed_request *req,
                    df_error *err)
{
    bool bad = false;
    char shown[48];
    if (len > d->opt.max_message)
        return df_fail(err, DF_ETOO_LARGE, "a request of %zu bytes is over the %zu-byte limit", len,
                       d->opt.max_message);
    msgpack_zone_clear(&d->read_state->zone);
    if (df_msgpack_unpack(body, len, &d->read_state->zone, &req->map, err) != 0)
        return err->code;
    if (req->map.type != MSGPACK_OBJECT_MAP)
        return df_fail(err, DF_EBAD_REQUEST, "a request must be a msgpack map");
    if (!df_get_str(&req->map, "op", &req->op, &bad))
        return df_fail(err, DF_EBAD_REQUEST, "a request needs `op`, a string");
    req->read = NULL;
    req->redact = false;
    if (df_str_eq(req->op, "append")) {
        /* per event, a `pipeline` event asks for admin as well (api.c) */
        req->roles = DF_ROLES_WRITE;
        return 0;
    }
    if (df_str_eq(req->op, "redact")) {
        df_redact_request rq;
        req->redact = true;
        req->roles = DF_ROLE_ADMIN;
        return df_redact_read(&req->map, &rq, err);
    }
    for (size_t i = 0; i < sizeof(read_ops) / sizeof(read_ops[0]); i++) {
        if (df_str_eq(req->op, read_ops[i].name)) {
            req->read = &read_ops[i];
            req->roles = read_ops[i].roles;
            return 0;
        }
    }
    return df_fail(err, DF_EUNKNOWN_OP, "unknown op `%s`",
                   df_printable(req->op.ptr, req->op.len, shown, sizeof(shown)));
}

bool df_request_needs_flush(const df_parsed_request *req)
{
    if (!req->read)
        return false;
    return req->read->flush == FLUSH_ALWAYS ||
           (req->read->flush == FLUSH_FOR_AS_OF && df_map_get(&req->map, "as_of") != NULL);
}

void df_request_answer(df_daemon *d, const df_parsed_request *req, msgpack_packer *pk)
{
    assert(req->read);
    query q = {.d = d, .r = d->read_state, .req = &req->map, .pk = pk};
    q.pipeline_changes = counters(d).pipeline_changes;
    int rc = df_store_read_begin(d->store, &q.txn);
    if (rc != 0) {
        store_failed(&q, rc);
        return;
    }
    if ((rc = req->read->run(&q)) != ANSWERED)
        store_failed(&q, rc);
    df_store_read_end(d->store, q.txn);
}

df_handled df_request_handle(df_daemon *d, const char *body, size_t len, msgpack_packer *pk)
{
    df_parsed_request req;
    df_error err;
    if (df_request_read(d, body, len, &req, &err) != 0) {
        df_reply_error(pk, err.code, err.message);
        return DF_HANDLED_ANSWERED;
    }
    if (!req.read)
        return DF_HANDLED_APPEND;
    df_request_answer(d, &req, pk);
    return DF_HANDLED_ANSWERED;
}
