#include "sequence_tracker.h"

namespace bpfix {

void SequenceTracker::count_gap(uint32_t gap) {
    if (undecoded_before_) {
        counts_.unknown_template_records += gap;
    } else {
        counts_.lost_records += gap;
    }
}

void SequenceTracker::observe(uint32_t seq, uint32_t decoded, bool undecoded_data) {
    if (!started_) {
        started_ = true;
        next_ = seq + decoded;
        undecoded_before_ = undecoded_data;
        return;
    }
    if (pending_) {
        pending_ = false;
        // The old numbering wins when this message fits both (a message
        // a little late).
        uint32_t after = seq - pending_next_;
        if (seq - next_ >= kPlausibleGap && after < kPlausibleGap) {
            // This message follows the held one: its numbering is the real one.
            if (pending_gap_) {
                count_gap(pending_gap_);
            } else {
                ++counts_.resets;
            }
            undecoded_before_ = pending_undecoded_;
            count_gap(after);
            next_ = seq + decoded;
            undecoded_before_ = undecoded_data;
            return;
        }
        // It did not: the held message was late, or a stray.
        if (pending_gap_) {
            ++counts_.implausible;
        } else {
            ++counts_.out_of_order;
        }
    }
    uint32_t gap = seq - next_;
    if (gap < kPlausibleGap) {
        count_gap(gap);
        next_ = seq + decoded;
        undecoded_before_ = undecoded_data;
        return;
    }
    pending_ = true;
    pending_next_ = seq + decoded;
    pending_gap_ = gap < 0x80000000u ? gap : 0;
    pending_undecoded_ = undecoded_data;
}

}  // namespace bpfix
