#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flow_key_index.h"

using namespace bpfix;

namespace {

struct U32Hash {
    size_t operator()(uint32_t k) const { return k * 0x9E3779B97F4A7C15ULL; }
};
struct U32Equal {
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
};
struct Value {
    uint64_t n = 0;
    std::string name;  // not trivially constructible: nodes must be made before use
};
using Table = KeyedNodes<uint32_t, Value, U32Hash, U32Equal>;

}  // namespace

TEST(KeyedNodes, ValuesAndReferencesStayPutAcrossChunksAsTheTableGrows) {
    // Past chunk 0 (1024 nodes) and several doubling chunks: each node keeps
    // its value and its address while later ones are made.
    Table t;
    constexpr uint32_t kCount = 20'000;
    std::vector<const Value*> where;
    for (uint32_t k = 0; k < kCount; ++k) {
        const uint32_t i = t.insert(k);
        Value& v = t.value(i);
        EXPECT_EQ(v.n, 0u);
        EXPECT_TRUE(v.name.empty());
        v.n = k * 3;
        v.name = "name-long-enough-for-the-heap-" + std::to_string(k);
        where.push_back(&v);
    }
    ASSERT_EQ(t.size(), kCount);
    for (uint32_t k = 0; k < kCount; ++k) {
        const uint32_t i = t.find(k);
        ASSERT_NE(i, Table::kNone) << k;
        EXPECT_EQ(&t.value(i), where[k]) << k;
        EXPECT_EQ(t.value(i).n, k * 3);
        EXPECT_EQ(t.value(i).name, "name-long-enough-for-the-heap-" + std::to_string(k));
        EXPECT_EQ(t.key(i), k);
    }
    EXPECT_EQ(t.find(kCount), Table::kNone);
}

TEST(KeyedNodes, AnErasedNodeIsReusedWithAFreshValueAndTheOrderHolds) {
    Table t;
    for (uint32_t k = 0; k < 3000; ++k) t.value(t.insert(k, true)).n = k + 1;
    // Erase every other key, then add new ones: they take the freed nodes,
    // value-initialised, and go last in the order.
    for (uint32_t k = 0; k < 3000; k += 2) t.erase(t.find(k));
    EXPECT_EQ(t.size(), 1500u);
    for (uint32_t k = 10'000; k < 10'100; ++k) {
        const uint32_t i = t.insert(k, true);
        EXPECT_EQ(t.value(i).n, 0u);
        t.value(i).n = k;
    }
    std::vector<uint32_t> order;
    for (uint32_t i = t.front(); i != Table::kNone; i = t.next(i)) order.push_back(t.key(i));
    ASSERT_EQ(order.size(), 1600u);
    for (size_t j = 0; j < 1500; ++j) EXPECT_EQ(order[j], 2 * j + 1);
    for (size_t j = 0; j < 100; ++j) EXPECT_EQ(order[1500 + j], 10'000 + j);
    for (uint32_t k = 1; k < 3000; k += 2) EXPECT_EQ(t.value(t.find(k)).n, k + 1);
}
