// Encoder -> bytes -> decoder, both on libfixbuf: what we export is what a
// generic IPFIX reader sees, within every transport's message size.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "flow_table.h"
#include "info_model.h"
#include "ipfix_decoder.h"
#include "ipfix_encoder.h"

using namespace bpfix;

namespace {

FlowRecord v4_record(uint16_t sport) {
    bpfix_flow_key k{};
    k.ip_version = 4;
    uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 7};
    memcpy(k.src_addr, src, 4);
    memcpy(k.dst_addr, dst, 4);
    k.protocol = 6;
    k.src_port = sport;
    k.dst_port = 443;
    k.vlan_id = 42;
    FlowRecord r = make_flow_record(k);
    r.flowStartMilliseconds = 1700000000123ULL;
    r.flowEndMilliseconds = 1700000001456ULL;
    r.packetDeltaCount = 10;
    r.octetDeltaCount = 5000;
    r.tcpControlBits = 0x1b;
    r.flowEndReason = 3;
    return r;
}

FlowRecord v6_record() {
    bpfix_flow_key k{};
    k.ip_version = 6;
    inet_pton(AF_INET6, "2001:db8::1", k.src_addr);
    inet_pton(AF_INET6, "2001:db8::2", k.dst_addr);
    k.protocol = 58;
    k.icmp_type_code = 0x8000;
    FlowRecord r = make_flow_record(k);
    r.packetDeltaCount = 1;
    r.octetDeltaCount = 104;
    r.flowEndReason = 4;
    return r;
}

struct Decoded {
    std::vector<DecodedRecord> records;
};

}  // namespace

TEST(IpfixRoundTrip, FlowsAndStatsDecodeToTheSameValues) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    {
        IpfixEncoder enc(model, 7, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); });
        enc.add_flow(v4_record(1000));
        enc.add_flow(v6_record());
        StatsRecord s{};
        s.observationDomainId = 7;
        s.exportedFlowRecordTotalCount = 2;
        s.ignoredPacketTotalCount = 3;
        enc.add_stats(s);
        enc.flush();
        EXPECT_EQ(enc.flow_records(), 2u);
    }
    ASSERT_GE(msgs.size(), 2u);
    EXPECT_TRUE(msgs[0].templates);

    InfoModel rx_model;
    std::vector<DecodedRecord> out;
    // RFC 5610 type records (template 259) come first, one per enterprise
    // element; the records under test follow.
    IpfixDecoder dec(rx_model, [&](const DecodedRecord& r) {
        if (r.template_id != kTemplateTypeInfo) out.push_back(r);
    });
    for (const auto& m : msgs) ASSERT_EQ(dec.decode_message(m.bytes), "");
    ASSERT_EQ(out.size(), 3u);

    const auto& v4 = out[0].fields;
    EXPECT_EQ(out[0].template_id, 256);
    EXPECT_EQ(out[0].observation_domain, 7u);
    EXPECT_EQ(v4["sourceIPv4Address"], "192.0.2.1");
    EXPECT_EQ(v4["destinationIPv4Address"], "198.51.100.7");
    EXPECT_EQ(v4["sourceTransportPort"], 1000);
    EXPECT_EQ(v4["destinationTransportPort"], 443);
    EXPECT_EQ(v4["packetDeltaCount"], 10);
    EXPECT_EQ(v4["octetDeltaCount"], 5000);
    EXPECT_EQ(v4["tcpControlBits"], 0x1b);
    EXPECT_EQ(v4["vlanId"], 42);
    EXPECT_EQ(v4["flowEndReason"], 3);
    EXPECT_EQ(v4["flowStartMilliseconds"], "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(v4["flowEndMilliseconds"], "2023-11-14T22:13:21.456Z");
    EXPECT_FALSE(v4.contains("sourceIPv6Address"));

    const auto& v6 = out[1].fields;
    EXPECT_EQ(out[1].template_id, 257);
    EXPECT_EQ(v6["sourceIPv6Address"], "2001:db8::1");
    EXPECT_EQ(v6["icmpTypeCodeIPv6"], 0x8000);
    EXPECT_EQ(v6["protocolIdentifier"], 58);

    EXPECT_TRUE(out[2].options);
    EXPECT_EQ(out[2].template_id, 258);
    EXPECT_EQ(out[2].fields["ignoredPacketTotalCount"], 3);
    EXPECT_EQ(out[2].fields["exportedFlowRecordTotalCount"], 2);
}

TEST(IpfixRoundTrip, MessagesRespectTheSizeLimitAndSequenceNumbers) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    constexpr uint16_t kLimit = 1452;  // IPv6 path, MTU 1500
    IpfixEncoder enc(model, 1, kLimit, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); });
    StatsRecord stats{};
    stats.observationDomainId = 1;
    for (int i = 0; i < 1000; ++i) {
        enc.add_flow(v4_record(static_cast<uint16_t>(i)));
        // Flow records are written by hand, the others by libfixbuf: each
        // switch ends a message, and the sequence goes on across them.
        if (i % 300 == 299) enc.add_stats(stats);
    }
    enc.export_templates();  // a UDP refresh in the middle of the stream
    for (int i = 0; i < 500; ++i) enc.add_flow(v6_record());
    enc.add_stats(stats);
    enc.flush();
    uint64_t records = 0;
    uint32_t expected_seq = 0;
    for (const auto& m : msgs) {
        ASSERT_LE(m.bytes.size(), kLimit);
        uint16_t len = static_cast<uint16_t>(m.bytes[2] << 8 | m.bytes[3]);
        EXPECT_EQ(len, m.bytes.size());
        uint32_t seq = static_cast<uint32_t>(m.bytes[8]) << 24 | static_cast<uint32_t>(m.bytes[9]) << 16 |
                       static_cast<uint32_t>(m.bytes[10]) << 8 | m.bytes[11];
        EXPECT_EQ(seq, expected_seq);
        expected_seq += m.data_records;
        records += m.data_records;
    }
    // Two template exports, each with one type record per enterprise element.
    const uint64_t type_records = 2 * model.enterprise_elements().size();
    EXPECT_EQ(records, 1504u + type_records);

    InfoModel rx_model;
    uint64_t decoded = 0;
    IpfixDecoder dec(rx_model, [&](const DecodedRecord&) { ++decoded; });
    for (const auto& m : msgs) ASSERT_EQ(dec.decode_message(m.bytes), "");
    EXPECT_EQ(decoded, 1504u + type_records);
}

namespace {

// The contents of every data set of template `tid` in `msgs`, concatenated.
std::vector<uint8_t> set_contents(const std::vector<std::vector<uint8_t>>& msgs, uint16_t tid) {
    std::vector<uint8_t> out;
    for (const auto& m : msgs) {
        size_t off = 16;
        while (off + 4 <= m.size()) {
            const uint16_t id = static_cast<uint16_t>(m[off] << 8 | m[off + 1]);
            const size_t len = static_cast<size_t>(m[off + 2] << 8 | m[off + 3]);
            if (len < 4 || off + len > m.size()) break;
            if (id == tid) out.insert(out.end(), m.begin() + static_cast<ptrdiff_t>(off + 4),
                                      m.begin() + static_cast<ptrdiff_t>(off + len));
            off += len;
        }
    }
    return out;
}

}  // namespace

// Flow records are written by hand (IpfixEncoder::RecordPlan); libfixbuf,
// given the same templates and records, writes the same bytes: every
// element, both families, every enrichment group, variable-length fields
// empty, short and long (the 3-byte length form).
TEST(IpfixRoundTrip, FlowRecordsWrittenByHandAreTheBytesLibfixbufWrites) {
    InfoModel model;
    const uint32_t groups = kSpecDrops | kSpecDns | kSpecRtt;
    // The records point into these: they must outlive both encodings.
    const std::string long_name(300, 'q'), reason = "TCP_INVALID_SEQUENCE", empty;
    std::vector<FlowRecord> recs;
    for (int i = 0; i < 40; ++i) {
        FlowRecord r = i % 3 == 2 ? v6_record() : v4_record(static_cast<uint16_t>(1000 + i));
        memcpy(r.interfaceName, "veth0", 5);
        r.ingressInterface = 3 + static_cast<uint32_t>(i);
        r.egressInterface = 0x01020304;
        r.dot1qCustomerVlanId = 7;
        r.tcpControlBits = i % 2 ? 0x1c2 : 0x1b;  // NS (0x100) is not on the wire
        r.ipClassOfService = 0x2e;
        r.flowDirection = 1;
        r.droppedOctetDeltaCount = 0x1122334455667788ULL + static_cast<uint64_t>(i);
        r.droppedPacketDeltaCount = static_cast<uint64_t>(i);
        if (i % 2) r.bpfixDropReason = {reason.size(), reinterpret_cast<uint8_t*>(const_cast<char*>(reason.data()))};
        r.bpfixDropTcpState = 1;
        r.bpfixDnsMessages = 2;
        r.bpfixDnsAnswered = 1;
        r.bpfixDnsUnanswered = 1;
        r.bpfixDnsLatencyMicroseconds = 1234 + static_cast<uint32_t>(i);
        r.bpfixDnsMaxLatencyMicroseconds = 99999;
        r.bpfixDnsId = 0xbeef;
        r.bpfixDnsFlags = 0x8180;
        r.bpfixDnsQueryType = 28;
        r.bpfixDnsResponseCode = 3;
        const std::string& name = i % 4 == 1 ? long_name : i % 4 == 3 ? reason : empty;
        r.bpfixDnsQueryName = {name.size(), reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()))};
        r.bpfixTcpRttMinMicroseconds = 10;
        r.bpfixTcpRttMaxMicroseconds = 0xfffffff0;
        r.bpfixTcpRttLastMicroseconds = 20;
        r.bpfixTcpRttSamples = 4;
        r.bpfixTcpRttMethod = 2;
        recs.push_back(r);
    }

    std::vector<std::vector<uint8_t>> ours;
    {
        IpfixEncoder enc(model, 7, 1472, [&](IpfixMessage&& m) { ours.push_back(std::move(m.bytes)); }, groups);
        for (const auto& r : recs) enc.add_flow(r);
        enc.flush();
    }

    // libfixbuf itself, one large message.
    std::vector<uint8_t> buf(65000);
    fbSession_t* session = fbSessionAlloc(model.get());
    fbSessionSetDomain(session, 7);
    GError* err = nullptr;
    auto add = [&](uint16_t id, bool internal, uint32_t flags) {
        fbTemplate_t* t = fbTemplateAlloc(model.get());
        ASSERT_TRUE(fbTemplateAppendSpecArray(t, kFlowRecordSpec, flags, &err));
        ASSERT_TRUE(fbSessionAddTemplate(session, internal, id, t, &err));
    };
    add(kInternalFlow, true, kSpecV4 | kSpecV6 | kSpecInternal | groups);
    add(kTemplateFlowV4, false, kSpecV4 | kSpecWire | groups);
    add(kTemplateFlowV6, false, kSpecV6 | kSpecWire | groups);
    fbExporter_t* exporter = fbExporterAllocBuffer(buf.data(), static_cast<uint16_t>(buf.size()));
    fBuf_t* fbuf = fBufAllocForExport(session, exporter);
    ASSERT_TRUE(fBufSetInternalTemplate(fbuf, kInternalFlow, &err));
    for (const auto& r : recs) {
        ASSERT_TRUE(fBufSetExportTemplate(fbuf, r.ipVersion == 6 ? kTemplateFlowV6 : kTemplateFlowV4, &err));
        ASSERT_TRUE(fBufAppend(fbuf, reinterpret_cast<uint8_t*>(const_cast<FlowRecord*>(&r)), sizeof r, &err));
    }
    ASSERT_TRUE(fBufEmit(fbuf, &err));
    buf.resize(fbExporterGetMsgLen(exporter));
    fBufFree(fbuf);

    for (uint16_t tid : {kTemplateFlowV4, kTemplateFlowV6}) {
        const auto mine = set_contents(ours, tid), theirs = set_contents({buf}, tid);
        EXPECT_GT(theirs.size(), 1000u) << tid;
        EXPECT_EQ(mine, theirs) << "template " << tid;
    }
    EXPECT_GT(ours.size(), 3u);  // 40 records of ~150-450 bytes in 1472-byte messages
}

// nfacctd (pmacct 1.7.7) reads only the first template of an options
// template set: every options template goes in a set of its own, and every
// template still goes out, in every configuration of the encoder.
TEST(IpfixRoundTrip, EachOptionsTemplateHasASetOfItsOwn) {
    InfoModel model;
    for (uint32_t groups : {0u, kSpecDrops | kSpecDns | kSpecRtt, kSpecDrops | kSpecPacketReports}) {
        std::vector<std::vector<uint8_t>> msgs;
        IpfixEncoder enc(model, 7, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m.bytes)); }, groups);
        enc.flush();
        std::vector<uint16_t> options, others;
        for (const auto& m : msgs) {
            for (size_t off = 16; off + 4 <= m.size();) {
                const uint16_t set = static_cast<uint16_t>(m[off] << 8 | m[off + 1]);
                const size_t len = static_cast<size_t>(m[off + 2] << 8 | m[off + 3]);
                ASSERT_GE(len, 4u);
                ASSERT_LE(off + len, m.size());
                if (set == 3) {
                    // one options template: id, field count, scope count, fields
                    const size_t fields = static_cast<size_t>(m[off + 6] << 8 | m[off + 7]);
                    size_t end = off + 10;
                    for (size_t f = 0; f < fields; ++f) end += (m[end] & 0x80) ? 8 : 4;
                    EXPECT_EQ(end, off + len) << "options template set of " << len << " bytes holds more than one";
                    options.push_back(static_cast<uint16_t>(m[off + 4] << 8 | m[off + 5]));
                } else if (set == 2) {
                    for (size_t t = off + 4; t + 4 <= off + len;) {
                        others.push_back(static_cast<uint16_t>(m[t] << 8 | m[t + 1]));
                        const size_t fields = static_cast<size_t>(m[t + 2] << 8 | m[t + 3]);
                        t += 4;
                        for (size_t f = 0; f < fields; ++f) t += (m[t] & 0x80) ? 8 : 4;
                    }
                }
                off += len;
            }
        }
        std::sort(options.begin(), options.end());
        std::sort(others.begin(), others.end());
        std::vector<uint16_t> want_options{kTemplateStats, kTemplateTypeInfo, kTemplateSampling};
        if (groups & kSpecDrops) want_options.push_back(kTemplateDropReasons);
        std::vector<uint16_t> want_others{kTemplateFlowV4, kTemplateFlowV6};
        if (groups & kSpecPacketReports) {
            for (uint16_t t : {kTemplatePacketV4, kTemplatePacketV6, kTemplatePacketOther}) want_others.push_back(t);
        }
        EXPECT_EQ(options, want_options) << "groups " << groups;
        EXPECT_EQ(others, want_others) << "groups " << groups;
    }
}

TEST(IpfixRoundTrip, EnterpriseElementsAreAnnouncedWithRfc5610) {
    // A registry in the format of templates/bpfix-elements.xml, one element.
    const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<registry xmlns="http://www.iana.org/assignments" xmlns:cert="http://www.cert.org/ipfix" id="ipfix">
  <registry id="ipfix-information-elements">
    <record>
      <name>bpfixTestLatencyMicroseconds</name>
      <dataType>unsigned32</dataType>
      <dataTypeSemantics>quantity</dataTypeSemantics>
      <elementId>1</elementId>
      <cert:enterpriseId>32473</cert:enterpriseId>
      <units>microseconds</units>
      <description><paragraph>A test element.</paragraph></description>
    </record>
  </registry>
</registry>)";
    InfoModel model(4242, xml);  // a user's own PEN replaces 32473
    ASSERT_EQ(model.enterprise_elements().size(), 1u);
    EXPECT_EQ(model.enterprise_elements()[0]->ent, 4242u);

    std::vector<IpfixMessage> msgs;
    IpfixEncoder enc(model, 1, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); });
    enc.flush();

    InfoModel rx_model;  // knows nothing about PEN 4242
    ASSERT_EQ(fbInfoModelGetElementByID(rx_model.get(), 1, 4242), nullptr);
    std::vector<DecodedRecord> out;
    IpfixDecoder dec(rx_model, [&](const DecodedRecord& r) { out.push_back(r); });
    for (const auto& m : msgs) ASSERT_EQ(dec.decode_message(m.bytes), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].fields["informationElementName"], "bpfixTestLatencyMicroseconds");
    EXPECT_EQ(out[0].fields["privateEnterpriseNumber"], 4242);
    const fbInfoElement_t* learned = fbInfoModelGetElementByID(rx_model.get(), 1, 4242);
    ASSERT_NE(learned, nullptr);
    EXPECT_STREQ(learned->ref.name, "bpfixTestLatencyMicroseconds");
}

TEST(IpfixRoundTrip, BrokenMessagesAreReportedNotDecoded) {
    InfoModel model;
    std::vector<DecodedRecord> out;
    IpfixDecoder dec(model, [&](const DecodedRecord& r) { out.push_back(r); });
    std::vector<uint8_t> short_msg = {0, 10, 0, 8};
    EXPECT_NE(dec.decode_message(short_msg), "");
    std::vector<uint8_t> v9(16, 0);
    v9[1] = 9;
    v9[3] = 16;
    EXPECT_NE(dec.decode_message(v9).find("version 9"), std::string::npos);
    std::vector<uint8_t> lying(20, 0);
    lying[1] = 10;
    lying[3] = 40;
    EXPECT_NE(dec.decode_message(lying).find("length"), std::string::npos);
    EXPECT_EQ(dec.malformed(), 3u);
    EXPECT_TRUE(out.empty());
}

// The collector's fast path formats records straight into JSON lines; it
// must write exactly what the generic path decodes: same keys, same values,
// also for a string that needs escaping and is not valid UTF-8.
TEST(IpfixRoundTrip, JsonlFastPathWritesWhatTheGenericPathDecodes) {
    InfoModel model;
    std::vector<IpfixMessage> msgs;
    {
        IpfixEncoder enc(model, 7, 1472, [&](IpfixMessage&& m) { msgs.push_back(std::move(m)); });
        FlowRecord a = v4_record(1000);
        const char name[] = "ta\"p\\\x01\xff\xc3\xa9";  // quote, backslash, control, invalid byte, é
        memcpy(a.interfaceName, name, sizeof name - 1);
        enc.add_flow(a);
        enc.add_flow(v6_record());
        enc.add_flow(v4_record(0xffff));
        StatsRecord s{};
        s.observationDomainId = 7;
        s.exportedFlowRecordTotalCount = 3;
        enc.add_stats(s);
        enc.flush();
    }
    auto tail = [](std::string& out, uint32_t domain, uint16_t tid) {
        out += "\"observationDomainId\":" + std::to_string(domain) + ",\"templateId\":" + std::to_string(tid);
    };

    InfoModel generic_model;
    std::vector<nlohmann::json> want;
    IpfixDecoder generic(generic_model, [&](const DecodedRecord& r) {
        if (r.template_id == kTemplateTypeInfo) return;  // the fast path hands these to the sink
        nlohmann::ordered_json j = r.fields;
        j["observationDomainId"] = r.observation_domain;
        j["templateId"] = r.template_id;
        want.push_back(nlohmann::json::parse(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    });
    for (const auto& m : msgs) ASSERT_EQ(generic.decode_message(m.bytes), "");

    InfoModel fast_model;
    std::string lines;
    size_t sunk = 0;
    IpfixDecoder fast(fast_model, [&](const DecodedRecord&) { ++sunk; });
    fast.set_jsonl_output(&lines, tail);
    for (const auto& m : msgs) ASSERT_EQ(fast.decode_message(m.bytes), "");
    EXPECT_EQ(sunk, fast_model.enterprise_elements().size());  // RFC 5610 type records only

    std::vector<nlohmann::json> got;
    size_t start = 0;
    for (size_t nl; (nl = lines.find('\n', start)) != std::string::npos; start = nl + 1) {
        got.push_back(nlohmann::json::parse(lines.substr(start, nl - start)));
    }
    EXPECT_EQ(start, lines.size()) << "output does not end with a newline";
    ASSERT_EQ(got.size(), want.size());
    ASSERT_EQ(got.size(), 4u);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "record " << i;
    EXPECT_EQ(got[0]["interfaceName"], "ta\"p\\\x01\xef\xbf\xbd\xc3\xa9");
}
