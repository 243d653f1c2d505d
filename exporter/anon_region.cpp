#include "anon_region.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <utility>

namespace bpfix {

namespace {
// Huge pages from this size on (two of them); below, the last partly used
// huge page would cost more memory than the TLB saves.
constexpr size_t kHugeFrom = 4u << 20;

size_t page_round(size_t n) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (n + page - 1) / page * page;
}
}  // namespace

AnonRegion::~AnonRegion() {
    if (data_) munmap(data_, bytes_);
}

AnonRegion& AnonRegion::operator=(AnonRegion&& o) noexcept {
    if (this != &o) {
        if (data_) munmap(data_, bytes_);
        data_ = std::exchange(o.data_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}

void AnonRegion::resize(size_t bytes) {
    bytes = page_round(bytes);
    if (bytes <= bytes_) return;
    void* p = data_ ? mremap(data_, bytes_, bytes, MREMAP_MAYMOVE)
                    : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = p;
    bytes_ = bytes;
    // Advice only: a kernel without transparent huge pages says no.
    if (bytes_ >= kHugeFrom) (void)madvise(data_, bytes_, MADV_HUGEPAGE);
}

}  // namespace bpfix
