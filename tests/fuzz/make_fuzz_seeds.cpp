// Writes the fuzz target's seed corpus: what our exporter sends (templates
// with RFC 5610 type records, IPv4/IPv6 flows with their variable-length
// fields, the options template with exporter statistics), one stream per
// file, so the fuzzer starts from messages that decode.
#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "flow_table.h"
#include "info_model.h"
#include "ipfix_encoder.h"

using namespace bpfix;

namespace {

FlowRecord flow(int version) {
    bpfix_flow_key k{};
    k.ip_version = static_cast<uint8_t>(version);
    if (version == 4) {
        uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 7};
        memcpy(k.src_addr, src, 4);
        memcpy(k.dst_addr, dst, 4);
        k.protocol = 17;
        k.src_port = 5353;
        k.dst_port = 53;
    } else {
        inet_pton(AF_INET6, "2001:db8::1", k.src_addr);
        inet_pton(AF_INET6, "2001:db8::2", k.dst_addr);
        k.protocol = 6;
        k.src_port = 40000;
        k.dst_port = 443;
    }
    FlowRecord r = make_flow_record(k);
    r.flowStartMilliseconds = 1700000000123ULL;
    r.flowEndMilliseconds = 1700000001456ULL;
    r.packetDeltaCount = 3;
    r.octetDeltaCount = 400;
    r.flowEndReason = 2;
    return r;
}

void write(const std::string& dir, const std::string& name, const std::vector<IpfixMessage>& msgs) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    for (const auto& m : msgs) out.write(reinterpret_cast<const char*>(m.bytes.data()), m.bytes.size());
    if (!out) {
        std::fprintf(stderr, "make_fuzz_seeds: cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_fuzz_seeds DIR\n");
        return 2;
    }
    std::string dir = argv[1];
    InfoModel model;
    std::vector<IpfixMessage> templates, flows, stats;
    std::vector<IpfixMessage>* into = &templates;
    IpfixEncoder enc(model, 7, 1420, [&](IpfixMessage&& m) { into->push_back(std::move(m)); });
    enc.export_templates();
    enc.flush();
    into = &flows;
    enc.add_flow(flow(4));
    enc.add_flow(flow(6));
    enc.flush();
    into = &stats;
    StatsRecord s{};
    s.observationDomainId = 7;
    s.exportedMessageTotalCount = 5;
    s.exportedFlowRecordTotalCount = 2;
    enc.add_stats(s);
    enc.flush();

    write(dir, "templates_and_type_records", templates);
    std::vector<IpfixMessage> all = templates;
    all.insert(all.end(), flows.begin(), flows.end());
    write(dir, "templates_then_flows", all);
    all = templates;
    all.insert(all.end(), stats.begin(), stats.end());
    write(dir, "templates_then_stats", all);
    return 0;
}
