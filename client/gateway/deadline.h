/* deadline.h: a time limit on each request's arrival, so that a sender that trickles its request
 * (a byte a second keeps libmicrohttpd's idle timeout from firing) loses its connection instead
 * of holding it for hours. */
#ifndef DF_GW_DEADLINE_H
#define DF_GW_DEADLINE_H

#include <microhttpd.h>

typedef struct gw_deadlines gw_deadlines;

/* Starts watching: a request must arrive whole (headers and body) within timeout_s of its
 * connection's start, or of the end of the connection's previous request; else its connection is
 * shut down, which libmicrohttpd sees as the sender gone. 0, or -1 when no thread could start. */
int gw_deadlines_start(gw_deadlines **out, unsigned timeout_s);
/* Stops watching; every connection must be closed first (after MHD_stop_daemon). NULL is fine. */
void gw_deadlines_stop(gw_deadlines *d);

/* The MHD_OPTION_NOTIFY_CONNECTION callback, its cls the gw_deadlines. */
void gw_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);
/* The request on conn has arrived whole: answering it is not limited here. */
void gw_deadlines_arrived(struct MHD_Connection *conn);
/* The request on conn is over: the next one's time starts now. */
void gw_deadlines_next(struct MHD_Connection *conn);

#endif
