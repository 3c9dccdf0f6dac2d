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

/* Answers the reads that were waiting for a flush that has happened. */
void df_api_answer_waiting(df_daemon *d);
/* True while reads wait for a flush. */
bool df_api_waiting(const df_daemon *d);

#endif
