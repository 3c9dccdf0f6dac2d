/* gateway_harness.h: the built dealflow-gateway as the tests run it: a config written for it, the
 * process started on a free loopback port in front of a daemon the integration harness runs,
 * waited for until it answers and stopped, and HTTP requests to it answering status, headers
 * and body. */
#ifndef DF_GW_HARNESS_H
#define DF_GW_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "harness.h"

/* How long a start, a stop or an answer may take, generous for a sanitizer build. */
#define GW_WAIT_MS 30000

/* One gateway process and the files it is started with. */
typedef struct gw_gateway {
    it_daemon process; /* only its pid and log, for the integration harness's waits and logs */
    char config[IT_PATH_MAX + 32];
    char listen[64];   /* 127.0.0.1:PORT */
    char base_url[96]; /* http://127.0.0.1:PORT */
    unsigned short port;
    /* When set, told the path and status of every answer gw_request gets (0: none came). */
    void (*on_answer)(const char *path, long status);
} gw_gateway;

/* Names the gateway's config (DIR/NAME.json) and log (DIR/NAME.log) and picks a free loopback
 * port to listen on. Starts nothing. */
bool gw_init(gw_gateway *g, const char *dir, const char *name);
/* Writes the config file from a printf format. */
bool gw_write_config(const gw_gateway *g, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Forks and execs `dealflow-gateway --config CONFIG --listen LISTEN` and then args (NULL-ended,
 * or NULL); its stderr is appended to its log. */
bool gw_spawn(gw_gateway *g, const char *const *args);
/* Asks GET /healthz until it answers 200; false, with the log printed, when the gateway exits
 * first or the deadline passes. */
bool gw_wait_ready(gw_gateway *g);
/* gw_spawn and gw_wait_ready. */
bool gw_start(gw_gateway *g, const char *const *args);
/* The process runs (it has not exited; nothing is reaped). */
bool gw_running(const gw_gateway *g);
/* Waits for the process to exit, as it_wait_exit: its exit status, 128 + signal when killed,
 * -1 when it still runs at the deadline. */
int gw_wait_exit(gw_gateway *g, int timeout_ms);
/* SIGTERM and wait, SIGKILL after the deadline: the exit status as gw_wait_exit, -1 when it
 * was not running. */
int gw_stop(gw_gateway *g);
void gw_print_log(const gw_gateway *g);
bool gw_log_contains(const gw_gateway *g, const char *needle);

/* One HTTP exchange. */
typedef struct gw_http {
    long status;  /* 0 when no answer came */
    char *text;   /* the body, NUL-ended; NULL when it was empty */
    size_t len;   /* of text */
    json_t *json; /* the body parsed as JSON; NULL when it is not */
    char *head;   /* the header lines, each NUL-ended, one after another */
    size_t head_len;
} gw_http;

/* method path with headers (NULL-ended "Name: value" lines, or NULL) and body (NULL: none). */
gw_http gw_request(const gw_gateway *g, const char *method, const char *path,
                   const char *const *headers, const char *body);
/* method path with the bearer token (NULL: none) and body (NULL: none). */
gw_http gw_request_as(const gw_gateway *g, const char *method, const char *path, const char *token,
                      const char *body);
/* The value of the header name (any case) of the answer; NULL without it. */
const char *gw_header(const gw_http *h, const char *name);
void gw_http_free(gw_http *h);
/* The error code of an error answer; NULL when it has none. */
const char *gw_error_of(const gw_http *h);
/* results[i] of an events answer: its seq (-1 without one), and its dup in *dup. */
long long gw_result_seq(const gw_http *h, size_t i, int *dup);

/* The answer's status, its body printed when it is not the one expected. */
#define CHECK_HTTP(h, expected)                                                                    \
    do {                                                                                           \
        if ((h).status != (expected))                                                              \
            fprintf(stderr, "answer: %s\n", (h).text ? (h).text : "(none)");                       \
        CHECK_INT((h).status, (expected));                                                         \
    } while (0)

#endif
