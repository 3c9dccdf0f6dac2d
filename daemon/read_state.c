/* read_state.c: the read operations' state between requests. The pipelines are
 * kept because reading them costs a scan of the store's definitions, and
 * the refolder because it keeps its memory from one `as_of` to the next. */
#include "read_state.h"

#include <stdlib.h>

df_read_state *df_read_state_new(void)
{
    df_read_state *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (!msgpack_zone_init(&r->zone, 8192)) {
        free(r);
        return NULL;
    }
    r->pipelines_at = UINT64_MAX;
    return r;
}

void df_read_state_free(df_read_state *r)
{
    if (!r)
        return;
    msgpack_zone_destroy(&r->zone);
    if (r->refolder)
        df_refolder_free(r->refolder);
    free(r);
}

int df_read_state_load_pipelines(df_read_state *r, df_store *st, MDB_txn *txn, uint64_t changes)
{
    if (r->pipelines_at == changes)
        return 0;
    int rc = df_store_pipelines_load(st, txn, &r->pipelines);
    r->pipelines_at = rc == 0 ? changes : UINT64_MAX;
    return rc;
}

df_refolder *df_read_state_refolder(df_read_state *r)
{
    if (!r->refolder)
        r->refolder = df_refolder_new();
    return r->refolder;
}
