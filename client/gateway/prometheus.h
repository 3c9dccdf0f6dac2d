/* prometheus.h: the Prometheus text exposition format (0.0.4) of the
 * daemon's `stats`, the gateway's request counts and its webhook
 * deliveries, for GET /metrics. Pure: text in memory, no I/O. */
#ifndef GW_PROMETHEUS_H
#define GW_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>

#include "delivery.h"

/* The media type of what gw_prometheus_render gives. */
#define GW_PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Requests the gateway answered on one route with one HTTP status. */
typedef struct gw_route_count {
    const char *route; /* the route's pattern ("/v1/events"), not the request's path */
    int status;
    uint64_t count;
} gw_route_count;

/* Renders, into *text_out (NUL-terminated, len_out bytes before the NUL;
 * the caller frees it):
 * - dealflow_gateway_daemon_up: 1 when stats is a successful `stats` reply
 *   (a msgpack map with `ok: true`), else 0 (stats NULL: the daemon did not
 *   answer), and then no daemon figure;
 * - every numeric key of stats as dealflow_KEY, a counter (`_total`) or a
 *   gauge, in base units (`uptime_ms` as dealflow_uptime_seconds), and each
 *   latency histogram (`{buckets, count, sum_us}`, PROTOCOL.md) as a
 *   histogram in seconds;
 * - routes as dealflow_gateway_http_requests_total{route,status} (equal
 *   route and status are added together);
 * - deliveries per url: dealflow_gateway_webhook_deliveries_total,
 *   _retries_total, _failures_total, _lag_events, _failing (endpoints with
 *   the same url, for other topics, are added together; lag and failing
 *   are the worst of them).
 * Returns 0, or -1 when memory ran out (nothing to free then). */
int gw_prometheus_render(const void *stats, size_t stats_len, const gw_route_count *routes,
                         size_t nroutes, const gw_delivery_state *deliveries, size_t ndeliveries,
                         char **text_out, size_t *len_out);

#endif
