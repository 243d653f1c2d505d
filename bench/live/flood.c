/* UDP flood generator and sink for the live benchmark (bench/live/run.sh).
 *
 *   flood raw IFNAME DST_MAC SRC_IP DST_IP DPORT FLOWS PAYLOAD SECONDS CPU
 *       Prebuilt Ethernet/IPv4/UDP frames sent with sendmmsg() on an AF_PACKET
 *       socket (qdisc bypassed) on IFNAME, pinned to CPU. FLOWS distinct
 *       source ports (40000 + i) to one destination port, round-robin.
 *   flood udp SRC_IP DST_IP DPORT FLOWS PAYLOAD SECONDS CPU
 *       The same datagrams through the kernel's UDP stack: FLOWS sockets bound
 *       to source ports 40000 + i, sendmmsg() batches on each in turn.
 *   flood sink IP PORT
 *       Binds a UDP socket with a small receive buffer and never reads it, so
 *       the flood has a local destination (no ICMP port unreachable) and
 *       excess datagrams are dropped at the socket (every packet of a flood
 *       is a kernel drop). Runs until killed.
 *   flood sink IP PORT read CPU
 *       The same socket with a 32 MiB buffer, read in batches (recvmmsg)
 *       by a receiver pinned to CPU that keeps up: drops are rare, the
 *       packets are consumed as on a host that is not overloaded. Cross-CPU
 *       work (waking it, skbs freed on the other CPU) makes the rate swing
 *       by about 10 % between runs (a receiver that polls without sleeping
 *       made it swing by 30 %).
 *
 * Sending prints one line: "sent N errors N seconds S user S sys S" (its own CPU time).
 * Build: cc -O2 -o flood flood.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_FLOWS 4096
#define FRAME_MAX 1514

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("flood: sched_setaffinity");
        exit(2);
    }
}

static uint16_t ip_checksum(const void *data, size_t len)
{
    const uint16_t *p = data;
    uint32_t sum = 0;
    for (; len > 1; len -= 2)
        sum += *p++;
    if (len)
        sum += *(const uint8_t *)p;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static void report(unsigned long long sent, unsigned long long errors, double secs)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("sent %llu errors %llu seconds %.6f user %ld.%06ld sys %ld.%06ld\n", sent, errors, secs,
           (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
           (long)ru.ru_stime.tv_usec);
    fflush(stdout);
}

static int run_raw(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: flood raw IFNAME DST_MAC SRC_IP DST_IP DPORT FLOWS PAYLOAD SECONDS CPU\n");
        return 2;
    }
    const char *ifname = argv[2];
    uint8_t dmac[6];
    struct in_addr src, dst;
    if (parse_mac(argv[3], dmac) || !inet_aton(argv[4], &src) || !inet_aton(argv[5], &dst)) {
        fprintf(stderr, "flood: bad MAC or address\n");
        return 2;
    }
    int dport = atoi(argv[6]), flows = atoi(argv[7]), payload = atoi(argv[8]);
    double seconds = atof(argv[9]);
    if (flows < 1 || flows > MAX_FLOWS || payload < 0 || payload > FRAME_MAX - 42) {
        fprintf(stderr, "flood: bad flows or payload\n");
        return 2;
    }
    pin(atoi(argv[10]));

    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receives nothing */
    if (fd < 0) {
        perror("flood: socket(AF_PACKET)");
        return 2;
    }
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one); /* best effort */
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex) {
        perror("flood: if_nametoindex");
        return 2;
    }
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_ifindex = (int)ifindex,
                             .sll_protocol = htons(ETH_P_IP)};
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll) != 0) {
        perror("flood: bind");
        return 2;
    }
    /* own MAC as source */
    uint8_t smac[6] = {0x02, 0, 0, 0, 0, 1};
    {
        char path[128];
        snprintf(path, sizeof path, "/sys/class/net/%s/address", ifname);
        FILE *f = fopen(path, "r");
        char buf[64];
        if (f && fgets(buf, sizeof buf, f))
            parse_mac(buf, smac);
        if (f)
            fclose(f);
    }

    size_t flen = 14 + 20 + 8 + (size_t)payload;
    uint8_t *frames = calloc((size_t)flows, flen);
    for (int i = 0; i < flows; i++) {
        uint8_t *fr = frames + (size_t)i * flen;
        memcpy(fr, dmac, 6);
        memcpy(fr + 6, smac, 6);
        fr[12] = 0x08;
        fr[13] = 0x00;
        struct iphdr *ip = (struct iphdr *)(fr + 14);
        ip->version = 4;
        ip->ihl = 5;
        ip->tot_len = htons((uint16_t)(20 + 8 + payload));
        ip->id = htons((uint16_t)i);
        ip->frag_off = htons(IP_DF);
        ip->ttl = 64;
        ip->protocol = IPPROTO_UDP;
        ip->saddr = src.s_addr;
        ip->daddr = dst.s_addr;
        ip->check = ip_checksum(ip, 20);
        struct udphdr *udp = (struct udphdr *)(fr + 34);
        udp->source = htons((uint16_t)(40000 + i));
        udp->dest = htons((uint16_t)dport);
        udp->len = htons((uint16_t)(8 + payload));
        udp->check = 0; /* optional for IPv4 */
        memset(fr + 42, 'x', (size_t)payload);
    }

    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    unsigned long long sent = 0, errors = 0;
    int next = 0;
    double t0 = now(), end = t0 + seconds, t = t0;
    while (t < end) {
        for (int b = 0; b < BATCH; b++) {
            iov[b].iov_base = frames + (size_t)next * flen;
            iov[b].iov_len = flen;
            memset(&msgs[b].msg_hdr, 0, sizeof msgs[b].msg_hdr);
            msgs[b].msg_hdr.msg_iov = &iov[b];
            msgs[b].msg_hdr.msg_iovlen = 1;
            if (++next == flows)
                next = 0;
        }
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                perror("flood: sendmmsg");
                return 1;
            }
            errors++;
        } else {
            sent += (unsigned long long)n;
        }
        t = now();
    }
    report(sent, errors, t - t0);
    return 0;
}

static int run_udp(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: flood udp SRC_IP DST_IP DPORT FLOWS PAYLOAD SECONDS CPU\n");
        return 2;
    }
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    if (!inet_aton(argv[2], &src.sin_addr) || !inet_aton(argv[3], &dst.sin_addr)) {
        fprintf(stderr, "flood: bad address\n");
        return 2;
    }
    dst.sin_port = htons((uint16_t)atoi(argv[4]));
    int flows = atoi(argv[5]), payload = atoi(argv[6]);
    double seconds = atof(argv[7]);
    if (flows < 1 || flows > MAX_FLOWS || payload < 0 || payload > 65000) {
        fprintf(stderr, "flood: bad flows or payload\n");
        return 2;
    }
    pin(atoi(argv[8]));
    int *fds = calloc((size_t)flows, sizeof *fds);
    for (int i = 0; i < flows; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        src.sin_port = htons((uint16_t)(40000 + i));
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&src, sizeof src) != 0 ||
            connect(fds[i], (struct sockaddr *)&dst, sizeof dst) != 0) {
            perror("flood: udp socket");
            return 2;
        }
    }
    char *buf = malloc((size_t)payload + 1);
    memset(buf, 'x', (size_t)payload + 1);
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int b = 0; b < BATCH; b++) {
        iov[b].iov_base = buf;
        iov[b].iov_len = (size_t)payload;
        msgs[b].msg_hdr.msg_iov = &iov[b];
        msgs[b].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long sent = 0, errors = 0;
    int next = 0;
    double t0 = now(), end = t0 + seconds, t = t0;
    while (t < end) {
        int n = sendmmsg(fds[next], msgs, BATCH, 0);
        if (n < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) {
                perror("flood: sendmmsg");
                return 1;
            }
            errors++;
        } else {
            sent += (unsigned long long)n;
        }
        if (++next == flows)
            next = 0;
        t = now();
    }
    report(sent, errors, t - t0);
    return 0;
}

static int run_sink(int argc, char **argv)
{
    int reading = argc == 6 && !strcmp(argv[4], "read");
    if (argc != 4 && !reading) {
        fprintf(stderr, "usage: flood sink IP PORT [read CPU]\n");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    if (!inet_aton(argv[2], &a.sin_addr)) {
        fprintf(stderr, "flood: bad address\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int size = reading ? 32 << 20 : 4096;
    if (reading) {
        pin(atoi(argv[5]));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    } else {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("flood: sink");
        return 2;
    }
    printf("sink ready\n");
    fflush(stdout);
    if (!reading) {
        for (;;)
            pause();
    }
    enum { RB = 256, SLOT = 64 }; /* the flood's datagrams are small; longer ones are truncated */
    static uint8_t buf[RB][SLOT];
    static struct iovec iov[RB];
    static struct mmsghdr msgs[RB];
    for (int i = 0; i < RB; i++) {
        iov[i].iov_base = buf[i];
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (;;) {
        int n = recvmmsg(fd, msgs, RB, MSG_WAITFORONE, NULL);
        if (n < 0 && errno != EINTR) {
            perror("flood: sink recvmmsg");
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "raw"))
        return run_raw(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "udp"))
        return run_udp(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "sink"))
        return run_sink(argc, argv);
    fprintf(stderr, "usage: flood raw|udp|sink ...\n");
    return 2;
}
