/* admission.c: one thread accepts every connection. Within the limit it goes to libmicrohttpd;
 * over it the answer is a fixed 503 written straight to the socket, which costs no memory and
 * never blocks (the socket is non-blocking and the answer fits in its buffer). */
#define _GNU_SOURCE /* accept4 */
#include "admission.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define POLL_MS 200

struct gw_admission {
    int listen_fd;
    struct MHD_Daemon *mhd;
    unsigned limit;
    _Atomic unsigned *open;
    _Atomic bool stopping;
    pthread_t thread;
    char busy[256]; /* the 503 */
    size_t busy_len;
};

#define BUSY_BODY "{\"error\":\"unavailable\",\"message\":\"too many connections, try again\"}"
static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                           "Content-Type: application/json\r\n"
                           "Retry-After: 1\r\n"
                           "Connection: close\r\n"
                           "Content-Length: %zu\r\n"
                           "\r\n" BUSY_BODY;

static void refuse(const gw_admission *a, int fd)
{
    /* what the client sent already is read first, so that the close does not reset the
     * connection and lose the answer */
    char discard[4096];
    while (recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0)
        ;
    ssize_t sent = send(fd, a->busy, a->busy_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void *accept_loop(void *arg)
{
    gw_admission *a = arg;
    while (!atomic_load(&a->stopping)) {
        struct pollfd p = {.fd = a->listen_fd, .events = POLLIN};
        if (poll(&p, 1, POLL_MS) <= 0)
            continue;
        for (;;) {
            struct sockaddr_storage addr;
            socklen_t len = sizeof addr;
            int fd =
                accept4(a->listen_fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    poll(NULL, 0, POLL_MS); /* out of descriptors: wait for some to close */
                break;
            }
            if (atomic_load(a->open) >= a->limit) {
                refuse(a, fd);
                continue;
            }
            atomic_fetch_add(a->open, 1);
            /* on failure libmicrohttpd has closed the socket */
            if (MHD_add_connection(a->mhd, fd, (struct sockaddr *)&addr, len) != MHD_YES)
                atomic_fetch_sub(a->open, 1);
        }
    }
    return NULL;
}

int gw_admission_start(gw_admission **out, int listen_fd, struct MHD_Daemon *mhd, unsigned limit,
                       _Atomic unsigned *open)
{
    *out = NULL;
    gw_admission *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    a->listen_fd = listen_fd;
    a->mhd = mhd;
    a->limit = limit;
    a->open = open;
    a->busy_len = (size_t)snprintf(a->busy, sizeof a->busy, busy, sizeof BUSY_BODY - 1);
    if (pthread_create(&a->thread, NULL, accept_loop, a) != 0) {
        free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void gw_admission_stop(gw_admission *a)
{
    if (!a)
        return;
    atomic_store(&a->stopping, true);
    pthread_join(a->thread, NULL);
    free(a);
}
