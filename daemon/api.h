/* api.h: the ROUTER socket: one reply to every request, also to garbage.
 * Reads are answered at once; an `append` is answered once its batch is on
 * disk. */
#ifndef DF_API_H
#define DF_API_H

#include "daemon.h"

/* Takes up to `budget` requests waiting on the api socket. Returns how many. */
int df_api_drain(df_daemon *d, int budget);

/* Answers the append requests of a batch the writer finished. */
void df_api_complete(df_daemon *d, df_batch *b);

#endif
