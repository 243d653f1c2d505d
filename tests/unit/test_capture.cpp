// The capture agent's user-space pieces: the pcap stream format (read back
// by libpcap itself), pcap-filter expressions, the live server's address
// and the [capture] config checks.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "error.h"
#include "exporter_config.h"
#include "packet_capture.h"
#include "pcap_expression.h"
#include "pcap_format.h"
#include "pcap_server.h"

using namespace bpfix;

namespace {

std::vector<uint8_t> udp_frame(uint16_t dport, size_t payload) {
    const auto total = static_cast<uint16_t>(28 + payload), ulen = static_cast<uint16_t>(8 + payload);
    const uint8_t head[] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0x08, 0x00,
                            0x45, 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 1, 0, 0, 64,
                            17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                            0x30, 0x39, static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport),
                            static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen), 0, 0};
    std::vector<uint8_t> f(std::begin(head), std::end(head));
    for (size_t i = 0; i < payload; ++i) f.push_back(static_cast<uint8_t>(i));
    return f;
}

// Reads a pcap stream with libpcap: (ts_ns, caplen, len, bytes) per record.
struct Read {
    int linktype = 0, snaplen = 0, precision = 0;
    std::vector<std::tuple<uint64_t, uint32_t, uint32_t, std::vector<uint8_t>>> recs;
};

Read read_with_libpcap(const std::string& bytes) {
    Read r;
    FILE* f = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
    char err[PCAP_ERRBUF_SIZE];
    pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
    EXPECT_NE(p, nullptr) << err;
    if (!p) return r;
    r.linktype = pcap_datalink(p);
    r.snaplen = pcap_snapshot(p);
    pcap_pkthdr* h;
    const u_char* d;
    while (pcap_next_ex(p, &h, &d) == 1) {
        r.recs.emplace_back(static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(h->ts.tv_usec),
                            h->caplen, h->len, std::vector<uint8_t>(d, d + h->caplen));
    }
    pcap_close(p);  // closes f
    return r;
}

}  // namespace

TEST(PcapFormat, LibpcapReadsWhatWeWriteInBothPrecisions) {
    auto frame = udp_frame(53, 100);
    for (bool ns : {false, true}) {
        std::string s = pcap_global_header(65535, ns);
        ASSERT_EQ(s.size(), kPcapGlobalHeaderSize);
        const uint64_t ts = 1'764'561'600'123'456'789ULL;
        append_pcap_record(s, ts, ns, 1514, std::span<const uint8_t>(frame.data(), 96));
        append_pcap_record(s, ts + 1000, ns, static_cast<uint32_t>(frame.size()), frame);
        Read r = read_with_libpcap(s);
        EXPECT_EQ(r.linktype, DLT_EN10MB);
        EXPECT_EQ(r.snaplen, 65535);
        ASSERT_EQ(r.recs.size(), 2u);
        uint64_t want_ts = ns ? ts : ts / 1000 * 1000;
        EXPECT_EQ(std::get<0>(r.recs[0]), want_ts) << (ns ? "ns" : "us");
        EXPECT_EQ(std::get<1>(r.recs[0]), 96u);
        EXPECT_EQ(std::get<2>(r.recs[0]), 1514u);
        EXPECT_EQ(std::get<3>(r.recs[0]), std::vector<uint8_t>(frame.begin(), frame.begin() + 96));
        EXPECT_EQ(std::get<3>(r.recs[1]), frame);
    }
}

TEST(PcapExpression, MatchesLikeTcpdumpAndRejectsNonsense) {
    PcapExpression dns("udp port 53", 65535);
    auto a = udp_frame(53, 20), b = udp_frame(54, 20);
    EXPECT_TRUE(dns.matches(a, static_cast<uint32_t>(a.size())));
    EXPECT_FALSE(dns.matches(b, static_cast<uint32_t>(b.size())));
    PcapExpression all("", 65535);
    EXPECT_TRUE(all.empty());
    EXPECT_TRUE(all.matches(b, static_cast<uint32_t>(b.size())));
    try {
        PcapExpression bad("udp prot 53", 65535);
        FAIL() << "accepted an invalid expression";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'udp prot 53' is not a valid pcap-filter expression"), std::string::npos)
            << e.what();
    }
}

TEST(CaptureListen, Forms) {
    EXPECT_EQ(capture_listen_endpoint("5740"), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 5740));
    EXPECT_EQ(capture_listen_endpoint("0.0.0.0:1"), asio::ip::tcp::endpoint(asio::ip::make_address("0.0.0.0"), 1));
    EXPECT_EQ(capture_listen_endpoint("[::1]:5740"), asio::ip::tcp::endpoint(asio::ip::make_address("::1"), 5740));
    for (const char* bad : {"", "x", "1.2.3.4:", "1.2.3.4:70000", "::1:5740", "[::1]5740", "host:5740"}) {
        EXPECT_THROW(capture_listen_endpoint(bad), Error) << bad;
    }
}

TEST(CaptureConfig, ChecksNameTheKey) {
    auto error = [](CaptureConfig c) -> std::string {
        try {
            check_capture_config(c);
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    };
    CaptureConfig c;
    c.listen = "5740";
    EXPECT_EQ(error(c), "");
    c.listen = "0.0.0.0:5740";
    EXPECT_NE(error(c).find("set capture.allow"), std::string::npos) << error(c);
    c.allow = {"192.0.2.0/24"};
    EXPECT_EQ(error(c), "");
    c.allow = {"192.0.2.0/33"};
    EXPECT_NE(error(c).find("capture.allow"), std::string::npos) << error(c);
    c.allow.clear();
    c.listen = "5740";
    c.expression = "tcp port";
    EXPECT_NE(error(c).find("capture.expression"), std::string::npos) << error(c);
    c.expression.clear();
    FilterRuleText r;
    r.action = "accept";
    r.port = "53-1";
    c.filters = {r};
    EXPECT_NE(error(c).find("capture.filter rule 1: port"), std::string::npos) << error(c);
}

TEST(CaptureConfig, LoadsFromToml) {
    char name[] = "/tmp/bpfix-capture-XXXXXX";
    int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::ofstream(name) << "[live]\ninterfaces = [\"eth0\"]\n[capture]\nlisten = \"[::1]:6000\"\nsnaplen = 128\n"
                           "timestamps = \"ns\"\nfirst_packets = 5\nexpression = \"icmp\"\n"
                           "[[capture.filter]]\naction = \"accept\"\nprotocol = \"icmp\"\n";
    ExporterConfig cfg;
    load_exporter_config(name, cfg);
    validate_exporter_config(cfg);
    EXPECT_EQ(cfg.capture.listen, "[::1]:6000");
    EXPECT_EQ(cfg.capture.snaplen, 128u);
    EXPECT_TRUE(cfg.capture.nanoseconds);
    EXPECT_EQ(cfg.capture.first_packets, 5u);
    ASSERT_EQ(cfg.capture.filters.size(), 1u);
    EXPECT_EQ(cfg.capture.filters[0].protocol, "icmp");
    std::ofstream(name) << "[capture]\nsnaplen = 70000\n";
    ExporterConfig again;
    try {
        load_exporter_config(name, again);
        FAIL() << "took snaplen 70000";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("capture.snaplen"), std::string::npos) << e.what();
    }
    std::remove(name);
}
