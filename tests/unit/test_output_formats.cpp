// The collector's record formats besides JSONL: zstd-compressed files, csv
// (one header naming every column, a new file when columns are added),
// sqlite (one table, a column per element, typed values).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <zstd.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "error.h"
#include "line_formats.h"
#include "output.h"

using namespace bpfix;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/bpfix-formats-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    std::vector<std::string> names() const {
        std::set<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.insert(e.path().filename().string());
        return {out.begin(), out.end()};
    }
    std::string read(const std::string& name) const {
        std::ifstream in(path + "/" + name, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
};

RotatingWriter::Options opts(const std::string& dir, const std::string& ext, int zstd = 0) {
    RotatingWriter::Options o;
    o.dir = dir;
    o.extension = ext;
    o.interval_s = 300;
    o.zstd_level = zstd;
    return o;
}

constexpr int64_t kT = 1704164645;  // 2024-01-02T03:04:05Z

const std::string kRec1 =
    R"({"sourceIPv4Address":"10.0.0.1","packetDeltaCount":3,"exporter":"127.0.0.1","observationDomainId":1,"templateId":256})"
    "\n";
const std::string kRec2 =
    R"({"sourceIPv4Address":"10.0.0.2","packetDeltaCount":18446744073709551615,"exporter":"127.0.0.1","observationDomainId":1,"templateId":256})"
    "\n";
// A new element, a text with a comma and a quote, a repeated element.
const std::string kRec3 =
    R"({"sourceIPv4Address":"10.0.0.3","dnsQueryName":"a,\"b\".example","mplsLabelStackSection":[1,2],"exporter":"::1","observationDomainId":7,"templateId":300})"
    "\n";

std::string unzstd(const std::string& z) {
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    std::string out;
    char buf[4096];
    ZSTD_inBuffer in{z.data(), z.size(), 0};
    while (in.pos < in.size) {
        ZSTD_outBuffer o{buf, sizeof buf, 0};
        size_t r = ZSTD_decompressStream(dctx, &o, &in);
        if (ZSTD_isError(r)) {
            ADD_FAILURE() << ZSTD_getErrorName(r);
            break;
        }
        out.append(buf, o.pos);
    }
    ZSTD_freeDCtx(dctx);
    return out;
}

}  // namespace

TEST(Zstd, EveryWriteIsAFrameAndTheFileDecompressesToWhatWasWritten) {
    TempDir d;
    {
        RotatingWriter w(opts(d.path, "jsonl", 3));
        w.write(kRec1, kT);
        w.write(kRec2, kT + 1);
        EXPECT_EQ(d.names(), std::vector<std::string>{"flows-20240102T030000Z.jsonl.zst.partial"});
        // readable already: each write is a whole frame
        EXPECT_EQ(unzstd(d.read("flows-20240102T030000Z.jsonl.zst.partial")), kRec1 + kRec2);
    }
    ASSERT_EQ(d.names(), std::vector<std::string>{"flows-20240102T030000Z.jsonl.zst"});
    std::string z = d.read("flows-20240102T030000Z.jsonl.zst");
    EXPECT_LT(z.size(), (kRec1 + kRec2).size() + 40);
    EXPECT_EQ(unzstd(z), kRec1 + kRec2);
}

TEST(Zstd, LevelOutOfRangeIsRefused) {
    TempDir d;
    EXPECT_THROW(RotatingWriter(opts(d.path, "jsonl", 25)), Error);
}

TEST(Csv, HeaderNamesEveryColumnAndANewElementStartsANewFile) {
    TempDir d;
    {
        OutputQueue q(opts(d.path, "csv"), 1 << 20, make_line_format("csv"));
        EXPECT_TRUE(q.push(kRec1 + kRec2, 2));
        q.stop();
        EXPECT_EQ(q.records_written(), 2u);
    }
    {
        // a second run in the same interval: a new part; the wider record
        // finishes the file under the narrow header and starts another
        OutputQueue q(opts(d.path, "csv"), 1 << 20, make_line_format("csv"));
        EXPECT_TRUE(q.push(kRec1, 1));
        EXPECT_TRUE(q.push(kRec3 + kRec2, 2));
        q.stop();
        EXPECT_EQ(q.records_written(), 3u);
        EXPECT_EQ(q.records_dropped(), 0u);
    }
    // file names follow the wall clock: compare the contents
    std::multiset<std::string> files;
    for (const auto& n : d.names()) {
        EXPECT_EQ(n.find(".partial"), std::string::npos) << n;
        EXPECT_EQ(n.substr(n.size() - 4), ".csv") << n;
        files.insert(d.read(n));
    }
    std::string narrow = "exporter,observationDomainId,templateId,sourceIPv4Address,packetDeltaCount\r\n";
    std::string wide = "exporter,observationDomainId,templateId,sourceIPv4Address,packetDeltaCount,dnsQueryName,"
                       "mplsLabelStackSection\r\n";
    std::string row1 = "127.0.0.1,1,256,10.0.0.1,3\r\n";
    EXPECT_EQ(files, (std::multiset<std::string>{
                         narrow + row1 + "127.0.0.1,1,256,10.0.0.2,18446744073709551615\r\n",
                         narrow + row1,
                         wide + "::1,7,300,10.0.0.3,,\"a,\"\"b\"\".example\",\"[1,2]\"\r\n" +
                             "127.0.0.1,1,256,10.0.0.2,18446744073709551615,,\r\n",
                     }));
}

TEST(Csv, CompressedWithZstd) {
    TempDir d;
    {
        OutputQueue q(opts(d.path, "csv", 5), 1 << 20, make_line_format("csv"));
        EXPECT_TRUE(q.push(kRec1, 1));
        q.stop();
    }
    auto names = d.names();
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names[0].substr(names[0].size() - 8), ".csv.zst");
    EXPECT_EQ(unzstd(d.read(names[0])),
              "exporter,observationDomainId,templateId,sourceIPv4Address,packetDeltaCount\r\n"
              "127.0.0.1,1,256,10.0.0.1,3\r\n");
}

namespace {

// Rows of `sql` on the database `path`, each cell as typeof:value.
std::vector<std::string> query(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::vector<std::string> rows;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
        ADD_FAILURE() << sqlite3_errmsg(db);
        sqlite3_close(db);
        return rows;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        std::string row;
        for (int i = 0; i < sqlite3_column_count(st); ++i) {
            if (i) row += '|';
            const char* types[] = {"", "int", "real", "text", "blob", "null"};
            row += types[sqlite3_column_type(st, i)];
            row += ':';
            const unsigned char* t = sqlite3_column_text(st, i);
            if (t) row += reinterpret_cast<const char*>(t);
        }
        rows.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
}

}  // namespace

TEST(Sqlite, OneTableAColumnPerElementTypedValuesNullWhereMissing) {
    TempDir d;
    {
        OutputQueue q(opts(d.path, "sqlite"), 1 << 20, make_line_format("sqlite"));
        EXPECT_TRUE(q.push(kRec1 + kRec2, 2));
        EXPECT_TRUE(q.push(kRec3, 1));
        q.stop();
        EXPECT_EQ(q.records_written(), 3u);
        EXPECT_EQ(q.records_dropped(), 0u);
        EXPECT_EQ(q.files_finished(), 1u);
    }
    auto names = d.names();
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names[0].substr(names[0].size() - 7), ".sqlite");
    std::string db = d.path + "/" + names[0];
    EXPECT_EQ(query(db, "SELECT exporter, observationDomainId, templateId, sourceIPv4Address, packetDeltaCount, "
                        "dnsQueryName, mplsLabelStackSection FROM flows ORDER BY rowid"),
              (std::vector<std::string>{
                  "text:127.0.0.1|int:1|int:256|text:10.0.0.1|int:3|null:|null:",
                  // beyond SQLite's signed 64-bit integers: exact, as text
                  "text:127.0.0.1|int:1|int:256|text:10.0.0.2|text:18446744073709551615|null:|null:",
                  "text:::1|int:7|int:300|text:10.0.0.3|null:|text:a,\"b\".example|text:[1,2]",
              }));
    EXPECT_EQ(query(db, "SELECT sum(packetDeltaCount) FROM flows WHERE typeof(packetDeltaCount) = 'integer'"),
              std::vector<std::string>{"int:3"});
}

TEST(Sqlite, EachFileIsItsOwnDatabase) {
    TempDir d;
    {
        OutputQueue q(opts(d.path, "sqlite"), 1 << 20, make_line_format("sqlite"));
        EXPECT_TRUE(q.push(kRec1, 1));
        q.rotate_now();
        // wait for the rotation to happen before the next record
        for (int i = 0; i < 200 && q.files_finished() == 0; ++i) usleep(10000);
        EXPECT_TRUE(q.push(kRec3, 1));
        q.stop();
        EXPECT_EQ(q.files_finished(), 2u);
    }
    auto names = d.names();
    ASSERT_EQ(names.size(), 2u);
    std::multiset<std::string> rows;
    for (const auto& n : names) {
        for (const auto& r : query(d.path + "/" + n, "SELECT count(*), min(sourceIPv4Address) FROM flows")) {
            rows.insert(r);
        }
    }
    EXPECT_EQ(rows, (std::multiset<std::string>{"int:1|text:10.0.0.1", "int:1|text:10.0.0.3"}));
}

TEST(LineFormats, UnknownNameIsAnError) { EXPECT_THROW(make_line_format("parquet"), Error); }
