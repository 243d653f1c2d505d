// Paced IPFIX-over-UDP load for the collector benchmark (udp_bench.py):
// the 11-field IPv4 flow records of ingest.py, 30 per message, the
// template first and every 50 messages, sequence numbers counting the
// records sent. Messages go out with sendmmsg in 1 ms slots, each slot
// sending what the rate makes due, so rates of millions of records per
// second cost the sender little.
//
//   bpfix_ipfix_udp_blast HOST PORT RECORDS_PER_S SECONDS [SOURCES [unconnected]]
//
// SOURCES (default 1) spreads the load over that many source ports (one
// socket each, round-robin per message), each its own IPFIX sequence.
// The sockets are connected: while the port is closed the kernel's ICMP
// errors make sends fail and they are tried again. With "unconnected" they
// are not (as an exporter that ignores ICMP): what meets a closed port is
// sent and lost.
// Prints one line: "sent_records=N sent_messages=M elapsed_s=S".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kPerMessage = 30;
constexpr size_t kTemplateEvery = 50;
constexpr size_t kRecordLen = 47;  // the sum of the field lengths
constexpr std::array<std::pair<uint16_t, uint16_t>, 11> kFields = {
    {{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {5, 1}, {2, 8}, {1, 8}, {152, 8}, {153, 8}}};

void put16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}
void put64(std::vector<uint8_t>& b, uint64_t v) {
    put32(b, static_cast<uint32_t>(v >> 32));
    put32(b, static_cast<uint32_t>(v));
}
void set32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

// The same bytes as ingest.py's template() and record(i).
std::vector<uint8_t> template_set() {
    std::vector<uint8_t> b;
    put16(b, 2);
    put16(b, static_cast<uint16_t>(4 + 4 + 4 * kFields.size()));
    put16(b, 256);
    put16(b, static_cast<uint16_t>(kFields.size()));
    for (auto [id, len] : kFields) {
        put16(b, id);
        put16(b, len);
    }
    return b;
}

std::vector<uint8_t> data_set() {
    std::vector<uint8_t> b;
    put16(b, 256);
    put16(b, static_cast<uint16_t>(4 + kPerMessage * kRecordLen));
    for (uint32_t i = 0; i < kPerMessage; ++i) {
        uint64_t t = 1'700'000'000'000ULL + i;
        b.insert(b.end(), {10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)});
        b.insert(b.end(), {192, 0, 2, 1});
        put16(b, static_cast<uint16_t>(1024 + i % 60000));
        put16(b, 443);
        b.insert(b.end(), {6, 0x18, 0});
        put64(b, 10);
        put64(b, 1500);
        put64(b, t);
        put64(b, t + 5);
    }
    return b;
}

// A message: header (sequence and export time patched per send) + sets.
std::vector<uint8_t> message(bool with_template) {
    std::vector<uint8_t> sets;
    if (with_template) sets = template_set();
    auto d = data_set();
    sets.insert(sets.end(), d.begin(), d.end());
    std::vector<uint8_t> m;
    put16(m, 10);
    put16(m, static_cast<uint16_t>(16 + sets.size()));
    put32(m, 0);  // export time
    put32(m, 0);  // sequence
    put32(m, 1);  // observation domain
    m.insert(m.end(), sets.begin(), sets.end());
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5 || argc > 7 || (argc == 7 && std::strcmp(argv[6], "unconnected") != 0)) {
        std::fprintf(stderr, "usage: %s HOST PORT RECORDS_PER_S SECONDS [SOURCES [unconnected]]\n", argv[0]);
        return 2;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
        std::fprintf(stderr, "%s: not an IPv4 address\n", argv[1]);
        return 2;
    }
    const double rate = std::atof(argv[3]);
    const double seconds = std::atof(argv[4]);
    const size_t sources = argc >= 6 ? static_cast<size_t>(std::atoi(argv[5])) : 1;
    const bool connected = !(argc == 7 && std::strcmp(argv[6], "unconnected") == 0);
    if (rate <= 0 || seconds <= 0 || sources == 0) {
        std::fprintf(stderr, "rate, seconds and sources must be positive\n");
        return 2;
    }

    struct Source {
        int fd;
        uint32_t seq = 0;
        uint64_t messages = 0;
    };
    std::vector<Source> src;
    for (size_t i = 0; i < sources; ++i) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        int sndbuf = 8 << 20;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        if (fd < 0 || (connected && connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)) {
            std::fprintf(stderr, "socket: %s\n", std::strerror(errno));
            return 1;
        }
        src.push_back({fd});
    }

    // A ring of prebuilt messages, so one sendmmsg can carry many of them.
    constexpr size_t kBatch = 64;
    const auto with_tmpl = message(true), plain = message(false);
    std::vector<std::vector<uint8_t>> bufs(kBatch);
    std::array<iovec, kBatch> iov{};
    std::array<mmsghdr, kBatch> hdr{};

    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    uint64_t sent_msgs = 0, sent_records = 0;
    size_t next_src = 0;
    for (;;) {
        double now = std::chrono::duration<double>(clock::now() - t0).count();
        if (now >= seconds) break;
        uint64_t due = static_cast<uint64_t>(now * rate / kPerMessage) + 1;
        while (sent_msgs < due) {
            // One sendmmsg per source per round: the messages due for it.
            Source& s = src[next_src];
            next_src = (next_src + 1) % src.size();
            size_t n = 0;
            uint32_t export_time = static_cast<uint32_t>(std::time(nullptr));
            while (n < kBatch && sent_msgs + n < due) {
                bufs[n] = (s.messages + n) % kTemplateEvery == 0 ? with_tmpl : plain;
                set32(&bufs[n][4], export_time);
                set32(&bufs[n][8], s.seq + static_cast<uint32_t>(n * kPerMessage));
                iov[n] = {bufs[n].data(), bufs[n].size()};
                hdr[n] = {};
                hdr[n].msg_hdr.msg_iov = &iov[n];
                hdr[n].msg_hdr.msg_iovlen = 1;
                if (!connected) {
                    hdr[n].msg_hdr.msg_name = &to;
                    hdr[n].msg_hdr.msg_namelen = sizeof to;
                }
                ++n;
                if (src.size() > 1) break;  // round-robin: one message per source per turn
            }
            int k = sendmmsg(s.fd, hdr.data(), static_cast<unsigned>(n), 0);
            if (k < 0) {
                if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
                if (errno == ECONNREFUSED) continue;  // nobody listening yet: an ICMP error, try again
                std::fprintf(stderr, "sendmmsg: %s\n", std::strerror(errno));
                return 1;
            }
            s.messages += static_cast<uint64_t>(k);
            s.seq += static_cast<uint32_t>(static_cast<size_t>(k) * kPerMessage);
            sent_msgs += static_cast<uint64_t>(k);
            sent_records += static_cast<uint64_t>(k) * kPerMessage;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(1000));
    }
    double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    std::printf("sent_records=%llu sent_messages=%llu elapsed_s=%.3f\n", static_cast<unsigned long long>(sent_records),
                static_cast<unsigned long long>(sent_msgs), elapsed);
    for (auto& s : src) close(s.fd);
    return 0;
}
