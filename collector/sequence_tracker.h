#pragma once

#include <cstdint>

namespace bpfix {

// What the sequence numbers of one observation domain of one transport
// session say (RFC 7011 section 3.1: a message's sequence number counts
// the data records sent in the domain before it).
struct SequenceCounts {
    uint64_t lost_records = 0;              // gaps the next message confirmed: records that never arrived
    uint64_t unknown_template_records = 0;  // records in data sets of a template the session did not have
    uint64_t out_of_order = 0;              // late messages (behind the expected number)
    uint64_t resets = 0;                    // the exporter's numbering started anew (it restarted)
    uint64_t implausible = 0;               // a jump no following message confirmed (a stray or spoofed message)
};

// Turns sequence numbers into the counts above without trusting any one
// message: a forward gap up to kPlausibleGap counts as loss at once; a
// larger jump, or a step backwards, is held until the next message says
// which numbering is real: it continues the jump (a big loss, or an
// exporter restart) or the old numbering (the odd message was late, or a
// stray). So one forged or corrupt datagram can add at most kPlausibleGap
// to the loss, never 2^31.
class SequenceTracker {
public:
    static constexpr uint32_t kPlausibleGap = 1u << 16;

    // A message that decoded: its sequence number, the data records decoded
    // from it, and whether it also held data sets of templates this
    // session does not have (their records are then told apart by the next
    // message's number, not counted as lost).
    void observe(uint32_t seq, uint32_t decoded, bool undecoded_data);
    const SequenceCounts& counts() const { return counts_; }

private:
    // The gap `gap` before a message that continues the expectation.
    void count_gap(uint32_t gap);

    SequenceCounts counts_;
    bool started_ = false;
    uint32_t next_ = 0;              // the number the next message should carry
    bool undecoded_before_ = false;  // the last accepted message held data we could not decode
    bool pending_ = false;           // an unexpected message waits for the next one to judge it
    uint32_t pending_next_ = 0;      // what follows it, if its numbering is the real one
    uint32_t pending_gap_ = 0;       // its forward distance from next_ (0: it went backwards)
    bool pending_undecoded_ = false;
};

}  // namespace bpfix
