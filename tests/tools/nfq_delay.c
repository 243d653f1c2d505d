/* Test helper: holds every packet of an NFQUEUE queue a fixed time, then
 * accepts it, so a namespace gets a known added delay without netem.
 *
 * usage: bpfix_nfq_delay QUEUE_NUM DELAY_MS
 *
 * Prints "ready" on stdout once bound to the queue; runs until SIGTERM or
 * SIGINT, then accepts what it still holds and exits 0. Packets leave in
 * the order they came (one fixed delay: a FIFO). */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_HELD 65536

static struct {
    uint32_t id;
    uint64_t due_ns;
} held[MAX_HELD];
static size_t head, count;
static uint64_t delay_ns;
static volatile sig_atomic_t stop;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (count == MAX_HELD) /* cannot hold it: let it through now */
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    size_t tail = (head + count) % MAX_HELD;
    held[tail].id = id;
    held[tail].due_ns = now_ns() + delay_ns;
    count++;
    return 0;
}

static void release(struct nfq_q_handle *qh, uint64_t until)
{
    while (count && held[head].due_ns <= until) {
        nfq_set_verdict(qh, held[head].id, NF_ACCEPT, 0, NULL);
        head = (head + 1) % MAX_HELD;
        count--;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s QUEUE_NUM DELAY_MS\n", argv[0]);
        return 2;
    }
    int queue = atoi(argv[1]);
    delay_ns = (uint64_t)atoi(argv[2]) * 1000000ULL;
    struct nfq_handle *h = nfq_open();
    if (!h) {
        fprintf(stderr, "nfq_delay: cannot open an NFQUEUE netlink socket: %s (needs CAP_NET_ADMIN)\n",
                strerror(errno));
        return 1;
    }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
    if (!qh) {
        fprintf(stderr, "nfq_delay: cannot bind queue %d: %s (another reader holds it?)\n", queue, strerror(errno));
        return 1;
    }
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(qh, MAX_HELD) < 0) {
        fprintf(stderr, "nfq_delay: cannot configure queue %d: %s\n", queue, strerror(errno));
        return 1;
    }
    int fd = nfq_fd(h);
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);

    char buf[65536];
    while (!stop) {
        int timeout = -1;
        if (count) {
            uint64_t now = now_ns();
            timeout = held[head].due_ns > now ? (int)((held[head].due_ns - now + 999999) / 1000000) : 0;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout);
        if (r < 0 && errno != EINTR) {
            perror("nfq_delay: poll");
            return 1;
        }
        if (r > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0)
                nfq_handle_packet(h, buf, (int)n);
            else if (n < 0 && errno == ENOBUFS)
                fprintf(stderr, "nfq_delay: the kernel dropped queue messages (ENOBUFS)\n");
        }
        release(qh, now_ns());
    }
    release(qh, UINT64_MAX);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
