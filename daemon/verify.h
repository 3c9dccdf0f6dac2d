/* verify.h: `dealflowd --verify`: walks a store's whole log and chain
 * read-only and says whether every event still matches its digest. */
#ifndef DF_VERIFY_H
#define DF_VERIFY_H

/* Prints the event count (and how many were redacted, when any) and the
 * chain head (hex) and returns 0 on an intact
 * store; returns 1 after naming the first damaged seq on stderr. The walk
 * runs in a child process, so that a file damaged enough to fault LMDB
 * itself is reported with the last good seq instead of crashing. */
int df_verify(const char *dir);

#endif
