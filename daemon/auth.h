/* auth.h: who may connect and what each may do: the server's CURVE secret
 * key, the clients file (a role, a public key and a name a line), the ZAP
 * handler that admits the listed keys, and the roles that requests and
 * pushes are checked against. */
#ifndef DF_AUTH_H
#define DF_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "codec.h"

/* Roles, as bits: an op or a socket lists the roles that may use it. */
#define DF_ROLE_PRODUCER 1u
#define DF_ROLE_READER   2u
#define DF_ROLE_ADMIN    4u
#define DF_ROLES_ANY     (DF_ROLE_PRODUCER | DF_ROLE_READER | DF_ROLE_ADMIN)
#define DF_ROLES_READ    (DF_ROLE_READER | DF_ROLE_ADMIN)
#define DF_ROLES_WRITE   (DF_ROLE_PRODUCER | DF_ROLE_ADMIN)

/* The longest client name: it is recorded as `by` in every event. */
#define DF_AUTH_NAME_MAX 64

/* ZAP domains of the three sockets. */
#define DF_ZAP_INGEST "ingest"
#define DF_ZAP_API    "api"
#define DF_ZAP_NOTIFY "notify"

typedef struct df_auth df_auth;

/* Reads the server's secret key (Z85, 40 characters, on the first line) from
 * a file that only its owner may read. Returns false with why set. */
bool df_auth_read_secret(const char *path, char secret[41], char *why, size_t why_len);

/* Reads the clients file and binds the ZAP handler in the ZeroMQ context
 * zmq (before any CURVE socket binds). Returns NULL with why set (naming the
 * line of a malformed file). */
df_auth *df_auth_open(void *zmq, const char *clients_path, char *why, size_t why_len);
void df_auth_close(df_auth *a);

/* The ZAP socket, for the loop to poll. */
void *df_auth_socket(const df_auth *a);

/* Answers the ZAP requests waiting (never blocks). Returns how many. */
int df_auth_serve(df_auth *a, int budget);

/* Reads the clients file again: on success the new set replaces the old;
 * a malformed file keeps the old set and the reason is logged. Returns 0 or
 * -1. */
int df_auth_reload(df_auth *a);

/* The roles of the sender of msg (a zmq_msg_t *) by its User-Id (its public key), checked
 * against the current clients set; 0 when it is no longer (or never was)
 * listed. *name is then the sender's name, valid until the next reload. */
unsigned df_auth_roles(const df_auth *a, void *msg, df_str *name);

#endif
