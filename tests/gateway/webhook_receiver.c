/* webhook_receiver.c: an HTTP receiver of webhooks in the test process, over libmicrohttpd, that
 * records what it is sent and answers what the test switches it to. */
#include "webhook_receiver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "harness_wire.h"

/* How often a wait looks again. */
#define POLL_MS 10

typedef struct upload {
    char *data;
    size_t len;
} upload;

static char *copy_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Keeps one request; false when out of memory. Called with the lock held. */
static bool record(gw_receiver *r, gw_received got)
{
    if (r->nrequests == r->capacity) {
        int capacity = r->capacity ? 2 * r->capacity : 64;
        gw_received *requests = realloc(r->requests, (size_t)capacity * sizeof *requests);
        int *accepted = requests ? realloc(r->accepted, (size_t)capacity * sizeof *accepted) : NULL;
        if (requests)
            r->requests = requests;
        if (!accepted)
            return false;
        r->accepted = accepted;
        r->capacity = capacity;
    }
    if (got.status >= 200 && got.status < 300)
        r->accepted[r->naccepted++] = r->nrequests;
    r->requests[r->nrequests++] = got;
    return true;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    (void)url;
    (void)version;
    gw_receiver *r = cls;
    upload *up = *con_cls;
    if (!up) {
        if (!(up = calloc(1, sizeof *up)))
            return MHD_NO;
        *con_cls = up;
        return MHD_YES;
    }
    if (*size > 0) {
        char *grown = realloc(up->data, up->len + *size + 1);
        if (!grown)
            return MHD_NO;
        up->data = grown;
        memcpy(up->data + up->len, data, *size);
        up->len += *size;
        up->data[up->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    gw_received got = {0};
    got.body = up->data ? up->data : strdup("");
    got.len = up->len;
    up->data = NULL;
    got.signature =
        copy_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Dealflow-Signature"));
    got.content_type =
        copy_or_null(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"));
    json_t *body = got.body ? json_loadb(got.body, got.len, 0, NULL) : NULL;
    const char *topic = json_string_value(json_object_get(body, "topic"));
    got.seq = (int64_t)json_integer_value(json_object_get(body, "seq"));
    got.topic = strdup(topic ? topic : "(none)");
    json_decref(body);

    pthread_mutex_lock(&r->lock);
    got.status = strcmp(method, "POST") == 0 ? r->status : 405;
    int status = got.status;
    bool kept = got.body && got.topic && record(r, got);
    pthread_mutex_unlock(&r->lock);
    if (!kept) {
        free(got.body);
        free(got.signature);
        free(got.content_type);
        free(got.topic);
        return MHD_NO;
    }
    struct MHD_Response *res = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, res);
    MHD_destroy_response(res);
    return rc;
}

static void upload_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    upload *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
    }
    *con_cls = NULL;
}

bool gw_receiver_listen(gw_receiver *r)
{
    r->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
        r->port, NULL, NULL, answer, r, MHD_OPTION_NOTIFY_COMPLETED, upload_done, r,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!r->mhd)
        return false;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : 0;
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%u/hook", (unsigned)r->port);
    return r->port != 0;
}

bool gw_receiver_start(gw_receiver *r, const char *secret, int status)
{
    memset(r, 0, sizeof *r);
    if (sodium_init() < 0)
        return false;
    pthread_mutex_init(&r->lock, NULL);
    r->started = true;
    snprintf(r->secret, sizeof r->secret, "%s", secret);
    r->status = status;
    return gw_receiver_listen(r);
}

void gw_receiver_set_status(gw_receiver *r, int status)
{
    pthread_mutex_lock(&r->lock);
    r->status = status;
    pthread_mutex_unlock(&r->lock);
}

void gw_receiver_down(gw_receiver *r)
{
    if (r->mhd)
        MHD_stop_daemon(r->mhd);
    r->mhd = NULL;
}

void gw_receiver_stop(gw_receiver *r)
{
    if (!r->started)
        return;
    gw_receiver_down(r);
    for (int i = 0; i < r->nrequests; i++) {
        free(r->requests[i].body);
        free(r->requests[i].signature);
        free(r->requests[i].content_type);
        free(r->requests[i].topic);
    }
    free(r->requests);
    free(r->accepted);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

int gw_receiver_accepted(gw_receiver *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->naccepted;
    pthread_mutex_unlock(&r->lock);
    return n;
}

gw_received gw_receiver_accepted_at(gw_receiver *r, int i)
{
    gw_received got = {0};
    pthread_mutex_lock(&r->lock);
    if (i >= 0 && i < r->naccepted)
        got = r->requests[r->accepted[i]];
    pthread_mutex_unlock(&r->lock);
    return got;
}

bool gw_receiver_wait_accepted(gw_receiver *r, int n, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    while (gw_receiver_accepted(r) < n && it_mono_ms() < deadline) {
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    int got = gw_receiver_accepted(r);
    if (got < n)
        fprintf(stderr, "the receiver took %d deliveries, expected %d\n", got, n);
    return got >= n;
}

static bool signed_right(const char *secret, const gw_received *got)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)got->body, got->len);
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    const char *header = got->signature;
    return header && strncmp(header, "sha256=", 7) == 0 && strcmp(header + 7, hex) == 0;
}

int gw_receiver_bad_signatures(gw_receiver *r)
{
    pthread_mutex_lock(&r->lock);
    int bad = 0;
    for (int i = 0; i < r->nrequests; i++)
        bad += !signed_right(r->secret, &r->requests[i]);
    pthread_mutex_unlock(&r->lock);
    return bad;
}

int gw_receiver_bad_content_types(gw_receiver *r)
{
    pthread_mutex_lock(&r->lock);
    int bad = 0;
    for (int i = 0; i < r->nrequests; i++) {
        const char *type = r->requests[i].content_type;
        bad += !type || strcmp(type, "application/json") != 0;
    }
    pthread_mutex_unlock(&r->lock);
    return bad;
}
