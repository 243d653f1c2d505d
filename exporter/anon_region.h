// Anonymous memory for large tables of plain data (the pcap-mode flow
// table): grows with mremap (pages move, nothing is copied, no moment with
// old and new copies both resident), starts zeroed, and asks for huge pages
// once it is large enough for them to pay (fewer page faults and TLB
// misses; a small table stays in small pages so live mode's RSS stays low).
#pragma once

#include <cstddef>

namespace bpfix {

class AnonRegion {
public:
    AnonRegion() = default;
    ~AnonRegion();
    AnonRegion(const AnonRegion&) = delete;
    AnonRegion& operator=(const AnonRegion&) = delete;
    AnonRegion(AnonRegion&& o) noexcept : data_(o.data_), bytes_(o.bytes_) { o.data_ = nullptr, o.bytes_ = 0; }
    AnonRegion& operator=(AnonRegion&& o) noexcept;

    // Grows (or first maps) to at least `bytes`, keeping the contents; the
    // new part reads as zeros. Throws std::bad_alloc when the kernel refuses.
    void resize(size_t bytes);
    void* data() const { return data_; }
    size_t bytes() const { return bytes_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace bpfix
