/* reader.h: what the read operations keep between requests: the zone the
 * request being answered is unpacked into, the pipelines as last read, and
 * room for values too large for the stack. One per daemon (df_daemon.reader),
 * used by the loop thread only. */
#ifndef DF_READER_H
#define DF_READER_H

#include "daemon.h"
#include "listing.h"
#include "refold.h"

struct df_reader {
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
df_reader *df_reader_new(void);
void df_reader_free(df_reader *r);

/* Brings r->pipelines up to `changes`, the writer's count of commits that
 * changed a pipeline (read before txn began): read again from the store
 * only when a commit changed them. Returns 0 or an LMDB error. */
int df_reader_load_pipelines(df_reader *r, df_store *st, MDB_txn *txn, uint64_t changes);

/* r->refolder, made at first use; NULL when out of memory. */
df_refolder *df_reader_refolder(df_reader *r);

#endif
