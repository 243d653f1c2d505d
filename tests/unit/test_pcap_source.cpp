// The pcap file reader (PcapSource): classic pcap read in blocks, records
// that straddle blocks, files cut inside a record, damaged lengths.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "flow_meter.h"
#include "pcap_format.h"
#include "pcap_source.h"

using namespace bpfix;

namespace {

// An Ethernet/IPv4/UDP frame of `size` bytes from source port `sport`.
std::vector<uint8_t> frame(uint16_t sport, size_t size) {
    std::vector<uint8_t> f(size, 0);
    f[12] = 0x08;  // IPv4
    uint8_t* ip = f.data() + 14;
    const size_t ip_len = size - 14;
    ip[0] = 0x45;
    ip[2] = static_cast<uint8_t>(ip_len >> 8);
    ip[3] = static_cast<uint8_t>(ip_len);
    ip[8] = 64;
    ip[9] = 17;
    ip[12] = 10, ip[15] = 1;
    ip[16] = 10, ip[19] = 2;
    uint8_t* udp = ip + 20;
    udp[0] = static_cast<uint8_t>(sport >> 8);
    udp[1] = static_cast<uint8_t>(sport);
    udp[3] = 9;
    const size_t udp_len = ip_len - 20;
    udp[4] = static_cast<uint8_t>(udp_len >> 8);
    udp[5] = static_cast<uint8_t>(udp_len);
    return f;
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& bytes) {
        char tmpl[] = "/tmp/bpfix-pcap-source-XXXXXX";
        int fd = mkstemp(tmpl);
        path = tmpl;
        std::FILE* f = fdopen(fd, "wb");
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    ~TempFile() { unlink(path.c_str()); }
};

struct Metered {
    uint64_t frames = 0, ip_packets = 0, ip_octets = 0, malformed = 0, flows = 0, packets_in_records = 0;
    bool truncated = false;
};

Metered meter_file(const std::string& path) {
    Metered run;
    FlowMeter meter(FlowTableConfig{}, 1, BPFIX_DIR_INGRESS, [&](const FlowRecord& r) {
        ++run.flows;
        run.packets_in_records += r.packetDeltaCount;
    });
    PcapSource src(path);
    while (src.read_batch(meter, 1000)) {
    }
    meter.finish();
    run.frames = meter.counters().frames;
    run.ip_packets = meter.counters().ip_packets;
    run.ip_octets = meter.counters().ip_octets;
    run.malformed = meter.counters().malformed;
    run.truncated = src.truncated();
    return run;
}

// 12,000 records of 200..1499 bytes (about 10 MB: several read blocks, so
// records straddle block ends), 300 flows.
std::string capture(uint64_t* ip_octets = nullptr) {
    std::string out = pcap_global_header(65535, true);
    uint64_t octets = 0;
    for (int i = 0; i < 12000; ++i) {
        size_t size = 200 + static_cast<size_t>(i * 7919) % 1300;
        auto f = frame(static_cast<uint16_t>(1000 + i % 300), size);
        append_pcap_record(out, 1'700'000'000'000'000'000ULL + static_cast<uint64_t>(i) * 1000, true,
                           static_cast<uint32_t>(f.size()), f);
        octets += size - 14;
    }
    if (ip_octets) *ip_octets = octets;
    return out;
}

}  // namespace

TEST(PcapSource, ReadsEveryRecordAcrossBlockBoundaries) {
    uint64_t octets = 0;
    TempFile file(capture(&octets));
    Metered run = meter_file(file.path);
    EXPECT_EQ(run.frames, 12000u);
    EXPECT_EQ(run.ip_packets, 12000u);
    EXPECT_EQ(run.ip_octets, octets);
    EXPECT_EQ(run.malformed, 0u);
    EXPECT_EQ(run.flows, 300u);
    EXPECT_EQ(run.packets_in_records, 12000u);
    EXPECT_FALSE(run.truncated);
}

TEST(PcapSource, AFileCutInsideARecordEndsThereAndCountsItMalformed) {
    std::string whole = capture();
    // Cut 100 bytes into the data of some record past the first block.
    size_t pos = kPcapGlobalHeaderSize, records = 0;
    while (pos < (5u << 20)) {
        uint32_t caplen;
        std::memcpy(&caplen, whole.data() + pos + 8, 4);
        pos += kPcapRecordHeaderSize + caplen;
        ++records;
    }
    TempFile cut(whole.substr(0, pos + kPcapRecordHeaderSize + 100));
    Metered run = meter_file(cut.path);
    EXPECT_TRUE(run.truncated);
    EXPECT_EQ(run.ip_packets, records);
    EXPECT_EQ(run.frames, records + 1);
    EXPECT_EQ(run.malformed, 1u);
    EXPECT_EQ(run.packets_in_records, records);

    TempFile cut_header(whole.substr(0, pos + 5));  // inside a record header
    run = meter_file(cut_header.path);
    EXPECT_TRUE(run.truncated);
    EXPECT_EQ(run.ip_packets, records);
    EXPECT_EQ(run.malformed, 1u);
}

TEST(PcapSource, ARecordClaimingAnImpossibleLengthStopsTheRead) {
    std::string out = pcap_global_header(65535, true);
    auto f = frame(1000, 100);
    append_pcap_record(out, 1'700'000'000'000'000'000ULL, true, 100, f);
    std::string bad = out.substr(kPcapGlobalHeaderSize);  // one more record...
    uint32_t huge = 300000;                               // ...claiming 300,000 captured bytes
    std::memcpy(bad.data() + 8, &huge, 4);
    out += bad;
    TempFile file(out);
    Metered run = meter_file(file.path);
    EXPECT_TRUE(run.truncated);
    EXPECT_EQ(run.ip_packets, 1u);
    EXPECT_EQ(run.malformed, 1u);
}
