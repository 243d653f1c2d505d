#include <gtest/gtest.h>

#include "sequence_tracker.h"

namespace bpfix {
namespace {

// Messages of 10 records each, numbered as RFC 7011 says.
TEST(SequenceTracker, InOrderCountsNothing) {
    SequenceTracker t;
    for (uint32_t i = 0; i < 100; ++i) t.observe(i * 10, 10, false);
    const auto& c = t.counts();
    EXPECT_EQ(c.lost_records, 0u);
    EXPECT_EQ(c.out_of_order, 0u);
    EXPECT_EQ(c.resets, 0u);
    EXPECT_EQ(c.implausible, 0u);
}

TEST(SequenceTracker, SmallGapIsLossAtOnce) {
    SequenceTracker t;
    t.observe(0, 10, false);
    t.observe(30, 10, false);  // 20 records missing
    EXPECT_EQ(t.counts().lost_records, 20u);
    t.observe(40, 10, false);
    EXPECT_EQ(t.counts().lost_records, 20u);
}

TEST(SequenceTracker, OneForgedJumpAddsNoLoss) {
    SequenceTracker t;
    t.observe(1000, 10, false);
    t.observe(1000 + 10 + 0x7ffffff0u, 1, false);  // a stray far ahead
    t.observe(1010, 10, false);                    // the real numbering goes on
    t.observe(1020, 10, false);
    EXPECT_EQ(t.counts().lost_records, 0u);
    EXPECT_EQ(t.counts().implausible, 1u);
}

TEST(SequenceTracker, ConfirmedBigLossIsCounted) {
    SequenceTracker t;
    t.observe(0, 10, false);
    t.observe(10 + 2'000'000, 10, false);  // the collector was away
    EXPECT_EQ(t.counts().lost_records, 0u);  // not yet believed
    t.observe(10 + 2'000'000 + 10, 10, false);
    EXPECT_EQ(t.counts().lost_records, 2'000'000u);
    EXPECT_EQ(t.counts().implausible, 0u);
}

TEST(SequenceTracker, LateMessageIsOutOfOrderNotLoss) {
    SequenceTracker t;
    t.observe(0, 10, false);
    t.observe(20, 10, false);  // 10..19 late: counted lost for now
    t.observe(10, 10, false);  // here it is
    t.observe(30, 10, false);
    t.observe(40, 10, false);
    EXPECT_EQ(t.counts().out_of_order, 1u);
    EXPECT_EQ(t.counts().lost_records, 10u);  // a counter never goes back
    EXPECT_EQ(t.counts().resets, 0u);
}

TEST(SequenceTracker, ExporterRestartIsAReset) {
    SequenceTracker t;
    t.observe(500'000, 10, false);
    t.observe(0, 10, false);
    t.observe(10, 10, false);
    EXPECT_EQ(t.counts().resets, 1u);
    EXPECT_EQ(t.counts().out_of_order, 0u);
    EXPECT_EQ(t.counts().lost_records, 0u);
}

TEST(SequenceTracker, UnknownTemplateDataIsNotLoss) {
    SequenceTracker t;
    t.observe(0, 10, false);
    t.observe(10, 0, true);    // 7 records of a template we lack
    t.observe(17, 10, false);  // the next number tells how many
    t.observe(27, 10, false);
    EXPECT_EQ(t.counts().unknown_template_records, 7u);
    EXPECT_EQ(t.counts().lost_records, 0u);
}

TEST(SequenceTracker, WrapsAroundTwoToThe32) {
    SequenceTracker t;
    t.observe(0xfffffffbu, 10, false);
    t.observe(5, 10, false);
    t.observe(17, 10, false);
    EXPECT_EQ(t.counts().lost_records, 2u);
    EXPECT_EQ(t.counts().out_of_order, 0u);
}

}  // namespace
}  // namespace bpfix
