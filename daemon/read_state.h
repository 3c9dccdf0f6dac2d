/* read_state.h: what the read operations keep between requests: the zone the
 * request being answered is unpacked into, the pipelines as last read, and
 * room for values too large for the stack. One per daemon (df_daemon.read_state),
 * used by the loop thread only. */
#ifndef DF_READ_STATE_H
#define DF_READ_STATE_H

#include "daemon.h"
#include "listing.h"
#include "refold.h"

struct df_read_state {
    msgpack_zone zone;
    df_pipelines pipelines; /* as of pipelines_at commits that changed them */
    uint64_t pipelines_at;
    df_refolder *refolder; /* made at the first `deal` with as_of */
    df_deal deal;
    df_deal_view view;
    df_figures figures;
    df_list_page list;
};

/* NULL when out of memory. */
df_read_state *df_read_state_new(void);
void df_read_state_free(df_read_state *r);

/* Brings r->pipelines up to `changes`, the writer's count of commits that
 * changed a pipeline (read before txn began): read again from the store
 * only when a commit changed them. Returns 0 or an LMDB error. */
int df_read_state_load_pipelines(df_read_state *r, df_store *st, MDB_txn *txn, uint64_t changes);

/* r->refolder, made at first use; NULL when out of memory. */
df_refolder *df_read_state_refolder(df_read_state *r);

#endif
