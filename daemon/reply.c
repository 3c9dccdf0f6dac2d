/* reply.c: every map the api answers with. The keys and their order are the
 * wire contract: clients and tests compare replies byte for byte. */
#include "reply.h"

#include <math.h>

#define METRICS_KEYS 16

size_t df_reply_bytes_max(size_t max_message)
{
    return max_message > DF_REPLY_BYTES_MIN ? max_message : DF_REPLY_BYTES_MIN;
}

void df_reply_ok(msgpack_packer *pk, size_t keys)
{
    msgpack_pack_map(pk, keys + 1);
    df_pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
}

void df_reply_error(msgpack_packer *pk, int code, const char *message)
{
    df_pack_error(pk, code, message);
}

static void pack_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void pack_opt_str(msgpack_packer *pk, bool has, const char *s, size_t len)
{
    if (has)
        df_pack_str(pk, s, len);
    else
        msgpack_pack_nil(pk);
}

static void pack_opt_int(msgpack_packer *pk, bool has, int64_t v)
{
    if (has)
        msgpack_pack_int64(pk, v);
    else
        msgpack_pack_nil(pk);
}

static void pack_float_or_nil(msgpack_packer *pk, double v)
{
    if (isnan(v))
        msgpack_pack_nil(pk);
    else
        msgpack_pack_double(pk, v);
}

static void pack_name(msgpack_packer *pk, const df_name *n)
{
    df_pack_str(pk, n->s, n->len);
}

void df_pack_deal(msgpack_packer *pk, const df_deal *deal, const df_deal_view *view)
{
    df_str pipeline = df_deal_pipeline(deal);
    msgpack_pack_map(pk, 23);
    df_pack_cstr(pk, "deal");
    df_pack_str(pk, deal->deal.s, deal->deal.len);
    df_pack_cstr(pk, "pipeline");
    df_pack_str(pk, pipeline.ptr, pipeline.len);
    df_pack_cstr(pk, "stage");
    pack_opt_str(pk, deal->has_stage, deal->stage.s, deal->stage.len);
    df_pack_cstr(pk, "status");
    df_pack_cstr(pk, df_outcome_name(view->status));
    df_pack_cstr(pk, "stage_since");
    pack_opt_int(pk, deal->has_stage, deal->stage_since);
    df_pack_cstr(pk, "days_in_stage");
    pack_opt_int(pk, view->has_days_in_stage, view->days_in_stage);
    df_pack_cstr(pk, "last_activity");
    pack_opt_int(pk, deal->has_activity, deal->last_activity);
    df_pack_cstr(pk, "days_since_activity");
    pack_opt_int(pk, view->has_days_since_activity, view->days_since_activity);
    df_pack_cstr(pk, "created");
    msgpack_pack_int64(pk, deal->created);
    df_pack_cstr(pk, "amount");
    df_pack_num(pk, deal->amount);
    df_pack_cstr(pk, "owner");
    pack_opt_str(pk, deal->has_owner, deal->owner.s, deal->owner.len);
    df_pack_cstr(pk, "name");
    pack_opt_str(pk, deal->has_name, deal->name.s, deal->name.len);
    df_pack_cstr(pk, "product");
    pack_opt_str(pk, deal->has_product, deal->product.s, deal->product.len);
    df_pack_cstr(pk, "source");
    pack_opt_str(pk, deal->has_source, deal->source.s, deal->source.len);
    df_pack_cstr(pk, "close_date");
    pack_opt_int(pk, deal->has_close_date, deal->close_date);
    df_pack_cstr(pk, "probability");
    pack_opt_int(pk, deal->has_stage, view->probability);
    df_pack_cstr(pk, "activities");
    msgpack_pack_uint64(pk, deal->activities);
    df_pack_cstr(pk, "version");
    msgpack_pack_uint64(pk, deal->version);
    df_pack_cstr(pk, "time_in_stage");
    msgpack_pack_map(pk, (size_t)view->nstage_times);
    for (int i = 0; i < view->nstage_times; i++) {
        pack_name(pk, &view->stage_times[i].stage);
        msgpack_pack_int64(pk, view->stage_times[i].ms);
    }
    df_pack_cstr(pk, "stale");
    pack_bool(pk, view->stale);
    df_pack_cstr(pk, "regressions");
    msgpack_pack_uint32(pk, deal->regressions);
    df_pack_cstr(pk, "reopened");
    msgpack_pack_uint32(pk, deal->reopened);
    df_pack_cstr(pk, "pushes");
    msgpack_pack_uint32(pk, deal->pushes);
}

static void pack_bin(msgpack_packer *pk, const void *data, size_t len)
{
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
}

/* {buckets: [[le_us, cumulative count], ...], count, sum_us} */
static void pack_histogram(msgpack_packer *pk, const df_histogram_snapshot *h)
{
    msgpack_pack_map(pk, 3);
    df_pack_cstr(pk, "buckets");
    msgpack_pack_array(pk, DF_HISTOGRAM_BOUNDS);
    for (size_t i = 0; i < DF_HISTOGRAM_BOUNDS; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, df_histogram_bounds_us[i]);
        msgpack_pack_uint64(pk, h->le[i]);
    }
    df_pack_cstr(pk, "count");
    msgpack_pack_uint64(pk, h->count);
    df_pack_cstr(pk, "sum_us");
    msgpack_pack_uint64(pk, h->sum_us);
}

void df_reply_stats(msgpack_packer *pk, const df_writer_counters *c, const df_stats *s)
{
    df_reply_ok(pk, 21);
    df_pack_cstr(pk, "events");
    msgpack_pack_uint64(pk, c->committed_seq);
    df_pack_cstr(pk, "duplicates");
    msgpack_pack_uint64(pk, c->duplicates);
    df_pack_cstr(pk, "rejected");
    msgpack_pack_uint64(pk, c->rejected);
    df_pack_cstr(pk, "deals");
    msgpack_pack_uint64(pk, c->deals);
    df_pack_cstr(pk, "last_seq");
    msgpack_pack_uint64(pk, c->committed_seq);
    df_pack_cstr(pk, "flushed_seq");
    msgpack_pack_uint64(pk, c->flushed_seq);
    df_pack_cstr(pk, "commits");
    msgpack_pack_uint64(pk, c->commits);
    df_pack_cstr(pk, "flushes");
    msgpack_pack_uint64(pk, c->flushes);
    df_pack_cstr(pk, "notifications");
    msgpack_pack_uint64(pk, s->notifications);
    df_pack_cstr(pk, "stale_notifications");
    msgpack_pack_uint64(pk, s->stale_notifications);
    df_pack_cstr(pk, "pending");
    msgpack_pack_uint64(pk, s->pending);
    df_pack_cstr(pk, "uptime_ms");
    msgpack_pack_int64(pk, s->uptime_ms);
    df_pack_cstr(pk, "db_bytes");
    msgpack_pack_uint64(pk, s->db_bytes);
    df_pack_cstr(pk, "disk_free_bytes");
    msgpack_pack_uint64(pk, s->disk_free_bytes);
    df_pack_cstr(pk, "map_bytes");
    msgpack_pack_uint64(pk, s->map_bytes);
    df_pack_cstr(pk, "map_used_bytes");
    msgpack_pack_uint64(pk, s->map_used_bytes);
    df_pack_cstr(pk, "store_full");
    msgpack_pack_uint64(pk, c->store_full ? 1 : 0);
    df_pack_cstr(pk, "lost");
    msgpack_pack_uint64(pk, c->lost);
    df_pack_cstr(pk, "chain_head");
    pack_bin(pk, s->chain_head, sizeof(s->chain_head));
    df_pack_cstr(pk, "commit_latency");
    pack_histogram(pk, &s->commit_latency);
    df_pack_cstr(pk, "append_latency");
    pack_histogram(pk, &s->append_latency);
}

void df_reply_deal(msgpack_packer *pk, const df_deal *deal, const df_deal_view *view)
{
    df_reply_ok(pk, 1);
    df_pack_cstr(pk, "deal");
    df_pack_deal(pk, deal, view);
}

static void pack_events(msgpack_packer *pk, const MDB_val *events, size_t count)
{
    df_pack_cstr(pk, "events");
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++)
        pk->callback(pk->data, events[i].mv_data, events[i].mv_size);
}

void df_reply_history(msgpack_packer *pk, const MDB_val *events, size_t count)
{
    df_reply_ok(pk, 1);
    pack_events(pk, events, count);
}

void df_reply_replay(msgpack_packer *pk, const MDB_val *events, size_t count, uint64_t last_seq)
{
    df_reply_ok(pk, 2);
    pack_events(pk, events, count);
    df_pack_cstr(pk, "last_seq");
    msgpack_pack_uint64(pk, last_seq);
}

/* A stored event map, opened again to take the proof's three keys after its
 * own, and `redacted: true` when its bytes no longer match its digest by
 * design. */
static void pack_event_with_proof(msgpack_packer *pk, const MDB_val *event,
                                  const df_log_proof *proof, const uint8_t *hash)
{
    df_msgpack_header head;
    const char *bytes = event->mv_data;
    if (!df_msgpack_head(bytes, event->mv_size, &head) || head.type != DF_MSGPACK_MAP) {
        head.count = 0; /* the log holds maps only; still a valid reply */
        head.header_size = event->mv_size;
    }
    bool redacted = proof->redacted;
    msgpack_pack_map(pk, head.count + 3 + redacted);
    pk->callback(pk->data, bytes + head.header_size, event->mv_size - head.header_size);
    if (redacted) {
        df_pack_cstr(pk, "redacted");
        pack_bool(pk, true);
    }
    df_pack_cstr(pk, "raw");
    pack_bin(pk, event->mv_data, event->mv_size);
    df_pack_cstr(pk, "digest");
    pack_bin(pk, proof->digest, DF_CHAIN_BYTES);
    df_pack_cstr(pk, "hash");
    pack_bin(pk, hash, DF_CHAIN_BYTES);
}

void df_reply_replay_proof(msgpack_packer *pk, const MDB_val *events, const df_log_proof *proofs,
                           const uint8_t *hashes, size_t count, uint64_t last_seq)
{
    df_reply_ok(pk, 2);
    df_pack_cstr(pk, "events");
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++)
        pack_event_with_proof(pk, &events[i], &proofs[i], hashes + i * DF_CHAIN_BYTES);
    df_pack_cstr(pk, "last_seq");
    msgpack_pack_uint64(pk, last_seq);
}

void df_reply_rejected(msgpack_packer *pk, const MDB_val *items, size_t count, uint64_t first_id)
{
    static const char *const keys[] = {"recv", "error", "message", "raw"};
    df_reply_ok(pk, 1);
    df_pack_cstr(pk, "items");
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++) {
        /* a stored item is a 4-entry map; the reply puts its id in front */
        const char *item = items[i].mv_data;
        df_msgpack_header head;
        msgpack_pack_map(pk, 5);
        df_pack_cstr(pk, "id");
        msgpack_pack_uint64(pk, first_id + i);
        if (df_msgpack_head(item, items[i].mv_size, &head) && head.type == DF_MSGPACK_MAP &&
            head.count == 4 && items[i].mv_size > head.size) {
            pk->callback(pk->data, item + head.size, items[i].mv_size - head.size);
            continue;
        }
        for (int k = 0; k < 4; k++) { /* a damaged item still answers a whole map */
            df_pack_cstr(pk, keys[k]);
            msgpack_pack_nil(pk);
        }
    }
}

void df_reply_moves(msgpack_packer *pk, size_t count, const msgpack_sbuffer *moves,
                    uint64_t last_seq)
{
    df_reply_ok(pk, 2);
    df_pack_cstr(pk, "moves");
    msgpack_pack_array(pk, count);
    pk->callback(pk->data, moves->data, moves->size);
    df_pack_cstr(pk, "last_seq");
    msgpack_pack_uint64(pk, last_seq);
}

void df_reply_list(msgpack_packer *pk, size_t count, const msgpack_sbuffer *deals,
                   const char *cursor, size_t cursor_len)
{
    df_reply_ok(pk, 2);
    df_pack_cstr(pk, "deals");
    msgpack_pack_array(pk, count);
    pk->callback(pk->data, deals->data, deals->size);
    df_pack_cstr(pk, "cursor");
    if (cursor)
        df_pack_str(pk, cursor, cursor_len);
    else
        msgpack_pack_nil(pk);
}

void df_reply_pipelines(msgpack_packer *pk, const df_pipeline *const *pipelines, size_t count)
{
    df_reply_ok(pk, 1);
    df_pack_cstr(pk, "pipelines");
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++) {
        const df_pipeline *p = pipelines[i];
        msgpack_pack_map(pk, 2);
        df_pack_cstr(pk, "name");
        pack_name(pk, &p->name);
        df_pack_cstr(pk, "stages");
        msgpack_pack_array(pk, (size_t)p->nstages);
        for (int k = 0; k < p->nstages; k++) {
            const df_stage_def *st = &p->stages[k];
            msgpack_pack_map(pk, 4);
            df_pack_cstr(pk, "name");
            pack_name(pk, &st->name);
            df_pack_cstr(pk, "probability");
            msgpack_pack_int(pk, st->probability);
            df_pack_cstr(pk, "rot_days");
            if (st->rot_days < 0)
                msgpack_pack_nil(pk);
            else
                msgpack_pack_int(pk, st->rot_days);
            df_pack_cstr(pk, "outcome");
            df_pack_cstr(pk, df_outcome_name(st->outcome));
        }
    }
}

static void pack_total(msgpack_packer *pk, const char *count_key, const char *amount_key,
                       const df_sums *sums)
{
    df_pack_cstr(pk, count_key);
    msgpack_pack_uint64(pk, (uint64_t)sums->count);
    df_pack_cstr(pk, amount_key);
    df_pack_num(pk, df_sums_amount(sums));
}

void df_pack_count_amount_weighted(msgpack_packer *pk, const df_sums *s, double weighted)
{
    df_pack_cstr(pk, "count");
    msgpack_pack_uint64(pk, (uint64_t)s->count);
    df_pack_cstr(pk, "amount");
    df_pack_num(pk, df_sums_amount(s));
    df_pack_cstr(pk, "weighted");
    msgpack_pack_double(pk, weighted);
}

void df_reply_board(msgpack_packer *pk, const df_figures *f)
{
    size_t count = 0;
    df_sums all = {0};
    double weighted = 0;
    for (int i = 0; i < f->nstages; i++)
        count += !f->stages[i].removed || f->stages[i].now_in.count > 0;
    df_reply_ok(pk, 2);
    df_pack_cstr(pk, "stages");
    msgpack_pack_array(pk, count);
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        df_sums_add(&all, &s->now_in, 1);
        weighted += s->weighted;
        if (s->removed && s->now_in.count == 0)
            continue; /* a stage deals visited but none sits in now */
        double avg_days = 0;
        if (s->now_in.count > 0)
            avg_days = s->in_stage_ms / (double)s->now_in.count / (double)DF_DAY_MS;
        msgpack_pack_map(pk, 7);
        df_pack_cstr(pk, "stage");
        pack_name(pk, &s->stage);
        df_pack_count_amount_weighted(pk, &s->now_in, s->weighted);
        df_pack_cstr(pk, "avg_days_in_stage");
        /* in a won or lost stage it would be the days since closing */
        if (s->outcome == DF_OPEN)
            msgpack_pack_double(pk, avg_days);
        else
            msgpack_pack_nil(pk);
        df_pack_cstr(pk, "stale");
        if (f->stale_unknown)
            msgpack_pack_nil(pk);
        else
            msgpack_pack_uint64(pk, s->stale);
        df_pack_cstr(pk, "removed");
        pack_bool(pk, s->removed);
    }
    /* deals without a stage are in no stage's row, but open */
    df_sums_add(&all, &f->open, 1);
    for (int i = 0; i < f->nstages; i++)
        if (f->stages[i].outcome == DF_OPEN)
            df_sums_add(&all, &f->stages[i].now_in, -1);
    df_pack_cstr(pk, "totals");
    msgpack_pack_map(pk, 9);
    pack_total(pk, "count", "amount", &all);
    df_pack_cstr(pk, "weighted");
    msgpack_pack_double(pk, weighted);
    pack_total(pk, "open", "open_amount", &f->open);
    pack_total(pk, "won", "won_amount", &f->won);
    pack_total(pk, "lost", "lost_amount", &f->lost);
}

/* Every open stage of the pipeline, then any other stage lost deals were
 * lost from (a removed one, or one of another pipeline). */
static void pack_lost_from(msgpack_packer *pk, const df_figures *f)
{
    size_t count = 0;
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        count += (!s->removed && s->outcome == DF_OPEN) || s->lost_from > 0;
    }
    df_pack_cstr(pk, "lost_from");
    msgpack_pack_map(pk, count);
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        if ((!s->removed && s->outcome == DF_OPEN) || s->lost_from > 0) {
            pack_name(pk, &s->stage);
            msgpack_pack_uint64(pk, s->lost_from);
        }
    }
}

static void pack_loss_reasons(msgpack_packer *pk, const df_figures *f)
{
    int other = -1;
    for (int i = 0; i < f->nreasons; i++)
        if (df_name_eq(&f->reasons[i].reason, DF_OTHER_REASONS, sizeof DF_OTHER_REASONS - 1))
            other = i;
    bool other_apart = f->other_reasons > 0 && other < 0;
    df_pack_cstr(pk, "loss_reasons");
    msgpack_pack_map(pk, (size_t)f->nreasons + other_apart);
    for (int i = 0; i < f->nreasons; i++) {
        pack_name(pk, &f->reasons[i].reason);
        msgpack_pack_uint64(pk, f->reasons[i].count + (i == other ? f->other_reasons : 0));
    }
    if (other_apart) {
        df_pack_cstr(pk, DF_OTHER_REASONS);
        msgpack_pack_uint64(pk, f->other_reasons);
    }
}

/* The closed deals' terms every metrics reply and series period begins with. */
static void pack_closed(msgpack_packer *pk, const df_metrics *m)
{
    df_pack_cstr(pk, "won");
    msgpack_pack_uint64(pk, m->won);
    df_pack_cstr(pk, "lost");
    msgpack_pack_uint64(pk, m->lost);
    df_pack_cstr(pk, "win_rate");
    pack_float_or_nil(pk, m->win_rate);
    df_pack_cstr(pk, "avg_cycle_days");
    pack_float_or_nil(pk, m->avg_cycle_days);
}

/* The windowed terms of creations, amounts and losses that end them. */
static void pack_created_and_lost(msgpack_packer *pk, const df_figures *f, const df_metrics *m)
{
    df_pack_cstr(pk, "created");
    msgpack_pack_uint64(pk, m->created);
    df_pack_cstr(pk, "won_amount");
    df_pack_num(pk, m->won_amount);
    df_pack_cstr(pk, "lost_amount");
    df_pack_num(pk, m->lost_amount);
    df_pack_cstr(pk, "avg_won_amount");
    pack_float_or_nil(pk, m->avg_won_amount);
    pack_lost_from(pk, f);
    pack_loss_reasons(pk, f);
}

static void pack_metrics(msgpack_packer *pk, const df_figures *f, const df_metrics *m);

void df_reply_metrics(msgpack_packer *pk, const df_figures *f, const df_metrics *m)
{
    df_reply_ok(pk, METRICS_KEYS);
    pack_metrics(pk, f, m);
}

void df_reply_metrics_series(msgpack_packer *pk, const df_figures *f, const df_metrics *m,
                             const char *series, size_t len)
{
    df_reply_ok(pk, METRICS_KEYS + 1);
    pack_metrics(pk, f, m);
    df_pack_cstr(pk, "series");
    pk->callback(pk->data, series, len); /* the array, packed already */
}

void df_pack_metrics_period(msgpack_packer *pk, int64_t start, int64_t end, const df_figures *f,
                            const df_metrics *m)
{
    msgpack_pack_map(pk, 12);
    df_pack_cstr(pk, "start");
    msgpack_pack_int64(pk, start);
    df_pack_cstr(pk, "end");
    msgpack_pack_int64(pk, end);
    pack_closed(pk, m);
    pack_created_and_lost(pk, f, m);
}

static void pack_metrics(msgpack_packer *pk, const df_figures *f, const df_metrics *m)
{
    pack_closed(pk, m);

    size_t visited = 0;
    for (int i = 0; i < f->nstages; i++)
        visited += f->stages[i].visited > 0;
    df_pack_cstr(pk, "avg_days_in_stage");
    msgpack_pack_map(pk, visited);
    for (int i = 0; i < f->nstages; i++) {
        const df_stage_figures *s = &f->stages[i];
        if (s->visited == 0)
            continue;
        pack_name(pk, &s->stage);
        msgpack_pack_double(pk, s->visit_ms / (double)s->visited / (double)DF_DAY_MS);
    }

    df_pack_cstr(pk, "conversion");
    msgpack_pack_array(pk, (size_t)m->nconversions);
    for (int i = 0; i < m->nconversions; i++) {
        msgpack_pack_map(pk, 3);
        df_pack_cstr(pk, "from");
        pack_name(pk, &f->stages[m->conversions[i].from].stage);
        df_pack_cstr(pk, "to");
        pack_name(pk, &f->stages[m->conversions[i].to].stage);
        df_pack_cstr(pk, "rate");
        pack_float_or_nil(pk, m->conversions[i].rate);
    }
    df_pack_cstr(pk, "open");
    msgpack_pack_uint64(pk, m->open);
    df_pack_cstr(pk, "open_amount");
    df_pack_num(pk, m->open_amount);
    df_pack_cstr(pk, "weighted");
    msgpack_pack_double(pk, m->weighted);
    df_pack_cstr(pk, "velocity");
    pack_float_or_nil(pk, m->velocity);

    pack_created_and_lost(pk, f, m);
}

/* A redact: {seq (the redaction's), redacted (how many events it changed)},
 * or its error. */
static void reply_redact(msgpack_packer *pk, const df_item *it, const df_batch *b)
{
    if (it->error) {
        df_reply_error(pk, it->error, df_batch_text(b, it->message));
        return;
    }
    df_reply_ok(pk, 2);
    df_pack_cstr(pk, "seq");
    msgpack_pack_uint64(pk, it->seq);
    df_pack_cstr(pk, "redacted");
    msgpack_pack_uint32(pk, it->redacted);
}

void df_reply_append(msgpack_packer *pk, const df_batch *b, size_t first, size_t end)
{
    if (end == first + 1 && b->items[first].redaction) {
        reply_redact(pk, &b->items[first], b);
        return;
    }
    df_reply_ok(pk, 1);
    df_pack_cstr(pk, "results");
    msgpack_pack_array(pk, end - first);
    for (size_t i = first; i < end; i++) {
        const df_item *it = &b->items[i];
        msgpack_pack_map(pk, 2);
        if (it->error) {
            df_pack_cstr(pk, "error");
            df_pack_cstr(pk, df_error_name(it->error));
            df_pack_cstr(pk, "message");
            df_pack_cstr(pk, df_batch_text(b, it->message));
        } else {
            df_pack_cstr(pk, "seq");
            msgpack_pack_uint64(pk, it->seq);
            df_pack_cstr(pk, "dup");
            pack_bool(pk, it->dup);
        }
    }
}
