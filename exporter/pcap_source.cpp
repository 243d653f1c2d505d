#include "pcap_source.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
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
constexpr size_t kBuffer = 2u << 20;     // read() size; holds several of the largest records

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
    if (!open_buffered()) {
        open_libpcap();
    }
    if (!link_type_supported(dlt_)) {
        throw Error(link_type_error(path, dlt_));
    }
}

PcapSource::~PcapSource() {
    if (fd_ >= 0) ::close(fd_);
    if (pcap_) pcap_close(pcap_);
}

bool PcapSource::open_buffered() {
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
    if (lseek(fd, static_cast<off_t>(kFileHeader), SEEK_SET) < 0) {
        ::close(fd);
        return false;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    fd_ = fd;
    buf_.resize(kBuffer);
    base_ = kFileHeader;
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
    return fd_ >= 0 ? read_buffered(meter, max_frames) : read_libpcap(meter, max_frames);
}

void PcapSource::fill(FlowMeter& meter) {
    // Keeps what is not metered yet (at most one record) and reads after it.
    const size_t keep = len_ - pos_;
    if (keep && pos_) memmove(buf_.data(), buf_.data() + pos_, keep);
    meter.forget_hints();  // the hinted frames moved: hint them again
    base_ += pos_;
    ahead_pos_ = 0;
    ahead_count_ = 0;
    len_ = keep;
    pos_ = 0;
    while (len_ < buf_.size()) {
        ssize_t n = ::read(fd_, buf_.data() + len_, buf_.size() - len_);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            throw Error(fmt::format("cannot read pcap file {} at offset {}: {}", path_, base_ + len_,
                                    std::strerror(errno)));
        }
        if (n == 0) {
            eof_ = true;
            return;
        }
        len_ += static_cast<size_t>(n);
    }
}

bool PcapSource::read_buffered(FlowMeter& meter, size_t max_frames) {
    for (size_t i = 0; i < max_frames; ++i) {
        // Refill while a whole record of the largest size may not be here.
        if (!eof_ && len_ - pos_ < kRecordHeader + kMaxCaplen) fill(meter);
        if (pos_ == len_) {  // only at end of file: fill() reads until the buffer is full
            done_ = true;
            return false;
        }
        const uint64_t offset = base_ + pos_;
        if (len_ - pos_ < kRecordHeader) {
            stop_truncated(meter, fmt::format("truncated record header at offset {}", offset));
            return false;
        }
        const uint8_t* h = buf_.data() + pos_;
        uint64_t sec = load32(h, swapped_);
        uint64_t frac = load32(h + 4, swapped_);
        uint32_t caplen = load32(h + 8, swapped_);
        uint32_t wirelen = load32(h + 12, swapped_);
        if (caplen > kMaxCaplen) {
            stop_truncated(meter, fmt::format("record at offset {} claims {} captured bytes (more than {}): the file "
                                              "is damaged",
                                              offset, caplen, kMaxCaplen));
            return false;
        }
        if (len_ - pos_ - kRecordHeader < caplen) {
            stop_truncated(meter, fmt::format("truncated dump file: record at offset {} needs {} bytes, {} remain",
                                              offset, caplen, len_ - pos_ - kRecordHeader));
            return false;
        }
        uint64_t ts = sec * 1'000'000'000ULL + (nanosecond_ ? frac : frac * 1000);
        look_ahead(meter);
        meter.packet(h + kRecordHeader, caplen, wirelen, dlt_, ts);
        pos_ += kRecordHeader + caplen;
        if (ahead_count_) --ahead_count_;
    }
    return true;
}

void PcapSource::look_ahead(FlowMeter& meter) {
    // Keeps the meter hinted kLookahead records ahead, so the flow table's
    // cache misses for a packet overlap the work on the ones before it (at a
    // million flows they were half the time). Only within the buffer;
    // stops at anything odd (the reader reports it when it gets there).
    constexpr size_t kLookahead = 16;
    if (ahead_pos_ < pos_) ahead_pos_ = pos_, ahead_count_ = 0;
    while (ahead_count_ < kLookahead && len_ - ahead_pos_ >= kRecordHeader) {
        const uint8_t* h = buf_.data() + ahead_pos_;
        uint32_t caplen = load32(h + 8, swapped_);
        uint32_t wirelen = load32(h + 12, swapped_);
        if (caplen > kMaxCaplen || len_ - ahead_pos_ - kRecordHeader < caplen) break;
        meter.hint(h + kRecordHeader, caplen, wirelen, dlt_);
        ahead_pos_ += kRecordHeader + caplen;
        ++ahead_count_;
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
