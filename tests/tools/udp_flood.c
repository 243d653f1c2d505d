/* udp_flood: sends UDP datagrams as fast as it can (sendmmsg, 64 at a time)
 * for a bounded time, then prints how many the kernel accepted. A traffic
 * source for the integration and benchmark tiers; it only ever sends to the
 * address it is given, which the tests keep inside namespaces they made.
 *
 * usage: udp_flood SRC_IP DST_IP DST_PORT SECONDS PAYLOAD_BYTES */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s SRC_IP DST_IP DST_PORT SECONDS PAYLOAD_BYTES\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[4]);
    int payload = atoi(argv[5]);
    if (seconds <= 0 || seconds > 60 || payload < 0 || payload > 1400) {
        fprintf(stderr, "udp_flood: SECONDS must be in (0, 60], PAYLOAD_BYTES in [0, 1400]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 || inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
        fprintf(stderr, "udp_flood: bad IPv4 address\n");
        return 2;
    }
    dst.sin_port = htons((unsigned short)atoi(argv[3]));
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) {
        perror("udp_flood: socket");
        return 1;
    }
    static char buf[1400];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = (size_t)payload;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long sent = 0;
    double end = now() + seconds;
    while (now() < end) {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0)
            sent += (unsigned long long)n;
        else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
            break;
    }
    printf("%llu\n", sent);
    return 0;
}
