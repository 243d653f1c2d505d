#include "output.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <ctime>
#include <dirent.h>
#include <vector>
#include <zstd.h>

#include "error.h"

namespace bpfix {

namespace {

std::string utc_stamp(int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

int64_t wall_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

struct RotatingWriter::Zstd {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    std::string buf;
    ~Zstd() { ZSTD_freeCCtx(ctx); }
};

RotatingWriter::RotatingWriter(Options opt) : opt_(std::move(opt)) {
    if (opt_.interval_s == 0) opt_.interval_s = 300;
    if (opt_.zstd_level) {
        if (opt_.zstd_level < 1 || opt_.zstd_level > 19) {
            throw Error(fmt::format("zstd level {} is out of range 1..19", opt_.zstd_level));
        }
        zstd_ = std::make_unique<Zstd>();
        if (!zstd_->ctx) throw Error("cannot create a zstd compression context (out of memory)");
        ZSTD_CCtx_setParameter(zstd_->ctx, ZSTD_c_compressionLevel, opt_.zstd_level);
        ZSTD_CCtx_setParameter(zstd_->ctx, ZSTD_c_checksumFlag, 1);
        opt_.extension += ".zst";
    }
    WholePrefix whole = opt_.whole ? opt_.whole : zstd_ ? WholePrefix(whole_zstd_frames) : WholePrefix(whole_lines);
    recover_partials(opt_.dir, opt_.prefix, opt_.extension, whole);
    struct stat st{};
    if (stat(opt_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(fmt::format("output directory {} does not exist; create it (mkdir -p) or choose another "
                                "with --output-dir",
                                opt_.dir));
    }
    if (access(opt_.dir.c_str(), W_OK) != 0) {
        throw Error(fmt::format("output directory {} is not writable by this user", opt_.dir));
    }
}

RotatingWriter::~RotatingWriter() {
    try {
        close();
    } catch (const Error& e) {
        spdlog::error("{}", e.what());
    }
}

namespace {

std::mutex recovery_mu;
RecoveryTotals recovery;

// A file mapped for reading (page cache, not the heap: a crashed run's
// file may be large).
struct MappedFile {
    MappedFile(const std::string& path, uint64_t size) : size(size) {
        if (size == 0) return;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
        void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) throw Error(fmt::format("cannot map {}: {}", path, std::strerror(errno)));
        data = static_cast<const char*>(p);
    }
    ~MappedFile() {
        if (data) munmap(const_cast<char*>(data), size);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const char* data = nullptr;
    uint64_t size;
};

}  // namespace

uint64_t whole_lines(const std::string& path, uint64_t size) {
    MappedFile f(path, size);
    for (uint64_t i = size; i > 0; --i) {
        if (f.data[i - 1] == '\n') return i;
    }
    return 0;
}

uint64_t whole_zstd_frames(const std::string& path, uint64_t size) {
    MappedFile f(path, size);
    uint64_t off = 0;
    while (off < size) {
        size_t n = ZSTD_findFrameCompressedSize(f.data + off, size - off);
        if (ZSTD_isError(n)) break;  // the frame being written
        off += n;
    }
    return off;
}

RecoveryTotals recovery_totals() {
    std::lock_guard lock(recovery_mu);
    return recovery;
}

void recover_partials(const std::string& dir, const std::string& prefix, const std::string& extension,
                      const WholePrefix& whole) {
    for (const RotatedFile& f : rotated_files(dir, prefix, extension)) {
        const std::string& partial = f.path;
        if (partial.size() < 8 || partial.compare(partial.size() - 8, 8, ".partial") != 0) continue;
        const std::string final_name = partial.substr(0, partial.size() - 8);
        struct stat st{};
        if (stat(partial.c_str(), &st) != 0) continue;
        const uint64_t size = static_cast<uint64_t>(st.st_size);
        std::string target = final_name;
        uint64_t keep = size;
        bool damaged = false;
        try {
            keep = std::min(whole(partial, size), size);
        } catch (const Error& e) {
            spdlog::error("recovery: {} is not a file of its format ({}); set aside", partial, e.what());
            damaged = true;
            target = final_name + ".damaged";
        }
        if (access(target.c_str(), F_OK) == 0) {
            spdlog::error("recovery: {} cannot be finished: {} exists; left as it is", partial, target);
            continue;
        }
        int fd = ::open(partial.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || (!damaged && keep < size && ftruncate(fd, static_cast<off_t>(keep)) != 0) || fsync(fd) != 0 ||
            std::rename(partial.c_str(), target.c_str()) != 0) {
            spdlog::error("recovery: cannot finish {}: {}", partial, std::strerror(errno));
            if (fd >= 0) ::close(fd);
            continue;
        }
        ::close(fd);
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            ::close(dfd);
        }
        std::lock_guard lock(recovery_mu);
        if (damaged) {
            ++recovery.damaged;
            continue;
        }
        ++recovery.files;
        recovery.bytes_dropped += size - keep;
        spdlog::warn("recovery: {} of a run that did not finish it is now {} ({} bytes kept{})", partial, target, keep,
                     keep < size ? fmt::format(", {} bytes of a record cut off at the crash dropped", size - keep)
                                 : std::string());
    }
}

std::vector<RotatedFile> rotated_files(const std::string& dir, const std::string& prefix,
                                       const std::string& extension) {
    std::vector<RotatedFile> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    const std::string head = prefix + "-";
    while (dirent* e = readdir(d)) {
        // PREFIX-YYYYMMDDTHHMMSSZ[-N].EXT[.partial]
        std::string name = e->d_name;
        if (name.rfind(head, 0) != 0) continue;
        std::string rest = name.substr(head.size());
        if (rest.size() > 8 && rest.compare(rest.size() - 8, 8, ".partial") == 0) rest.resize(rest.size() - 8);
        std::string ext = "." + extension;
        if (rest.size() < 16 + ext.size() || rest.compare(rest.size() - ext.size(), ext.size(), ext) != 0) continue;
        rest.resize(rest.size() - ext.size());
        struct tm tm {};
        char z = 0, dash = 0;
        unsigned part = 0;
        int n = std::sscanf(rest.c_str(), "%4d%2d%2dT%2d%2d%2d%c%c%u", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z, &dash, &part);
        if (n < 7 || z != 'Z' || (n > 7 && (dash != '-' || n != 9))) continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        out.push_back({dir + "/" + name, static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL, part});
    }
    closedir(d);
    std::sort(out.begin(), out.end(), [](const RotatedFile& a, const RotatedFile& b) {
        return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.part < b.part;
    });
    return out;
}

std::vector<RotatedFile> files_for_range(const std::vector<RotatedFile>& files, int64_t from_ns, int64_t to_ns,
                                         int64_t slack_ns) {
    std::vector<RotatedFile> out;
    for (size_t i = 0; i < files.size(); ++i) {
        if (files[i].start_ns > to_ns + slack_ns) break;
        // The next interval's first file (parts of one interval share its
        // start) bounds this one.
        size_t next = i + 1;
        while (next < files.size() && files[next].start_ns == files[i].start_ns) ++next;
        if (next < files.size() && files[next].start_ns + slack_ns < from_ns) continue;
        out.push_back(files[i]);
    }
    return out;
}

void RotatingWriter::open(int64_t now_s) {
    int64_t start = now_s - now_s % static_cast<int64_t>(opt_.interval_s);
    if (start != interval_start_) part_ = 0;
    interval_start_ = start;
    std::string base = fmt::format("{}/{}-{}", opt_.dir, opt_.prefix, utc_stamp(start));
    // A name is never reused: a restart within the same interval, or a size
    // rotation, moves on to the next free part number.
    for (;; ++part_) {
        std::string name = part_ ? fmt::format("{}-{}.{}", base, part_, opt_.extension)
                                 : fmt::format("{}.{}", base, opt_.extension);
        if (access(name.c_str(), F_OK) == 0 || access((name + ".partial").c_str(), F_OK) == 0) continue;
        final_ = name;
        break;
    }
    partial_ = final_ + ".partial";
    fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw Error(fmt::format("cannot create {}: {}", partial_, std::strerror(errno)));
    }
    bytes_ = 0;
    ++part_;
    if (opt_.on_open) opt_.on_open(partial_);
}

void RotatingWriter::finish() {
    if (fd_ < 0) return;
    if (opt_.before_finish) opt_.before_finish();
    int fd = fd_;
    fd_ = -1;
    if (fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        throw Error(fmt::format("cannot fsync {}: {}; it stays under its .partial name", partial_, std::strerror(e)));
    }
    ::close(fd);
    if (std::rename(partial_.c_str(), final_.c_str()) != 0) {
        throw Error(fmt::format("cannot rename {} to {}: {}", partial_, final_, std::strerror(errno)));
    }
    // Make the rename itself durable.
    int dfd = ::open(opt_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        ::close(dfd);
    }
    ++files_finished_;
    spdlog::debug("finished {}", final_);
}

void RotatingWriter::set_limits(const RotationLimits& l) {
    opt_.interval_s = l.interval_s ? l.interval_s : 300;
    opt_.max_bytes = l.max_bytes;
    opt_.keep_seconds = l.keep_seconds;
    opt_.keep_bytes = l.keep_bytes;
}

void RotatingWriter::tick(int64_t now_s) {
    if (fd_ >= 0 && now_s >= interval_start_ + static_cast<int64_t>(opt_.interval_s)) finish();
    if (now_s != last_retention_) {
        last_retention_ = now_s;
        enforce_retention(now_s);
    }
}

size_t RotatingWriter::enforce_retention(int64_t now_s) {
    if (!opt_.keep_seconds && !opt_.keep_bytes) return 0;
    struct File {
        std::string path;
        int64_t mtime;
        uint64_t size;
    };
    std::vector<File> files;
    DIR* d = opendir(opt_.dir.c_str());
    if (!d) return 0;
    std::string head = opt_.prefix + "-", tail = "." + opt_.extension;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        // finished files only: never the .partial being written
        if (n.size() <= head.size() + tail.size() || n.rfind(head, 0) != 0 ||
            n.compare(n.size() - tail.size(), tail.size(), tail) != 0) {
            continue;
        }
        struct stat st{};
        std::string path = opt_.dir + "/" + n;
        if (stat(path.c_str(), &st) == 0) files.push_back({path, st.st_mtime, static_cast<uint64_t>(st.st_size)});
    }
    closedir(d);
    std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
        return a.mtime != b.mtime ? a.mtime < b.mtime : a.path < b.path;
    });
    uint64_t total = 0;
    for (const auto& f : files) total += f.size;
    size_t removed = 0;
    for (const auto& f : files) {
        bool too_old = opt_.keep_seconds && now_s - f.mtime > static_cast<int64_t>(opt_.keep_seconds);
        bool too_big = opt_.keep_bytes && total > opt_.keep_bytes;
        if (!too_old && !too_big) break;
        if (unlink(f.path.c_str()) == 0) {
            total -= f.size;
            ++removed;
            spdlog::info("retention: removed {}", f.path);
        } else {
            spdlog::warn("retention: cannot remove {}: {}", f.path, std::strerror(errno));
        }
    }
    return removed;
}

bool RotatingWriter::prepare(size_t bytes, int64_t now_s) {
    tick(now_s);
    if (fd_ >= 0 && opt_.max_bytes && bytes_ > 0 && bytes_ + bytes > opt_.max_bytes) finish();
    if (fd_ >= 0) return false;
    open(now_s);
    return true;
}

void RotatingWriter::write(const std::string& data, int64_t now_s) {
    if (prepare(data.size(), now_s) && opt_.header) {
        std::string head = opt_.header();
        if (!head.empty()) raw_write(head.data(), head.size());
    }
    raw_write(data.data(), data.size());
}

void RotatingWriter::raw_write(const char* p, size_t left) {
    if (zstd_) {
        // One frame per write: the file is valid after each.
        zstd_->buf.resize(ZSTD_compressBound(left));
        size_t n = ZSTD_compress2(zstd_->ctx, zstd_->buf.data(), zstd_->buf.size(), p, left);
        if (ZSTD_isError(n)) throw Error(fmt::format("cannot compress for {}: {}", partial_, ZSTD_getErrorName(n)));
        p = zstd_->buf.data();
        left = n;
    }
    size_t total = left;
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            // Cut back to the last whole write so the file stays valid.
            if (ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
                spdlog::warn("cannot truncate {} after a failed write", partial_);
            }
            if (lseek(fd_, static_cast<off_t>(bytes_), SEEK_SET) < 0) {
                spdlog::warn("cannot seek in {} after a failed write", partial_);
            }
            throw Error(fmt::format("cannot write {}: {}", partial_, std::strerror(e)));
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    bytes_ += total;
}

void RotatingWriter::close() { finish(); }

OutputQueue::OutputQueue(RotatingWriter::Options opt, uint64_t max_queued_bytes, std::unique_ptr<LineFormat> format)
    : format_(format ? std::move(format) : std::make_unique<JsonlFormat>()),
      writer_(configured(std::move(opt), *format_)),
      worker_(max_queued_bytes, [this](std::deque<Lines>& b, bool rotate, bool stop) { write_batch(b, rotate, stop); }) {}

OutputQueue::~OutputQueue() { stop(); }

bool OutputQueue::push(std::string lines, uint64_t records) {
    uint64_t bytes = lines.size();
    if (worker_.push({std::move(lines), records}, bytes)) return true;
    std::lock_guard lock(mu_);
    dropped_ += records;
    return false;
}

void OutputQueue::stop() { worker_.stop(); }

void OutputQueue::rotate_now(std::optional<RotationLimits> limits) {
    if (!limits) return worker_.rotate_now();
    worker_.rotate_now([this, l = *limits] { writer_.set_limits(l); });
}

void OutputQueue::write_batch(std::deque<Lines>& batch, bool rotate, bool stop) {
    int64_t now = wall_now();
    uint64_t total = 0, stored = 0;
    for (const auto& item : batch) total += item.second;
    try {
        if (batch.empty()) writer_.tick(now);
        format_->store(writer_, batch, now, stored);
        if (rotate || stop) {
            format_->flush(writer_);
            writer_.close();
        }
        std::lock_guard lock(mu_);
        written_ += stored;
    } catch (const Error& e) {
        // The disk refused: what was written stays in a valid file; the
        // rest of this batch is counted as dropped, and writing is tried
        // again with the next batch.
        spdlog::error("{}", e.what());
        std::lock_guard lock(mu_);
        error_ = e.what();
        written_ += stored;
        dropped_ += total - stored;
    }
}

void JsonlFormat::store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) {
    std::string joined;
    uint64_t n = 0;
    auto flush = [&] {
        w.write(joined, now);
        stored += n;
        joined.clear();
        n = 0;
    };
    for (auto& [lines, records] : batch) {
        if (lines.size() >= (64u << 10)) {
            // big enough for a write of its own: no copy
            if (!joined.empty()) flush();
            w.write(lines, now);
            stored += records;
            continue;
        }
        joined += lines;
        n += records;
        if (joined.size() >= (1u << 20)) flush();
    }
    if (!joined.empty()) flush();
}

uint64_t OutputQueue::records_written() const {
    std::lock_guard lock(mu_);
    return written_;
}

uint64_t OutputQueue::records_dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
}

std::string OutputQueue::last_error() const {
    std::lock_guard lock(mu_);
    return error_;
}

}  // namespace bpfix
