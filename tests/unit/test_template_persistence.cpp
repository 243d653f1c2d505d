// A UDP session keeps its templates in a file (.templates/): a write the
// disk refuses is tried again, at most every 10 s, until it succeeds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "ipfix_builder.h"
#include "exporter_counters.h"
#include "info_model.h"
#include "session.h"
#include "template_store.h"

using namespace bpfix;
using bpfix::test::MessageBuilder;

TEST(TemplatePersistence, RefusedWriteIsRetried) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("bpfix-tpl-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / "exporter.tpl").string();
    fs::create_directory(path + ".tmp");  // the write's temporary name cannot be opened

    InfoModel model;
    CounterTable counters(16);
    SessionCounters shared;
    ExporterSession s(model, "192.0.2.1", "192.0.2.1:5000", [](std::string, uint64_t) {}, counters, shared);
    EXPECT_EQ(s.persist_templates(path), 0u);
    const auto t0 = std::chrono::steady_clock::now();
    auto templates = MessageBuilder(1, 0).template_set(300, {{8, 4}, {12, 4}}).build();
    auto data = MessageBuilder(1, 0).begin_set(300).u32(0x0a000001).u32(0x0a000002).end_set().build();

    EXPECT_EQ(s.message(templates, t0), "");
    EXPECT_FALSE(fs::exists(path));
    fs::remove(path + ".tmp");  // the disk takes writes again
    EXPECT_EQ(s.message(data, t0 + std::chrono::seconds(5)), "");
    EXPECT_FALSE(fs::exists(path)) << "tried again before 10 s";
    EXPECT_EQ(s.message(data, t0 + std::chrono::seconds(11)), "");
    ASSERT_TRUE(fs::exists(path)) << "not tried again after 10 s";
    EXPECT_EQ(TemplateStore::load(path).size(), 1u);
    fs::remove_all(dir);
}
