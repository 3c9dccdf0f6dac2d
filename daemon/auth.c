/* auth.c: the server's secret key, the clients file and the ZAP handler
 * (RFC 27). The handler is a REP socket on inproc://zeromq.zap.01 in the
 * daemon's context, answered from the loop: a CURVE handshake is admitted
 * when the client's public key is listed, and on the notify domain only
 * when its role may read; the reply's user id is the client's public key
 * (Z85), which ZeroMQ then attaches to every message of that connection
 * (User-Id), so each request and push is checked against the clients set of
 * the moment: a key removed by a reload loses its rights on the connections
 * it has open, also when its name is given to another key. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clients.h"
#include "keyfile.h"
#include "log.h"

#define ZAP_ENDPOINT     "inproc://zeromq.zap.01"
#define Z85_KEY_LEN      40
#define CLIENTS_FILE_MAX (64u << 20) /* a million clients and more */

struct df_auth {
    void *zap;
    char *path;
    df_client_set clients;
};

bool df_auth_read_secret(const char *path, char secret[41], char *why, size_t why_len)
{
    uint8_t key[DF_KEY_BYTES], public_key[DF_KEY_BYTES];
    bool ok = df_key_file_secret("the --curve-key file", path, key, public_key, why, why_len);
    if (ok)
        df_key_z85_encode(key, secret);
    explicit_bzero(key, sizeof key);
    return ok;
}

/* Reads a clients file into *out. Returns false with why naming the line. */
static bool read_clients(const char *path, df_client_set *out, char *why, size_t why_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "cannot open the clients file %s: %s", path, strerror(errno));
        return false;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (len == cap) {
            if (cap >= CLIENTS_FILE_MAX) {
                snprintf(why, why_len, "%s is too large for a clients file", path);
                ok = false;
                break;
            }
            size_t ncap = cap ? 2 * cap : 4096;
            char *grown = realloc(text, ncap);
            if (!grown) {
                snprintf(why, why_len, "out of memory reading %s", path);
                ok = false;
                break;
            }
            text = grown;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ok && ferror(f)) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    ok = ok && df_clients_parse(text, len, path, out, why, why_len);
    free(text);
    return ok;
}

df_auth *df_auth_open(void *zmq, const char *clients_path, char *why, size_t why_len)
{
    df_auth *a = calloc(1, sizeof(*a));
    int linger = 0;
    if (!a || !(a->path = strdup(clients_path))) {
        snprintf(why, why_len, "out of memory");
        free(a);
        return NULL;
    }
    if (!read_clients(clients_path, &a->clients, why, why_len))
        goto fail;
    if (!(a->zap = zmq_socket(zmq, ZMQ_REP)) ||
        zmq_setsockopt(a->zap, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(a->zap, ZAP_ENDPOINT) != 0) {
        snprintf(why, why_len, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    return a;
fail:
    df_auth_close(a);
    return NULL;
}

void df_auth_close(df_auth *a)
{
    if (!a)
        return;
    if (a->zap)
        zmq_close(a->zap);
    df_clients_free(&a->clients);
    free(a->path);
    free(a);
}

void *df_auth_socket(const df_auth *a)
{
    return a->zap;
}

static bool frame_is(zmq_msg_t *m, const char *s)
{
    return zmq_msg_size(m) == strlen(s) && memcmp(zmq_msg_data(m), s, strlen(s)) == 0;
}

/* The ZAP request's frames: version, request id, domain, address, identity,
 * mechanism, credentials. */
enum {
    ZAP_VERSION,
    ZAP_ID,
    ZAP_DOMAIN,
    ZAP_ADDRESS,
    ZAP_IDENTITY,
    ZAP_MECHANISM,
    ZAP_KEY,
    ZAP_FRAMES
};

/* Which client a ZAP request admits, or NULL. */
static const df_client_entry *admit(const df_auth *a, zmq_msg_t *f, int count)
{
    if (count != ZAP_FRAMES || !frame_is(&f[ZAP_VERSION], "1.0") ||
        !frame_is(&f[ZAP_MECHANISM], "CURVE") || zmq_msg_size(&f[ZAP_KEY]) != 32)
        return NULL;
    const df_client_entry *c = df_clients_find(&a->clients, zmq_msg_data(&f[ZAP_KEY]));
    if (!c)
        return NULL;
    if (frame_is(&f[ZAP_DOMAIN], DF_ZAP_NOTIFY))
        return c->roles & DF_ROLES_READ ? c : NULL;
    if (frame_is(&f[ZAP_DOMAIN], DF_ZAP_INGEST) || frame_is(&f[ZAP_DOMAIN], DF_ZAP_API))
        return c;
    return NULL;
}

static void send_frame(void *s, const void *data, size_t len, bool more)
{
    zmq_send(s, data, len, more ? ZMQ_SNDMORE : 0);
}

int df_auth_serve(df_auth *a, int budget)
{
    zmq_msg_t f[ZAP_FRAMES];
    int served = 0;
    while (served < budget) {
        int count = 0;
        bool more = true;
        while (more) {
            zmq_msg_t *m = &f[count < ZAP_FRAMES ? count : ZAP_FRAMES - 1];
            if (count >= ZAP_FRAMES)
                zmq_msg_close(m);
            zmq_msg_init(m);
            if (zmq_msg_recv(m, a->zap, count == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(m);
                if (count == 0)
                    return served;
                break;
            }
            more = zmq_msg_more(m);
            count++;
        }
        int kept = count < ZAP_FRAMES ? count : ZAP_FRAMES;
        const df_client_entry *c = count <= ZAP_FRAMES ? admit(a, f, count) : NULL;
        char user[Z85_KEY_LEN + 1] = "";
        if (c && !zmq_z85_encode(user, c->key, 32))
            c = NULL;
        /* a REP socket must answer what it received, also garbage */
        send_frame(a->zap, "1.0", 3, true);
        if (kept > ZAP_ID)
            send_frame(a->zap, zmq_msg_data(&f[ZAP_ID]), zmq_msg_size(&f[ZAP_ID]), true);
        else
            send_frame(a->zap, "", 0, true);
        send_frame(a->zap, c ? "200" : "400", 3, true);
        send_frame(a->zap, c ? "OK" : "not a client of this daemon", c ? 2 : 27, true);
        send_frame(a->zap, c ? user : "", c ? Z85_KEY_LEN : 0, true);
        send_frame(a->zap, "", 0, false);
        for (int i = 0; i < kept; i++)
            zmq_msg_close(&f[i]);
        served++;
    }
    return served;
}

int df_auth_reload(df_auth *a)
{
    char why[512];
    df_client_set set;
    if (!read_clients(a->path, &set, why, sizeof(why))) {
        df_log("SIGHUP: the clients were not reloaded, the old set stays: %s", why);
        return -1;
    }
    df_clients_free(&a->clients);
    a->clients = set;
    df_log("SIGHUP: %zu clients loaded from %s", set.count, a->path);
    return 0;
}

unsigned df_auth_roles(const df_auth *a, void *msg, df_str *name)
{
    const char *user = zmq_msg_gets(msg, "User-Id");
    uint8_t key[32];
    if (!user || strlen(user) != Z85_KEY_LEN || !zmq_z85_decode(key, user))
        return 0;
    const df_client_entry *c = df_clients_find(&a->clients, key);
    if (!c)
        return 0;
    name->ptr = c->name;
    name->len = (uint32_t)strlen(c->name);
    return c->roles;
}
