// The collector's rotated output files: names, clock-aligned intervals,
// size rotation, never reusing a name, .partial until finished, retention.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "error.h"
#include "output.h"

using namespace bpfix;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/bpfix-writer-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    std::set<std::string> names() const {
        std::set<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.insert(e.path().filename().string());
        return out;
    }
    std::string read(const std::string& name) const {
        std::ifstream in(path + "/" + name);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
};

RotatingWriter::Options opts(const std::string& dir, const std::string& prefix, const std::string& ext,
                             uint64_t interval, uint64_t max_bytes, uint64_t keep_s = 0, uint64_t keep_b = 0) {
    RotatingWriter::Options o;
    o.dir = dir;
    o.prefix = prefix;
    o.extension = ext;
    o.interval_s = interval;
    o.max_bytes = max_bytes;
    o.keep_seconds = keep_s;
    o.keep_bytes = keep_b;
    return o;
}

// 2024-01-02T03:04:05Z
constexpr int64_t kT = 1704164645;

}  // namespace

TEST(RotatingWriter, NamesFilesAfterTheAlignedIntervalAndRenamesWhenDone) {
    TempDir d;
    RotatingWriter w(opts(d.path, "flows", "jsonl", 300, 0));
    w.write("a\n", kT);
    // 03:04:05 falls in the 03:00:00 interval; being written: .partial only
    EXPECT_EQ(d.names(), (std::set<std::string>{"flows-20240102T030000Z.jsonl.partial"}));
    w.write("b\n", kT + 50);  // 03:04:55: same interval
    w.write("c\n", kT + 300);  // 03:09:05: the 03:05:00 interval
    EXPECT_EQ(d.names(), (std::set<std::string>{"flows-20240102T030000Z.jsonl",
                                                "flows-20240102T030500Z.jsonl.partial"}));
    EXPECT_EQ(d.read("flows-20240102T030000Z.jsonl"), "a\nb\n");
    w.tick(kT + 600);  // the interval ends without data: finished anyway
    EXPECT_EQ(d.names(), (std::set<std::string>{"flows-20240102T030000Z.jsonl", "flows-20240102T030500Z.jsonl"}));
    EXPECT_EQ(w.files_finished(), 2u);
}

TEST(RotatingWriter, SizeLimitStartsNumberedFilesAndNamesAreNeverReused) {
    TempDir d;
    {
        RotatingWriter w(opts(d.path, "flows", "jsonl", 300, 10));
        w.write("123456\n", kT);
        w.write("123456\n", kT);  // would pass 10 bytes: a new part
        w.write("123456\n", kT);
    }
    EXPECT_EQ(d.names(), (std::set<std::string>{"flows-20240102T030000Z.jsonl", "flows-20240102T030000Z-1.jsonl",
                                                "flows-20240102T030000Z-2.jsonl"}));
    // A restart within the same interval continues the numbering.
    RotatingWriter again(opts(d.path, "flows", "jsonl", 300, 0));
    again.write("x\n", kT + 1);
    again.close();
    EXPECT_TRUE(d.names().count("flows-20240102T030000Z-3.jsonl"));
    EXPECT_EQ(d.read("flows-20240102T030000Z.jsonl"), "123456\n");
}

TEST(RotatingWriter, RetentionRemovesTheOldestFinishedFilesFirst) {
    TempDir d;
    {
        RotatingWriter w(opts(d.path, "flows", "jsonl", 60, 0));
        for (int i = 0; i < 4; ++i) w.write("0123456789\n", kT + 60 * i);  // four files of 11 bytes
    }
    // Make their ages distinct and known: oldest first.
    int i = 0;
    for (const auto& n : d.names()) {
        struct utimbuf t{kT + i, kT + i};
        utime((d.path + "/" + n).c_str(), &t);
        ++i;
    }
    std::ofstream(d.path + "/notes.txt") << "not ours";
    RotatingWriter sized(opts(d.path, "flows", "jsonl", 60, 0, 0, 25));
    EXPECT_EQ(sized.enforce_retention(kT + 10), 2u);  // 44 bytes -> 22 <= 25
    EXPECT_EQ(d.names(), (std::set<std::string>{"flows-20240102T030600Z.jsonl", "flows-20240102T030700Z.jsonl",
                                                "notes.txt"}));
    RotatingWriter aged(opts(d.path, "flows", "jsonl", 60, 0, 5, 0));
    EXPECT_EQ(aged.enforce_retention(kT + 8), 1u);  // ages 6 and 5 s: only the first is over 5
    EXPECT_TRUE(d.names().count("notes.txt"));
}

TEST(RotatingWriter, MissingOrReadOnlyDirectoryIsAClearError) {
    try {
        RotatingWriter w(opts("/nonexistent/bpfix", "flows", "jsonl", 300, 0));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/bpfix does not exist"), std::string::npos) << e.what();
    }
}

TEST(OutputQueue, WritesEverythingQueuedBeforeStopAndCountsWhatDoesNotFit) {
    TempDir d;
    uint64_t dropped;
    {
        OutputQueue q(opts(d.path, "flows", "jsonl", 300, 0), 64);
        EXPECT_TRUE(q.push("{\"a\":1}\n{\"a\":2}\n", 2));
        EXPECT_FALSE(q.push(std::string(100, 'x') + "\n", 1));  // larger than the whole queue
        q.stop();
        EXPECT_EQ(q.records_written(), 2u);
        dropped = q.records_dropped();
    }
    EXPECT_EQ(dropped, 1u);
    auto names = d.names();
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names.begin()->find(".partial"), std::string::npos);
    EXPECT_EQ(d.read(*names.begin()), "{\"a\":1}\n{\"a\":2}\n");
}

TEST(OutputQueue, ReloadedLimitsApplyFromTheNextFile) {
    TempDir d;
    {
        OutputQueue q(opts(d.path, "flows", "jsonl", 86400, 0), 1 << 20);
        EXPECT_TRUE(q.push("{\"before\":1}\n{\"before\":2}\n{\"before\":3}\n", 3));
        // A reload: a 30-byte size limit from the next file on.
        q.rotate_now(RotationLimits{86400, 30, 0, 0});
        for (int i = 0; i < 50 && d.names().size() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        for (int i = 0; i < 4; ++i) {
            EXPECT_TRUE(q.push("{\"after\":" + std::to_string(i) + "}\n", 1));
            std::this_thread::sleep_for(std::chrono::milliseconds(150));  // one batch each
        }
        q.stop();
        EXPECT_EQ(q.records_written(), 7u);
    }
    // The first file holds what came before the reload, whole (42 bytes: the
    // new 30-byte limit did not cut it); after it, every file holds at most
    // 30 bytes: two 12-byte records each.
    std::set<std::string> contents;
    for (const auto& n : d.names()) contents.insert(d.read(n));
    EXPECT_EQ(contents, (std::set<std::string>{"{\"before\":1}\n{\"before\":2}\n{\"before\":3}\n",
                                               "{\"after\":0}\n{\"after\":1}\n", "{\"after\":2}\n{\"after\":3}\n"}))
        << ::testing::PrintToString(d.names());
}
