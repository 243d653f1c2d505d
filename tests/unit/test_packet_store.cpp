// Packet reports end to end without a kernel: captured frames encoded as
// RFC 7133 reports, decoded into the packet sink, stored by the pcap store
// and read back by the range query; plus the pieces (NTP times, RFC 3339,
// query strings, rotated file names).
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "http_server.h"
#include "info_model.h"
#include "ipfix_decoder.h"
#include "ipfix_encoder.h"
#include "ntp_time.h"
#include "output.h"
#include "packet_report.h"
#include "pcap_format.h"
#include "pcap_query.h"
#include "pcap_store.h"

using namespace bpfix;

namespace {

std::vector<uint8_t> frame_v4(uint8_t last, uint16_t dport, size_t payload) {
    const auto total = static_cast<uint16_t>(28 + payload), ulen = static_cast<uint16_t>(8 + payload);
    const uint8_t head[] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0,
                            static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total), 0, 1, 0, 0, 64, 17, 0, 0,
                            192, 0, 2, last, 192, 0, 2, 200, 0x30, 0x39, static_cast<uint8_t>(dport >> 8),
                            static_cast<uint8_t>(dport), static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen),
                            0, 0};
    std::vector<uint8_t> f(std::begin(head), std::end(head));
    for (size_t i = 0; i < payload; ++i) f.push_back(static_cast<uint8_t>(i * 3));
    return f;
}

std::vector<uint8_t> frame_v6() {
    std::vector<uint8_t> f = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64};
    for (int i = 0; i < 32; ++i) f.push_back(static_cast<uint8_t>(i == 0 || i == 16 ? 0x20 : i));
    for (uint8_t b : {0x12, 0x34, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00}) f.push_back(b);
    return f;
}

std::vector<uint8_t> frame_arp() {
    std::vector<uint8_t> f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
    f.resize(42, 0x11);
    return f;
}

std::string temp_dir() {
    char name[] = "/tmp/bpfix-pcapstore-XXXXXX";
    EXPECT_NE(mkdtemp(name), nullptr);
    return name;
}

}  // namespace

TEST(NtpTime, NanosecondsSurviveTheRoundTrip) {
    for (uint64_t ns : {0ULL, 1ULL, 999'999'999ULL, 1'764'561'600'123'456'789ULL, 1'764'561'600'999'999'999ULL}) {
        uint64_t unix_ns = 1'700'000'000'000'000'000ULL + ns % 1'000'000'000ULL + (ns / 1'000'000'000ULL % 1000) * 1'000'000'000ULL;
        EXPECT_EQ(unix_ns_from_ntp(ntp_time_ns(unix_ns)), unix_ns) << unix_ns;
    }
}

TEST(PacketReports, EncodeDecodeKeepsFramesTimesAndInterfaces) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    auto v4 = frame_v4(1, 53, 40), v6 = frame_v6(), arp = frame_arp(), big = frame_v4(2, 53, 3000);
    struct In {
        std::vector<uint8_t>* f;
        uint32_t orig;
        uint8_t dir;
        uint64_t ts;
    } ins[] = {{&v4, static_cast<uint32_t>(v4.size()), 0, 1'764'561'600'000'000'001ULL},
               {&v6, static_cast<uint32_t>(v6.size()), 1, 1'764'561'600'000'000'777ULL},
               {&arp, 60, 0, 1'764'561'601'500'000'000ULL},
               {&big, 70000, 1, 1'764'561'602'000'000'000ULL}};
    size_t max_section = 0;
    {
        IpfixEncoder enc(model, 9, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); }, kSpecPacketReports);
        max_section = enc.max_frame_section();
        for (const In& in : ins) {
            CapturedPacket p;
            p.ts_ns = in.ts;
            p.ifindex = 7;
            p.direction = in.dir;
            p.orig_len = in.orig;
            p.data = *in.f;
            enc.add_packet_report(make_packet_report(p, max_section));
        }
        PacketReportRecord too_big = make_packet_report(CapturedPacket{0, 1, 0, 3042, big}, 4000);
        EXPECT_THROW(enc.add_packet_report(too_big), Error);
        enc.flush();
        EXPECT_EQ(enc.packet_reports(), 4u);
    }
    for (const auto& m : msgs) EXPECT_LE(m.bytes.size(), 1472u);

    // The packet sink: what the pcap store gets.
    InfoModel rx;
    std::vector<std::tuple<uint16_t, uint64_t, uint32_t, uint32_t, uint8_t, std::vector<uint8_t>>> got;
    IpfixDecoder dec(rx, [](const DecodedRecord&) {});
    dec.set_packet_sink([&](const DecodedPacket& p) {
        got.emplace_back(p.template_id, p.ts_ns, p.orig_len, p.ifindex, p.direction,
                         std::vector<uint8_t>(p.frame.begin(), p.frame.end()));
    });
    for (const auto& m : msgs) ASSERT_EQ(dec.decode_message(m.bytes), "");
    ASSERT_EQ(got.size(), 4u);
    const uint16_t tids[] = {kTemplatePacketV4, kTemplatePacketV6, kTemplatePacketOther, kTemplatePacketV4};
    for (size_t i = 0; i < 4; ++i) {
        const auto& [tid, ts, orig, ifindex, dir, frame] = got[i];
        EXPECT_EQ(tid, tids[i]);
        EXPECT_EQ(ts, ins[i].ts);
        EXPECT_EQ(orig, std::min<uint32_t>(ins[i].orig, 65535));  // dataLinkFrameSize is 16 bits
        EXPECT_EQ(ifindex, 7u);
        EXPECT_EQ(dir, ins[i].dir);
        size_t cut = std::min(ins[i].f->size(), max_section);
        EXPECT_EQ(frame, std::vector<uint8_t>(ins[i].f->begin(), ins[i].f->begin() + static_cast<long>(cut)));
    }
    EXPECT_EQ(dec.packets(), 4u);

    // Without a packet sink they are records like others, keys named.
    std::vector<DecodedRecord> recs;
    IpfixDecoder plain(rx, [&](const DecodedRecord& r) {
        if (r.template_id >= kTemplatePacketV4) recs.push_back(r);
    });
    for (const auto& m : msgs) ASSERT_EQ(plain.decode_message(m.bytes), "");
    ASSERT_EQ(recs.size(), 4u);
    EXPECT_EQ(recs[0].fields["sourceIPv4Address"], "192.0.2.1");
    EXPECT_EQ(recs[0].fields["destinationTransportPort"], 53);
    EXPECT_EQ(recs[0].fields["egressInterface"], 0);
    EXPECT_EQ(recs[1].fields["destinationIPv6Address"], "2011:1213:1415:1617:1819:1a1b:1c1d:1e1f");
    EXPECT_EQ(recs[1].fields["egressInterface"], 7);
    EXPECT_FALSE(recs[2].fields.contains("protocolIdentifier"));
    EXPECT_EQ(recs[2].fields["dataLinkFrameSize"], 60);
}

TEST(Rfc3339, FormsAndErrors) {
    EXPECT_EQ(parse_rfc3339("2026-12-01T04:30:00Z"), 1'796'099'400'000'000'000LL);
    EXPECT_EQ(parse_rfc3339("2026-12-01T05:30:00.5+01:00"), 1'796'099'400'500'000'000LL);
    EXPECT_EQ(parse_rfc3339("2026-12-01t04:30:00.000000007z"), 1'796'099'400'000'000'007LL);
    EXPECT_EQ(parse_rfc3339("2026-12-01T03:30:00-01:00"), 1'796'099'400'000'000'000LL);
    for (const char* bad : {"", "yesterday", "2026-12-01", "2026-12-01T04:30:00", "2026-13-01T00:00:00Z",
                            "2026-12-01T25:00:00Z", "2026-12-01T04:30:00.1234567890Z"}) {
        try {
            parse_rfc3339(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const QueryError& e) {
            EXPECT_EQ(e.status(), 400);
        }
    }
}

TEST(QueryString, DecodesParameters) {
    auto q = parse_query_string("from=2026-12-01T04%3A30%3A00Z&filter=host+10.0.0.1&exporter=&x");
    EXPECT_EQ(q["from"], "2026-12-01T04:30:00Z");
    EXPECT_EQ(q["filter"], "host 10.0.0.1");
    EXPECT_EQ(q["exporter"], "");
    EXPECT_TRUE(q.count("x"));
    EXPECT_TRUE(parse_query_string("").empty());
    EXPECT_THROW(parse_query_string("a=%G1"), Error);
    EXPECT_THROW(parse_query_string("a=%4"), Error);
}

TEST(RotatedFiles, NamesTimesAndRanges) {
    std::string dir = temp_dir();
    for (const char* n : {"flows-20261201T040000Z.ipfix", "flows-20261201T040500Z.ipfix",
                          "flows-20261201T040500Z-1.ipfix", "flows-20261201T041000Z.ipfix.partial",
                          "flows-20261201T040000Z.jsonl", "other-20261201T040000Z.ipfix", "flows-2026.ipfix"}) {
        std::ofstream(dir + "/" + n) << "x";
    }
    auto files = rotated_files(dir, "flows", "ipfix");
    ASSERT_EQ(files.size(), 4u);
    EXPECT_EQ(files[0].start_ns, parse_rfc3339("2026-12-01T04:00:00Z"));
    EXPECT_EQ(files[2].part, 1u);
    EXPECT_NE(files[3].path.find(".partial"), std::string::npos);
    // 04:06-04:07: the 04:05 files (and, with no slack, nothing else).
    auto in = files_for_range(files, parse_rfc3339("2026-12-01T04:06:00Z"), parse_rfc3339("2026-12-01T04:07:00Z"), 0);
    ASSERT_EQ(in.size(), 2u);
    EXPECT_EQ(in[0].start_ns, parse_rfc3339("2026-12-01T04:05:00Z"));
    std::filesystem::remove_all(dir);
}

TEST(PcapStore, StoresPerExporterAndTheQueryMergesInTimeOrder) {
    std::string dir = temp_dir();
    // Packets from about now: the store files them by the collector's clock
    // and the query looks at the files of the range (give or take 5 min).
    const uint64_t t0 = static_cast<uint64_t>(time(nullptr)) * 1'000'000'000ULL;
    {
        PcapStore store({dir, 300, 0, 0, 0}, 1 << 20);
        // Out of order, two exporters, interleaved.
        const std::pair<const char*, uint64_t> order[] = {{"192.0.2.1", 5}, {"192.0.2.1", 1}, {"2001:db8::1", 3},
                                                          {"192.0.2.1", 9}, {"2001:db8::1", 2}};
        for (const auto& [exporter, k] : order) {
            auto f = frame_v4(static_cast<uint8_t>(k), static_cast<uint16_t>(k == 9 ? 80 : 53), 20);
            DecodedPacket p;
            p.ts_ns = t0 + k * 1000;
            p.orig_len = static_cast<uint32_t>(f.size() + k);
            p.frame = f;
            ASSERT_TRUE(store.push(exporter, p));
        }
        store.stop();
        EXPECT_EQ(store.packets_written(), 5u);
        EXPECT_EQ(store.packets_dropped(), 0u);
    }
    EXPECT_TRUE(std::filesystem::exists(dir + "/pcap/192.0.2.1"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/pcap/2001:db8::1"));
    auto run = [&](PcapQuery q) {
        std::string out;
        write_pcap_range(dir, q, [&](std::string_view c) { out.append(c); });
        std::vector<std::pair<uint64_t, uint32_t>> got;  // ts (ns), orig_len
        char err[PCAP_ERRBUF_SIZE];
        FILE* f = fmemopen(out.data(), out.size(), "rb");
        pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
        EXPECT_NE(p, nullptr) << err;
        if (!p) return got;
        pcap_pkthdr* h;
        const u_char* d;
        while (pcap_next_ex(p, &h, &d) == 1) {
            got.emplace_back(static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(h->ts.tv_usec),
                             h->len);
        }
        pcap_close(p);
        return got;
    };
    PcapQuery q;
    q.from_ns = static_cast<int64_t>(t0);
    q.to_ns = static_cast<int64_t>(t0 + 10'000);
    auto all = run(q);
    ASSERT_EQ(all.size(), 5u);
    for (size_t i = 0; i < all.size(); ++i) {
        static const uint64_t ks[] = {1, 2, 3, 5, 9};
        EXPECT_EQ(all[i].first, t0 + ks[i] * 1000);
        EXPECT_EQ(all[i].second, 62 + ks[i]);
    }
    q.exporter = "2001:db8::1";
    EXPECT_EQ(run(q).size(), 2u);
    q.exporter.clear();
    q.filter = "udp port 53";
    EXPECT_EQ(run(q).size(), 4u);
    q.filter.clear();
    q.from_ns = static_cast<int64_t>(t0 + 3000);  // [3, 9): 3 and 5
    q.to_ns = static_cast<int64_t>(t0 + 9000);
    EXPECT_EQ(run(q).size(), 2u);
    auto status = [&](PcapQuery bad) {
        try {
            write_pcap_range(dir, bad, [](std::string_view) {});
        } catch (const QueryError& e) {
            return e.status();
        }
        return 200;
    };
    PcapQuery b = q;
    b.to_ns = b.from_ns;
    EXPECT_EQ(status(b), 400);
    b = q;
    b.filter = "port";
    EXPECT_EQ(status(b), 400);
    b = q;
    b.exporter = "192.0.2.77";
    EXPECT_EQ(status(b), 404);
    b = q;
    b.max_bytes = 50;
    EXPECT_EQ(status(b), 413);
    std::filesystem::remove_all(dir);
}

// libfixbuf starts a new set before it finds the record does not fit: the
// encoder must not leave that empty set at the end of the message.
TEST(PacketReports, TemplateSwitchesAtMessageEndsLeaveNoEmptySet) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    auto v4 = frame_v4(1, 53, 300), arp = frame_arp();
    arp.resize(314, 0x11);
    {
        IpfixEncoder enc(model, 9, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); }, kSpecPacketReports);
        for (int i = 0; i < 30; ++i) {
            const auto& f = i % 2 ? arp : v4;
            enc.add_packet_report(make_packet_report(CapturedPacket{1, 1, 0, static_cast<uint32_t>(f.size()), f},
                                                     enc.max_frame_section()));
        }
        enc.flush();
    }
    InfoModel rx;
    IpfixDecoder dec(rx, [](const DecodedRecord&) {});
    uint64_t packets = 0;
    dec.set_packet_sink([&](const DecodedPacket&) { ++packets; });
    for (const auto& m : msgs) {
        ASSERT_EQ(dec.decode_message(m.bytes), "");
        for (size_t off = 16; off + 4 <= m.bytes.size();) {
            size_t len = static_cast<size_t>(m.bytes[off + 2]) << 8 | m.bytes[off + 3];
            ASSERT_GT(len, 4u) << "empty set at offset " << off;
            off += len;
        }
    }
    EXPECT_EQ(packets, 30u);
}

// TCP and files carry messages up to 65000 bytes: a GSO super-packet's
// report keeps almost all of it.
TEST(PacketReports, LargeFramesFitLargeMessages) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    auto big = frame_v4(3, 5201, 62000);
    size_t max_section = 0;
    {
        IpfixEncoder enc(model, 1, 65000, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); }, kSpecPacketReports);
        max_section = enc.max_frame_section();
        for (int i = 0; i < 3; ++i) {
            enc.add_packet_report(make_packet_report(CapturedPacket{1, 1, 1, 62702, big}, max_section));
        }
        enc.flush();
    }
    EXPECT_GE(max_section, big.size());
    InfoModel rx;
    IpfixDecoder dec(rx, [](const DecodedRecord&) {});
    std::vector<std::vector<uint8_t>> frames;
    dec.set_packet_sink([&](const DecodedPacket& p) { frames.emplace_back(p.frame.begin(), p.frame.end()); });
    for (const auto& m : msgs) {
        EXPECT_LE(m.bytes.size(), 65000u);
        ASSERT_EQ(dec.decode_message(m.bytes), "");
    }
    ASSERT_EQ(frames.size(), 3u);
    for (const auto& f : frames) EXPECT_EQ(f, big);
}
