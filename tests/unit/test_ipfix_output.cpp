// The collector's ipfix output: messages of several sessions in one file,
// template ids renumbered per file, every file decodable on its own,
// "withdraw all" of one session leaving the others' templates alone.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "info_model.h"
#include "ipfix_builder.h"
#include "ipfix_decoder.h"
#include "ipfix_output.h"

using namespace bpfix;
using bpfix::test::MessageBuilder;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/bpfix-ipfixout-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    std::vector<std::string> files() const {
        std::set<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.insert(e.path().string());
        return {out.begin(), out.end()};
    }
};

// Template 256 of session A: ingressInterface (10, 4 bytes). Of session B,
// the same id with another layout: egressInterface (14, 4) and
// packetDeltaCount (2, 8).
std::vector<uint8_t> a_template_and_data(uint32_t value) {
    MessageBuilder m;
    m.template_set(256, {{10, 4}});
    m.begin_set(256).u32(value).end_set();
    return m.build();
}
std::vector<uint8_t> a_data(uint32_t value, uint32_t seq) {
    MessageBuilder m(1, seq);
    m.begin_set(256).u32(value).end_set();
    return m.build();
}
std::vector<uint8_t> b_template_and_data(uint32_t value) {
    MessageBuilder m;
    m.template_set(256, {{14, 4}, {2, 8}});
    m.begin_set(256).u32(value).u64(1).end_set();
    return m.build();
}
std::vector<uint8_t> b_data(uint32_t value, uint32_t seq) {
    MessageBuilder m(1, seq);
    m.begin_set(256).u32(value).u64(1).end_set();
    return m.build();
}

// Every file decoded on its own: "key=value" of each record.
std::vector<std::multiset<std::string>> decode_files(const TempDir& d) {
    std::vector<std::multiset<std::string>> out;
    for (const auto& f : d.files()) {
        std::multiset<std::string> recs;
        InfoModel model;
        IpfixDecoder dec(model, [&](const DecodedRecord& r) {
            for (const auto& [k, v] : r.fields.items()) {
                if (k != "packetDeltaCount") recs.insert(k + "=" + v.dump());
            }
        });
        read_ipfix_file(f, dec);
        EXPECT_EQ(dec.malformed(), 0u) << f;
        out.push_back(recs);
    }
    return out;
}

RotatingWriter::Options opts(const std::string& dir) {
    RotatingWriter::Options o;
    o.dir = dir;
    o.extension = "ipfix";
    o.interval_s = 3600;
    return o;
}

}  // namespace

TEST(IpfixOutput, SameTemplateIdOfTwoSessionsIsRenumberedAndEachFileStandsAlone) {
    TempDir d;
    IpfixOutput out(opts(d.path), 1 << 20);
    EXPECT_TRUE(out.push(1, a_template_and_data(11), 1));
    EXPECT_TRUE(out.push(2, b_template_and_data(21), 1));
    EXPECT_TRUE(out.push(1, a_data(12, 1), 1));
    out.rotate_now();
    for (int i = 0; i < 200 && out.files_finished() == 0; ++i) usleep(10000);
    // the next file must carry both templates again, before the data
    EXPECT_TRUE(out.push(2, b_data(22, 1), 1));
    EXPECT_TRUE(out.push(1, a_data(13, 2), 1));
    out.stop();
    ASSERT_EQ(out.files_finished(), 2u);
    auto files = decode_files(d);
    std::multiset<std::multiset<std::string>> got(files.begin(), files.end());
    EXPECT_EQ(got, (std::multiset<std::multiset<std::string>>{
                       {"ingressInterface=11", "egressInterface=21", "ingressInterface=12"},
                       {"egressInterface=22", "ingressInterface=13"},
                   }));
}

TEST(IpfixOutput, WithdrawAllOfOneSessionLeavesTheOthersTemplates) {
    TempDir d;
    IpfixOutput out(opts(d.path), 1 << 20);
    EXPECT_TRUE(out.push(1, a_template_and_data(11), 1));
    EXPECT_TRUE(out.push(2, b_template_and_data(21), 1));
    MessageBuilder w(1, 1);
    w.begin_set(2).u16(2).u16(0).end_set();  // session A withdraws all its templates
    EXPECT_TRUE(out.push(1, w.build(), 0));
    // A's data without a template is not written (the collector would not
    // have decoded it either); B's still decodes with its own template.
    EXPECT_TRUE(out.push(1, a_data(12, 1), 0));
    EXPECT_TRUE(out.push(2, b_data(22, 1), 1));
    // A redefines 256 with B's layout: a new file id, decoded as such.
    MessageBuilder r(1, 1);
    r.template_set(256, {{14, 4}, {2, 8}});
    r.begin_set(256).u32(31).u64(1).end_set();
    EXPECT_TRUE(out.push(1, r.build(), 1));
    EXPECT_TRUE(out.push(2, b_data(23, 2), 1));
    out.stop();
    auto files = decode_files(d);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0], (std::multiset<std::string>{"ingressInterface=11", "egressInterface=21", "egressInterface=22",
                                                    "egressInterface=31", "egressInterface=23"}));
}
