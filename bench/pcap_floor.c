/* Reference floor for the benchmark: read every packet of a pcap with
 * libpcap and do nothing with it. Any flow meter that reads pcaps through
 * libpcap costs at least this much CPU.
 * Build: cc -O2 -o pcap_floor pcap_floor.c -lpcap */
#include <pcap/pcap.h>
#include <stdio.h>

static void cb(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    unsigned long long *n = (unsigned long long *)user;
    n[0]++;
    n[1] += h->len;
    if (h->caplen > 23)
        n[2] += bytes[23]; /* touch the packet like a parser would (IPv4 protocol) */
}

int main(int argc, char **argv)
{
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
        return 2;
    }
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "pcap_floor: %s\n", err);
        return 1;
    }
    unsigned long long n[3] = {0, 0, 0};
    if (pcap_loop(p, -1, cb, (u_char *)n) == -1) {
        fprintf(stderr, "pcap_floor: %s\n", pcap_geterr(p));
        return 1;
    }
    pcap_close(p);
    fprintf(stderr, "pcap_floor: packets=%llu wire_octets=%llu checksum=%llu\n", n[0], n[1], n[2]);
    return 0;
}
