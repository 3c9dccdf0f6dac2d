/* deadline.c: the connections being read, each with when its request began, and a thread that
 * shuts down the socket of one whose request is late. The shutdown is done under the lock that
 * libmicrohttpd's close notification takes too, and that notification comes before it closes the
 * socket, so a socket number is never shut after it was closed and reused. */
#include "deadline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SWEEP_MS 200

typedef struct watched {
    struct watched *prev, *next;
    gw_deadlines *owner;
    int fd;
    int64_t since_ms; /* when the request being read began */
    bool arrived;     /* the request is whole: being answered */
    bool cut;
} watched;

struct gw_deadlines {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t sweeper;
    watched head; /* a ring: head.next is the oldest */
    int64_t timeout_ms;
    bool stopping;
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *sweep(void *arg)
{
    gw_deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        int64_t now = mono_ms();
        for (watched *w = d->head.next; w != &d->head; w = w->next)
            if (!w->arrived && !w->cut && now - w->since_ms >= d->timeout_ms) {
                shutdown(w->fd, SHUT_RDWR);
                w->cut = true;
            }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SWEEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int gw_deadlines_start(gw_deadlines **out, unsigned timeout_s)
{
    *out = NULL;
    gw_deadlines *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->head.next = d->head.prev = &d->head;
    d->timeout_ms = (int64_t)timeout_s * 1000;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&d->sweeper, NULL, sweep, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void gw_deadlines_stop(gw_deadlines *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->sweeper, NULL);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

void gw_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    gw_deadlines *d = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        watched *w = fd ? calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (!w)
            return; /* unwatched: the idle timeout still applies */
        w->owner = d;
        w->fd = fd->connect_fd;
        pthread_mutex_lock(&d->lock);
        w->since_ms = mono_ms();
        w->prev = d->head.prev;
        w->next = &d->head;
        d->head.prev->next = w;
        d->head.prev = w;
        pthread_mutex_unlock(&d->lock);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        watched *w = *socket_context;
        *socket_context = NULL;
        if (!w)
            return;
        pthread_mutex_lock(&d->lock);
        w->prev->next = w->next;
        w->next->prev = w->prev;
        pthread_mutex_unlock(&d->lock);
        free(w);
    }
}

static watched *watched_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

void gw_deadlines_arrived(struct MHD_Connection *conn)
{
    watched *w = watched_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&w->owner->lock);
    w->arrived = true;
    pthread_mutex_unlock(&w->owner->lock);
}

void gw_deadlines_next(struct MHD_Connection *conn)
{
    watched *w = watched_of(conn);
    if (!w)
        return;
    pthread_mutex_lock(&w->owner->lock);
    w->arrived = false;
    w->since_ms = mono_ms();
    pthread_mutex_unlock(&w->owner->lock);
}
