// Malformed IPFIX in, a clear error (or, where RFC 7011 says to ignore
// something, the valid records around it) out: IpfixDecoder must survive any
// bytes. Messages are built in code so each case breaks exactly one thing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "info_model.h"
#include "ipfix_decoder.h"
#include "ipfix_builder.h"

using namespace bpfix;
using ::testing::HasSubstr;
using bpfix::test::FieldSpec;
using bpfix::test::kVarLen;
using bpfix::test::MessageBuilder;

namespace {

void put_u16(std::vector<uint8_t>& m, size_t offset, uint16_t v) {
    m.at(offset) = static_cast<uint8_t>(v >> 8);
    m.at(offset + 1) = static_cast<uint8_t>(v);
}

// sourceIPv4Address, destinationIPv4Address, sourceTransportPort,
// protocolIdentifier, packetDeltaCount, interfaceName (variable length).
const std::vector<FieldSpec> kFlowFields = {{8, 4}, {12, 4}, {7, 2}, {4, 1}, {2, 8}, {82, kVarLen}};

MessageBuilder& flow_record(MessageBuilder& m, uint64_t packets, std::string_view ifname = "eth0") {
    return m.u32(0xc0000201).u32(0xc6336407).u16(1234).u8(6).u64(packets).varlen(ifname);
}

MessageBuilder& flow_data_set(MessageBuilder& m, uint16_t tid, uint64_t packets, std::string_view ifname = "eth0") {
    m.begin_set(tid);
    flow_record(m, packets, ifname);
    return m.end_set();
}

class MalformedIpfix : public ::testing::Test {
protected:
    InfoModel model;
    std::vector<DecodedRecord> out;
    IpfixDecoder dec{model, [this](const DecodedRecord& r) { out.push_back(r); }};

    static void expect_flow(const DecodedRecord& r, uint16_t tid, uint64_t packets, std::string_view ifname = "eth0") {
        EXPECT_EQ(r.template_id, tid);
        EXPECT_EQ(r.observation_domain, 1u);
        EXPECT_FALSE(r.options);
        ASSERT_EQ(r.fields.size(), 6u) << r.fields.dump();
        EXPECT_EQ(r.fields.at("sourceIPv4Address"), "192.0.2.1");
        EXPECT_EQ(r.fields.at("destinationIPv4Address"), "198.51.100.7");
        EXPECT_EQ(r.fields.at("sourceTransportPort"), 1234);
        EXPECT_EQ(r.fields.at("protocolIdentifier"), 6);
        EXPECT_EQ(r.fields.at("packetDeltaCount"), packets);
        EXPECT_EQ(r.fields.at("interfaceName"), ifname);
    }

    // After a broken message, a valid one (re)defining template 256 still
    // decodes: the decoder's state is not poisoned.
    void expect_still_decodes() {
        out.clear();
        MessageBuilder m(1, 100);
        m.template_set(256, kFlowFields);
        flow_data_set(m, 256, 77, "after");
        ASSERT_EQ(dec.decode_message(m.build()), "");
        ASSERT_EQ(out.size(), 1u);
        expect_flow(out[0], 256, 77, "after");
    }

    std::string decode(const std::vector<uint8_t>& msg) { return dec.decode_message(msg); }
};

// --- message header ---------------------------------------------------------

TEST_F(MalformedIpfix, BufferShorterThanTheHeader) {
    std::vector<uint8_t> msg = {0x00, 0x0a, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0};
    EXPECT_THAT(decode(msg), HasSubstr("shorter than the 16-byte IPFIX header"));
    EXPECT_EQ(dec.malformed(), 1u);
    expect_still_decodes();
}

TEST_F(MalformedIpfix, HeaderLengthShorterThanTheHeader) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    auto msg = m.build();
    put_u16(msg, 2, 12);
    EXPECT_THAT(decode(msg), HasSubstr("header length 12 is shorter than the 16-byte IPFIX header"));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

TEST_F(MalformedIpfix, HeaderLengthLongerThanTheBytesGiven) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 5);
    auto msg = m.build();
    put_u16(msg, 2, static_cast<uint16_t>(msg.size() + 10));
    EXPECT_THAT(decode(msg), HasSubstr(fmt::format("header length {} does not match the {} bytes", msg.size() + 10,
                                                   msg.size())));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

// --- set headers ------------------------------------------------------------

TEST_F(MalformedIpfix, SetLengthZero) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 5);
    size_t data_set = m.set_start();
    m.put_u16(data_set + 2, 0);
    EXPECT_THAT(decode(m.build()),
                HasSubstr(fmt::format("set 256 at offset {}: length 0 is shorter than its 4-byte header", data_set)));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

TEST_F(MalformedIpfix, SetLengthBelowTheSetHeader) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    m.put_u16(m.set_start() + 2, 3);
    EXPECT_THAT(decode(m.build()), HasSubstr("set 2 at offset 16: length 3 is shorter than its 4-byte header"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, SetLengthPastTheMessageEnd) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 5);
    size_t data_set = m.set_start();
    size_t real = m.size() - data_set;
    m.put_u16(data_set + 2, static_cast<uint16_t>(real + 1));
    EXPECT_THAT(decode(m.build()),
                HasSubstr(fmt::format("set 256 at offset {}: length {} runs past the message end", data_set, real + 1)));
    // The template set before the broken one was valid and is kept.
    EXPECT_TRUE(out.empty());
    MessageBuilder next(1, 1);
    flow_data_set(next, 256, 6);
    ASSERT_EQ(decode(next.build()), "");
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 6);
}

TEST_F(MalformedIpfix, TrailingBytesShorterThanASetHeader) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 5);
    m.u8(0).u8(0);
    EXPECT_THAT(decode(m.build()), HasSubstr("2 bytes after the last set"));
    expect_still_decodes();
}

// RFC 7011 section 3.3.2: set ids 4-255 are reserved for future use. Their
// length still frames them, so the decoder skips (and counts) them and
// decodes the rest of the message, as a collector must to talk to a future
// exporter. libfixbuf 2.4 instead fails the message ("Illegal IPFIX Set
// ID"), so the decoder keeps these sets from it.
TEST_F(MalformedIpfix, ReservedSetIdsAreSkipped) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    for (uint16_t id : {4, 5, 255}) {
        m.begin_set(id).u32(0xdeadbeef).end_set();
    }
    flow_data_set(m, 256, 9);
    EXPECT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 9);
    EXPECT_EQ(dec.skipped_sets(), 3u);
    EXPECT_EQ(dec.malformed(), 0u);
}

// Set ids 0 and 1 are "not used, for historical reasons" (section 3.3.2):
// they are NetFlow v9's template sets, so a message carrying them comes from
// a confused exporter and is rejected, as libfixbuf does; the sets before
// still decode.
TEST_F(MalformedIpfix, NetflowV9SetIdsAreErrors) {
    for (uint16_t id : {0, 1}) {
        out.clear();
        MessageBuilder m;
        m.template_set(256, kFlowFields);
        flow_data_set(m, 256, 9);
        size_t bad = m.size();
        m.begin_set(id).u32(0xdeadbeef).end_set();
        flow_data_set(m, 256, 10);
        EXPECT_THAT(decode(m.build()),
                    HasSubstr(fmt::format("set {} at offset {}: set ids 0 and 1 are NetFlow v9's", id, bad)));
        ASSERT_EQ(out.size(), 1u);
        expect_flow(out[0], 256, 9);
    }
    expect_still_decodes();
}

// --- template records -------------------------------------------------------

TEST_F(MalformedIpfix, TemplateIdBelow256) {
    MessageBuilder m;
    m.template_set(255, kFlowFields);
    EXPECT_THAT(decode(m.build()), HasSubstr("template set at offset 16: template id 255 is reserved (< 256)"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, OptionsTemplateIdBelow256) {
    MessageBuilder m;
    m.begin_set(3).options_template_record(3, 1, {{149, 4}, {41, 8}}).end_set();
    EXPECT_THAT(decode(m.build()), HasSubstr("options template set at offset 16: template id 3 is reserved (< 256)"));
    expect_still_decodes();
}

// A template record with zero fields withdraws the template (RFC 7011
// section 8.1). Over UDP exporters must not send withdrawals (section 8.4),
// but the decoder does not know the transport, and files (RFC 5655) may
// carry them: it applies them, as libfixbuf does. Data for the withdrawn
// template is then data for an unknown template.
TEST_F(MalformedIpfix, WithdrawnTemplateNoLongerDecodes) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 1);
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);

    MessageBuilder w(1, 1);
    w.begin_set(2).u16(256).u16(0).end_set();
    flow_data_set(w, 256, 2);
    EXPECT_EQ(decode(w.build()), "");
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(dec.unknown_template_sets(), 1u);

    // Redefined with other fields, the id decodes the new layout.
    MessageBuilder r(1, 1);
    r.template_set(256, {{10, 4}});
    r.begin_set(256).u32(7).end_set();
    ASSERT_EQ(decode(r.build()), "");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].fields, nlohmann::ordered_json({{"ingressInterface", 7}}));
}

// Exporters resend their templates (over UDP they must): a record with the
// bytes the session already has changes nothing and is kept from libfixbuf;
// one with other fields under the same id replaces the template, also when
// its bytes equal an earlier definition of that id.
TEST_F(MalformedIpfix, TemplateRefreshesAndRedefinitions) {
    for (bool count_only : {false, true}) {
        SCOPED_TRACE(count_only ? "count only" : "decoding");
        InfoModel m2;
        std::vector<DecodedRecord> got;
        IpfixDecoder d(m2, [&](const DecodedRecord& r) { got.push_back(r); });
        d.set_count_only(count_only);
        uint32_t seq = 0;
        auto send = [&](auto fill) {
            MessageBuilder m(1, seq++);
            fill(m);
            return d.decode_message(m.build());
        };
        ASSERT_EQ(send([](MessageBuilder& m) { m.template_set(256, kFlowFields); flow_data_set(m, 256, 1); }), "");
        // the same template again, before and after data, twice in one message
        ASSERT_EQ(send([](MessageBuilder& m) {
                      m.template_set(256, kFlowFields);
                      flow_data_set(m, 256, 2);
                      m.template_set(256, kFlowFields);
                      flow_data_set(m, 256, 3);
                  }),
                  "");
        // other fields under the same id
        ASSERT_EQ(send([](MessageBuilder& m) { m.template_set(256, {{10, 4}}); m.begin_set(256).u32(7).end_set(); }),
                  "");
        // the first definition again: not a refresh of the current one
        ASSERT_EQ(send([](MessageBuilder& m) { m.template_set(256, kFlowFields); flow_data_set(m, 256, 4); }), "");
        ASSERT_EQ(send([](MessageBuilder& m) { m.template_set(256, kFlowFields); flow_data_set(m, 256, 5); }), "");
        EXPECT_EQ(d.records(), 6u);
        EXPECT_EQ(d.malformed(), 0u);
        EXPECT_EQ(d.templates_held(), 1u);
        if (!count_only) {
            ASSERT_EQ(got.size(), 6u);
            for (size_t i : {0, 1, 2}) expect_flow(got[i], 256, i + 1);
            EXPECT_EQ(got[3].fields, nlohmann::ordered_json({{"ingressInterface", 7}}));
            expect_flow(got[4], 256, 4);
            expect_flow(got[5], 256, 5);
        }
    }
}

// RFC 7011 section 8.1: a withdrawal record whose template id is the set's
// own id (2 for templates, 3 for options templates) withdraws every
// template of that kind in the domain, and nothing of the other kind.
TEST_F(MalformedIpfix, WithdrawAllTemplatesOfOneKind) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    m.template_set(257, {{10, 4}});
    m.begin_set(3).options_template_record(258, 1, {{149, 4}, {41, 8}}).end_set();
    ASSERT_EQ(decode(m.build()), "");

    MessageBuilder w(1, 0);
    w.begin_set(2).u16(2).u16(0).end_set();  // all (non-options) templates
    flow_data_set(w, 256, 2);
    w.begin_set(257).u32(7).end_set();
    w.begin_set(258).u32(1).u64(5).end_set();  // the options template stays
    EXPECT_EQ(decode(w.build()), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].options);
    EXPECT_EQ(out[0].template_id, 258);
    EXPECT_EQ(dec.unknown_template_sets(), 2u);

    MessageBuilder o(1, 1);
    o.begin_set(3).u16(3).u16(0).end_set();  // all options templates
    o.begin_set(258).u32(1).u64(5).end_set();
    EXPECT_EQ(decode(o.build()), "");
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(dec.unknown_template_sets(), 3u);
    EXPECT_EQ(dec.templates_held(), 0u);
    expect_still_decodes();
}

// RFC 7011 section 8.4: over UDP a template not refreshed within its
// lifetime expires; sent again, it decodes again.
TEST_F(MalformedIpfix, UdpTemplateLifetime) {
    dec.set_template_lifetime(std::chrono::seconds(1800));
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 1);
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    auto now = std::chrono::steady_clock::now();
    EXPECT_EQ(dec.expire_templates(now + std::chrono::seconds(1000)), 0u);
    EXPECT_EQ(dec.expire_templates(now + std::chrono::seconds(1801)), 1u);
    EXPECT_EQ(dec.templates_expired(), 1u);
    EXPECT_EQ(dec.templates_held(), 0u);
    MessageBuilder d(1, 1);
    flow_data_set(d, 256, 2);
    EXPECT_EQ(decode(d.build()), "");
    EXPECT_EQ(out.size(), 1u);
    EXPECT_EQ(dec.unknown_template_sets(), 1u);
    expect_still_decodes();  // the template again, with data
}

// RFC 7011 section 8.1: a withdrawal of a template the collector does not
// have "MUST" be ignored (and logged); the data records around it still
// decode.
TEST_F(MalformedIpfix, WithdrawalOfAnUnknownTemplateIsIgnored) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    m.begin_set(2).u16(999).u16(0).end_set();
    flow_data_set(m, 256, 3);
    EXPECT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 3);
}

// An empty variable-length string (length prefix 0) decodes to "", in both
// the generic and the JSONL path (found by the fuzzer: no buffer behind it).
TEST_F(MalformedIpfix, EmptyVariableLengthString) {
    MessageBuilder m;
    m.template_set(256, {{8, 4}, {82, kVarLen}});
    m.begin_set(256).u32(0xc0000201).varlen("").end_set();
    auto msg = m.build();
    ASSERT_EQ(decode(msg), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].fields.at("interfaceName"), "");
    InfoModel model2;
    std::string lines;
    IpfixDecoder fast(model2, [](const DecodedRecord&) {});
    fast.set_jsonl_output(&lines, [](std::string&, uint32_t, uint16_t) {});
    ASSERT_EQ(fast.decode_message(msg), "");
    EXPECT_NE(lines.find("\"interfaceName\":\"\""), std::string::npos) << lines;
}

TEST_F(MalformedIpfix, FieldLengthZero) {
    MessageBuilder m;
    m.template_set(256, {{8, 4}, {2, 0}});
    m.begin_set(256).u32(0xc0000201).end_set();
    EXPECT_THAT(decode(m.build()),
                HasSubstr("template 256 field 2 (packetDeltaCount, unsigned64): length 0 is invalid"));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

TEST_F(MalformedIpfix, VariableLengthForAFixedSizeType) {
    MessageBuilder m;
    m.template_set(256, {{8, kVarLen}});
    m.begin_set(256).varlen("\x01\x02").end_set();
    EXPECT_THAT(decode(m.build()),
                HasSubstr("template 256 field 1 (sourceIPv4Address, ipv4Address): variable length is invalid"));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

TEST_F(MalformedIpfix, FieldLongerThanItsType) {
    MessageBuilder m;
    m.template_set(256, {{10, 16}});
    m.begin_set(256).u64(1).u64(2).end_set();
    EXPECT_THAT(decode(m.build()),
                HasSubstr("template 256 field 1 (ingressInterface, unsigned32): length 16 is invalid"));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

// RFC 7011 section 6.2: integers may be sent in fewer octets; the value
// stays the same.
TEST_F(MalformedIpfix, ReducedSizeIntegersDecodeToTheirValues) {
    MessageBuilder m;
    // packetDeltaCount in 4 and 3 octets, ingressInterface in 2,
    // mibObjectValueInteger (signed32) in 3, flowStartSeconds as is.
    m.template_set(256, {{2, 4}, {1, 3}, {10, 2}, {434, 3}});
    m.begin_set(256).u32(0x01020304).u8(0x0a).u16(0x0b0c).u16(0x0102).u8(0xff).u16(0xfffe).end_set();
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].fields.at("packetDeltaCount"), 0x01020304u);
    EXPECT_EQ(out[0].fields.at("octetDeltaCount"), 0x0a0b0cu);
    EXPECT_EQ(out[0].fields.at("ingressInterface"), 0x0102u);
    EXPECT_EQ(out[0].fields.at("mibObjectValueInteger"), -2);
}

TEST_F(MalformedIpfix, TruncatedEnterpriseNumber) {
    MessageBuilder m;
    m.begin_set(2).u16(256).u16(2).u16(8).u16(4).u16(0x8000 | 100).u16(4).u16(0).end_set();
    EXPECT_THAT(decode(m.build()),
                HasSubstr("template 256 field 2: enterprise-specific field specifier runs past the set end"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, FieldCountPastTheSetEnd) {
    MessageBuilder m;
    m.begin_set(2).u16(256).u16(3).u16(8).u16(4).end_set();
    EXPECT_THAT(decode(m.build()), HasSubstr("template 256 field 2: field specifier runs past the set end"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, OptionsScopeCountZero) {
    MessageBuilder m;
    m.begin_set(3).options_template_record(300, 0, {{149, 4}, {41, 8}}).end_set();
    EXPECT_THAT(decode(m.build()), HasSubstr("options template 300: scope count 0"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, OptionsScopeCountAboveTheFieldCount) {
    MessageBuilder m;
    m.begin_set(3).options_template_record(300, 3, {{149, 4}, {41, 8}}).end_set();
    EXPECT_THAT(decode(m.build()), HasSubstr("options template 300: scope count 3 exceeds its 2 fields"));
    expect_still_decodes();
}

TEST_F(MalformedIpfix, ValidOptionsTemplateDecodes) {
    MessageBuilder m;
    m.begin_set(3).options_template_record(300, 1, {{149, 4}, {41, 8}}).end_set();
    m.begin_set(300).u32(7).u64(12345).end_set();
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].options);
    EXPECT_EQ(out[0].fields, nlohmann::ordered_json({{"observationDomainId", 7}, {"exportedMessageTotalCount", 12345}}));
}

// --- data sets --------------------------------------------------------------

TEST_F(MalformedIpfix, VarLenEscapeRunsPastTheRecord) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 256, 1);
    m.begin_set(256).u32(0xc0000201).u32(0xc6336407).u16(1234).u8(6).u64(2).u8(255).u16(1000).raw("eth0").end_set();
    std::string err = decode(m.build());
    EXPECT_THAT(err, HasSubstr("set 256"));
    EXPECT_THAT(err, HasSubstr("runs past"));
    // The record before the broken one was delivered, with its values.
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 1);
    expect_still_decodes();
}

TEST_F(MalformedIpfix, VarLenLengthRunsPastTheRecord) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    m.begin_set(256).u32(0xc0000201).u32(0xc6336407).u16(1234).u8(6).u64(2).u8(200).raw("eth0").end_set();
    std::string err = decode(m.build());
    EXPECT_THAT(err, HasSubstr("set 256"));
    EXPECT_THAT(err, HasSubstr("runs past"));
    EXPECT_TRUE(out.empty());
    expect_still_decodes();
}

TEST_F(MalformedIpfix, DataSetForAnUnknownTemplateIsCountedNotDecoded) {
    MessageBuilder m;
    m.template_set(256, kFlowFields);
    flow_data_set(m, 257, 1);
    flow_data_set(m, 256, 2);
    EXPECT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 2);
    EXPECT_EQ(dec.unknown_template_sets(), 1u);
    EXPECT_EQ(dec.records(), 1u);
}

// Padding after the last record (RFC 7011 section 3.3.1) is not a record.
TEST_F(MalformedIpfix, SetPaddingIsNotARecord) {
    MessageBuilder m;
    m.template_set(256, {{10, 4}});
    m.begin_set(256).u32(1).u32(2).u8(0).u8(0).u8(0).end_set();
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].fields.at("ingressInterface"), 2);
}

// --- stream framing (TCP, files) --------------------------------------------

TEST(IpfixMessageLength, FramesTheFirstMessage) {
    std::string err;
    std::vector<uint8_t> buf;
    EXPECT_EQ(ipfix_message_length(buf, err), std::nullopt);
    EXPECT_EQ(err, "");
    buf = {0x00, 0x0a, 0x00};
    EXPECT_EQ(ipfix_message_length(buf, err), std::nullopt);
    EXPECT_EQ(err, "");
    buf = {0x00, 0x0a, 0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    EXPECT_EQ(ipfix_message_length(buf, err), std::nullopt);  // 19 of 20 bytes
    EXPECT_EQ(err, "");
    buf.push_back(16);
    buf.push_back(17);
    EXPECT_EQ(ipfix_message_length(buf, err), 20u);
    EXPECT_EQ(err, "");
}

TEST(IpfixMessageLength, RejectsOtherVersionsAndShortLengths) {
    std::string err;
    std::vector<uint8_t> v9 = {0x00, 0x09, 0x00, 0x14};
    EXPECT_EQ(ipfix_message_length(v9, err), std::nullopt);
    EXPECT_THAT(err, HasSubstr("version 9"));
    std::vector<uint8_t> short_len = {0x00, 0x0a, 0x00, 0x0f};
    EXPECT_EQ(ipfix_message_length(short_len, err), std::nullopt);
    EXPECT_THAT(err, HasSubstr("length 15"));
    std::vector<uint8_t> v9_early = {0x00, 0x09};
    EXPECT_EQ(ipfix_message_length(v9_early, err), std::nullopt);
    EXPECT_THAT(err, HasSubstr("version 9"));
}

// A TCP-like stream: bytes arrive in pieces cut inside the length field; the
// receiver frames messages with ipfix_message_length and decodes each.
struct StreamReceiver {
    explicit StreamReceiver(IpfixDecoder& d) : dec(d) {}
    IpfixDecoder& dec;
    std::vector<uint8_t> buf;
    std::vector<std::string> errors;
    bool dead = false;

    void feed(std::span<const uint8_t> piece) {
        if (dead) return;
        buf.insert(buf.end(), piece.begin(), piece.end());
        std::string err;
        while (auto len = ipfix_message_length(buf, err)) {
            std::string problem = dec.decode_message(std::span(buf).first(*len));
            if (!problem.empty()) errors.push_back(problem);
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*len));
        }
        if (!err.empty()) {
            errors.push_back(err);
            dead = true;  // framing is lost: a TCP collector closes the connection
        }
    }
};

std::vector<uint8_t> flow_stream(int messages) {
    std::vector<uint8_t> s;
    for (int i = 0; i < messages; ++i) {
        MessageBuilder m(1, static_cast<uint32_t>(i));
        if (i == 0) m.template_set(256, kFlowFields);
        flow_data_set(m, 256, 100 + static_cast<uint64_t>(i));
        auto b = m.build();
        s.insert(s.end(), b.begin(), b.end());
    }
    return s;
}

// Feeds `stream` in pieces cut at byte 3 of every message (between the two
// length octets).
void feed_split_in_length_fields(StreamReceiver& rx, const std::vector<uint8_t>& stream,
                                 const std::vector<size_t>& starts) {
    size_t pos = 0;
    for (size_t start : starts) {
        size_t cut = start + 3;
        rx.feed(std::span(stream).subspan(pos, cut - pos));
        pos = cut;
    }
    rx.feed(std::span(stream).subspan(pos));
}

std::vector<size_t> message_starts(const std::vector<uint8_t>& stream) {
    std::vector<size_t> starts;
    for (size_t p = 0; p + 4 <= stream.size();) {
        starts.push_back(p);
        p += static_cast<size_t>(stream[p + 2] << 8 | stream[p + 3]);
    }
    return starts;
}

TEST_F(MalformedIpfix, StreamSplitInTheLengthFieldDecodesEveryMessage) {
    auto stream = flow_stream(3);
    StreamReceiver rx(dec);
    feed_split_in_length_fields(rx, stream, message_starts(stream));
    EXPECT_TRUE(rx.errors.empty()) << rx.errors[0];
    EXPECT_TRUE(rx.buf.empty());
    ASSERT_EQ(out.size(), 3u);
    for (size_t i = 0; i < 3; ++i) expect_flow(out[i], 256, 100 + i);
}

TEST_F(MalformedIpfix, StreamWithALengthFieldShorterThanTheMessage) {
    auto stream = flow_stream(3);
    auto starts = message_starts(stream);
    uint16_t real = static_cast<uint16_t>(starts[2] - starts[1]);
    put_u16(stream, starts[1] + 2, real - 8);  // message 2 claims 8 bytes less
    StreamReceiver rx(dec);
    feed_split_in_length_fields(rx, stream, starts);
    // Message 1 decodes; message 2 is cut inside its data set; the framer
    // then finds its last 8 bytes where a header should be and gives up.
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 256, 100);
    ASSERT_EQ(rx.errors.size(), 2u);
    EXPECT_THAT(rx.errors[0], HasSubstr("runs past the message end"));
    EXPECT_THAT(rx.errors[1], HasSubstr("not IPFIX"));
    EXPECT_TRUE(rx.dead);
}

TEST_F(MalformedIpfix, StreamWithALengthFieldLongerThanTheMessage) {
    auto stream = flow_stream(3);
    auto starts = message_starts(stream);
    uint16_t real = static_cast<uint16_t>(starts[2] - starts[1]);
    put_u16(stream, starts[1] + 2, real + 8);  // message 2 swallows 8 bytes of message 3
    StreamReceiver rx(dec);
    feed_split_in_length_fields(rx, stream, starts);
    ASSERT_EQ(out.size(), 2u);
    expect_flow(out[0], 256, 100);
    // Message 2's data set decodes before the framer's extra bytes (message
    // 3's header, read as a set with reserved id 10 and a length past the
    // end) break it; then the rest of message 3 cannot be framed.
    expect_flow(out[1], 256, 101);
    ASSERT_EQ(rx.errors.size(), 2u);
    EXPECT_THAT(rx.errors[0], HasSubstr("set 10 at offset"));
    EXPECT_THAT(rx.errors[1], HasSubstr("not IPFIX"));
}

// RFC 7011 section 3.4.1 lets a template repeat an element; every value
// is kept, in template order. (Mapping such a template crashed libfixbuf's
// fbTemplateAppend, found by fuzz_ipfix_decoder.)
TEST_F(MalformedIpfix, RepeatedElementsKeepEveryValue) {
    MessageBuilder m;
    m.template_set(256, {{58, 2}, {245, 2}, {58, 2}, {245, 2}, {58, 2}});
    m.begin_set(256).u16(1).u16(2).u16(3).u16(4).u16(5).end_set();
    ASSERT_EQ(decode(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].fields, nlohmann::ordered_json::parse(R"({"vlanId":[1,3,5],"dot1qCustomerVlanId":[2,4]})"));
}

}  // namespace

// A flood of templates cannot grow a session without bound: beyond
// max_templates a new template is refused (its message fails from that set
// on, counted); redefining a held one, or one after a withdrawal, is fine;
// other domains count against the same limit.
TEST_F(MalformedIpfix, TemplatesBeyondTheLimitAreRefusedAndCounted) {
    dec.set_max_templates(2);
    EXPECT_EQ(dec.decode_message(MessageBuilder().template_set(256, kFlowFields).template_set(257, kFlowFields).build()),
              "");
    EXPECT_EQ(dec.templates_held(), 2u);
    std::string problem = dec.decode_message(MessageBuilder().template_set(258, kFlowFields).build());
    EXPECT_NE(problem.find("template 258: this session already holds 2 templates"), std::string::npos) << problem;
    EXPECT_EQ(dec.template_limit_hits(), 1u);
    EXPECT_NE(dec.decode_message(MessageBuilder(9).template_set(256, kFlowFields).build()), "");  // domain 9
    EXPECT_EQ(dec.template_limit_hits(), 2u);
    // redefining a held template is not a new one
    EXPECT_EQ(dec.decode_message(MessageBuilder().template_set(257, kFlowFields).build()), "");
    // withdraw 256, then 258 fits
    auto withdraw = MessageBuilder().begin_set(2).u16(256).u16(0).end_set().build();
    EXPECT_EQ(dec.decode_message(withdraw), "");
    MessageBuilder m;
    m.template_set(258, kFlowFields);
    flow_data_set(m, 258, 5);
    EXPECT_EQ(dec.decode_message(m.build()), "");
    ASSERT_EQ(out.size(), 1u);
    expect_flow(out[0], 258, 5);
    EXPECT_EQ(dec.templates_held(), 2u);
    EXPECT_EQ(dec.template_limit_hits(), 2u);
}
