/* socket.c: opening the ZeroMQ sockets of a client: every option set and its failure
 * said, then connected to its endpoint. */
#include <errno.h>

#include <zmq.h>

#include "codec.h"
#include "socket.h"

/* Sets one option; on failure closes the socket and says which option of
 * which socket ZeroMQ refused. */
static int set_option(void *socket, const df__socket_spec *spec, int option, const char *name,
                      const void *value, size_t len, df_error *err)
{
    if (zmq_setsockopt(socket, option, value, len) == 0)
        return 0;
    int code = errno;
    zmq_close(socket);
    return df_fail(err, DF_EINTERNAL, "ZeroMQ refused to set %s on the %s socket: %s", name,
                   spec->role, zmq_strerror(code));
}

int df__socket_open(void *context, const df__socket_spec *spec, void **out, df_error *err)
{
    int rc;
    *out = NULL;
    void *socket = zmq_socket(context, spec->type);
    if (socket == NULL)
        return df_fail(err, DF_EINTERNAL, "cannot open a ZeroMQ socket: %s", zmq_strerror(errno));
    if ((rc = set_option(socket, spec, ZMQ_LINGER, "the linger time", &spec->linger_ms,
                         sizeof spec->linger_ms, err)) != 0)
        return rc;
    if (spec->max_message > 0 &&
        (rc = set_option(socket, spec, ZMQ_MAXMSGSIZE, "the largest message size",
                         &spec->max_message, sizeof spec->max_message, err)) != 0)
        return rc;
    if (spec->send_timeout_ms > 0 &&
        (rc = set_option(socket, spec, ZMQ_SNDTIMEO, "the send timeout", &spec->send_timeout_ms,
                         sizeof spec->send_timeout_ms, err)) != 0)
        return rc;
    if (spec->subscribe != NULL &&
        (rc = set_option(socket, spec, ZMQ_SUBSCRIBE, "the topic prefix", spec->subscribe,
                         spec->subscribe_len, err)) != 0)
        return rc;
    const df__curve_keys *curve = spec->curve;
    if (curve != NULL &&
        ((rc = set_option(socket, spec, ZMQ_CURVE_SERVERKEY, "the CURVE server key", curve->server,
                          sizeof curve->server, err)) != 0 ||
         (rc = set_option(socket, spec, ZMQ_CURVE_PUBLICKEY, "the CURVE public key",
                          curve->public_key, sizeof curve->public_key, err)) != 0 ||
         (rc = set_option(socket, spec, ZMQ_CURVE_SECRETKEY, "the CURVE secret key",
                          curve->secret_key, sizeof curve->secret_key, err)) != 0))
        return rc;
    if (zmq_connect(socket, spec->endpoint) != 0) {
        int code = errno;
        zmq_close(socket);
        return df_fail(err, DF_EBAD_REQUEST, "cannot connect to the %s endpoint %s: %s", spec->role,
                       spec->endpoint, zmq_strerror(code));
    }
    *out = socket;
    return 0;
}
