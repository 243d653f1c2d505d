#include "pcap_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.h"

namespace bpfix {

namespace {

constexpr uint32_t kMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kMagicNano = 0xa1b23c4d;
constexpr size_t kFileHeader = 24;
constexpr size_t kRecordHeader = 16;
constexpr uint32_t kMaxCaplen = 262144;  // libpcap's largest snapshot length

uint32_t load32(const uint8_t* p, bool swapped) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

// pcap files store LINKTYPE_* values; the few we read equal libpcap's DLT_*
// except raw IP, which both spellings accept (packet_parser.h).
int linktype_from_header(uint32_t v) { return static_cast<int>(v & 0x03ffffff); }

std::string link_type_error(const std::string& path, int dlt) {
    const char* name = pcap_datalink_val_to_name(dlt);
    return fmt::format("pcap file {} has link type {} ({}), which bpfix does not meter; supported: Ethernet, raw IP, "
                       "Linux cooked (SLL, SLL2)",
                       path, dlt, name ? name : "unknown");
}

}  // namespace

PcapSource::PcapSource(const std::string& path) : path_(path) {
    if (!open_mapped()) {
        open_libpcap();
    }
    if (!link_type_supported(dlt_)) {
        throw Error(link_type_error(path, dlt_));
    }
}

PcapSource::~PcapSource() {
    if (map_) munmap(const_cast<uint8_t*>(map_), map_size_);
    if (pcap_) pcap_close(pcap_);
}

bool PcapSource::open_mapped() {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw Error(fmt::format("cannot open pcap file {}: {}", path_, std::strerror(errno)));
    }
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) < kFileHeader) {
        ::close(fd);
        return false;  // not a regular file, or too short: libpcap says why
    }
    uint8_t hdr[kFileHeader];
    if (pread(fd, hdr, sizeof hdr, 0) != static_cast<ssize_t>(sizeof hdr)) {
        ::close(fd);
        return false;
    }
    uint32_t magic;
    memcpy(&magic, hdr, 4);
    if (magic == kMagicMicro || magic == kMagicNano) {
        swapped_ = false;
    } else if (__builtin_bswap32(magic) == kMagicMicro || __builtin_bswap32(magic) == kMagicNano) {
        swapped_ = true;
    } else {
        ::close(fd);
        return false;  // pcapng or not a capture at all: libpcap decides
    }
    nanosecond_ = (swapped_ ? __builtin_bswap32(magic) : magic) == kMagicNano;
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED) {
        return false;
    }
    madvise(m, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
    map_ = static_cast<const uint8_t*>(m);
    map_size_ = static_cast<size_t>(st.st_size);
    pos_ = kFileHeader;
    dlt_ = linktype_from_header(load32(hdr + 20, swapped_));
    return true;
}

void PcapSource::open_libpcap() {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    FILE* fp = std::fopen(path_.c_str(), "rb");
    if (!fp) {
        throw Error(fmt::format("cannot open pcap file {}: {}", path_, std::strerror(errno)));
    }
    // A large stdio buffer: libpcap's default makes one read() per 4 KiB.
    io_buffer_.resize(1 << 20);
    std::setvbuf(fp, io_buffer_.data(), _IOFBF, io_buffer_.size());
    pcap_ = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!pcap_) {
        std::fclose(fp);
        throw Error(fmt::format("cannot read pcap file {}: {}; give a pcap or pcapng capture file", path_, errbuf));
    }
    dlt_ = pcap_datalink(pcap_);
}

void PcapSource::stop_truncated(FlowMeter& meter, const std::string& why) {
    spdlog::warn("pcap file {}: {}; stopping there (the cut record is counted as malformed)", path_, why);
    truncated_ = true;
    done_ = true;
    meter.count_unreadable();
}

bool PcapSource::read_batch(FlowMeter& meter, size_t max_frames) {
    if (done_) return false;
    return map_ ? read_mapped(meter, max_frames) : read_libpcap(meter, max_frames);
}

bool PcapSource::read_mapped(FlowMeter& meter, size_t max_frames) {
    for (size_t i = 0; i < max_frames; ++i) {
        if (pos_ == map_size_) {
            done_ = true;
            return false;
        }
        if (map_size_ - pos_ < kRecordHeader) {
            stop_truncated(meter, fmt::format("truncated record header at offset {}", pos_));
            return false;
        }
        const uint8_t* h = map_ + pos_;
        uint64_t sec = load32(h, swapped_);
        uint64_t frac = load32(h + 4, swapped_);
        uint32_t caplen = load32(h + 8, swapped_);
        uint32_t wirelen = load32(h + 12, swapped_);
        if (caplen > kMaxCaplen) {
            stop_truncated(meter, fmt::format("record at offset {} claims {} captured bytes (more than {}): the file "
                                              "is damaged",
                                              pos_, caplen, kMaxCaplen));
            return false;
        }
        if (map_size_ - pos_ - kRecordHeader < caplen) {
            stop_truncated(meter, fmt::format("truncated dump file: record at offset {} needs {} bytes, {} remain",
                                              pos_, caplen, map_size_ - pos_ - kRecordHeader));
            return false;
        }
        uint64_t ts = sec * 1'000'000'000ULL + (nanosecond_ ? frac : frac * 1000);
        look_ahead(meter);
        meter.packet(h + kRecordHeader, caplen, wirelen, dlt_, ts);
        pos_ += kRecordHeader + caplen;
        if (ahead_count_) --ahead_count_;
    }
    release_mapped();
    return true;
}

void PcapSource::look_ahead(FlowMeter& meter) {
    // Keeps the meter hinted kLookahead records ahead, so the flow table's
    // cache misses for a packet overlap the work on the ones before it (at a
    // million flows they were half the time). Stops at anything odd; the
    // reader itself reports it when it gets there.
    constexpr size_t kLookahead = 16;
    if (ahead_pos_ < pos_) ahead_pos_ = pos_, ahead_count_ = 0;
    while (ahead_count_ < kLookahead && map_size_ - ahead_pos_ >= kRecordHeader) {
        const uint8_t* h = map_ + ahead_pos_;
        uint32_t caplen = load32(h + 8, swapped_);
        uint32_t wirelen = load32(h + 12, swapped_);
        if (caplen > kMaxCaplen || map_size_ - ahead_pos_ - kRecordHeader < caplen) break;
        meter.hint(h + kRecordHeader, caplen, wirelen, dlt_);
        ahead_pos_ += kRecordHeader + caplen;
        ++ahead_count_;
    }
}

void PcapSource::release_mapped() {
    // Drop the pages already metered from our mapping (the page cache keeps
    // them), so resident memory stays small however large the file is.
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t upto = pos_ & ~(page - 1);
    if (upto > released_) {
        madvise(const_cast<uint8_t*>(map_) + released_, upto - released_, MADV_DONTNEED);
        released_ = upto;
    }
}

bool PcapSource::read_libpcap(FlowMeter& meter, size_t max_frames) {
    for (size_t i = 0; i < max_frames; ++i) {
        struct pcap_pkthdr* hdr = nullptr;
        const u_char* data = nullptr;
        int rc = pcap_next_ex(pcap_, &hdr, &data);
        if (rc == 1) {
            uint64_t ts = static_cast<uint64_t>(hdr->ts.tv_sec) * 1'000'000'000ULL +
                          static_cast<uint64_t>(hdr->ts.tv_usec);  // nanoseconds (precision set at open)
            meter.packet(data, hdr->caplen, hdr->len, dlt_, ts);
            continue;
        }
        if (rc == PCAP_ERROR_BREAK) {  // end of file
            done_ = true;
            return false;
        }
        stop_truncated(meter, pcap_geterr(pcap_));
        return false;
    }
    return true;
}

}  // namespace bpfix
