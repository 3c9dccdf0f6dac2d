/* admission.h: the accepting of connections, so that one over the limit is told 503 at once
 * instead of waiting in the kernel's queue until a slot frees (libmicrohttpd stops accepting at
 * its limit, and a client behind thousands of idle connections would hang). */
#ifndef DF_GW_ADMISSION_H
#define DF_GW_ADMISSION_H

#include <stdatomic.h>
#include <stddef.h>

#include <microhttpd.h>

typedef struct gw_admission gw_admission;

/* Accepts on listen_fd (non-blocking, listening) in a thread of its own: while *open (the
 * connections libmicrohttpd holds, which the caller lowers as they close) is under limit, a
 * connection goes to mhd (started with MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC) and *open is
 * raised; over it, the connection is answered 503 with Retry-After: 1 and closed. 0, or -1 when
 * no thread could start. */
int gw_admission_start(gw_admission **out, int listen_fd, struct MHD_Daemon *mhd, unsigned limit,
                       _Atomic unsigned *open);
/* Stops accepting and joins the thread; the listening socket stays open. NULL is fine. */
void gw_admission_stop(gw_admission *a);

#endif
