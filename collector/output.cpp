#include "output.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <vector>

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

RotatingWriter::RotatingWriter(Options opt) : opt_(std::move(opt)) {
    if (opt_.interval_s == 0) opt_.interval_s = 300;
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
}

void RotatingWriter::finish() {
    if (fd_ < 0) return;
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

void RotatingWriter::write(const std::string& data, int64_t now_s) {
    tick(now_s);
    if (fd_ >= 0 && opt_.max_bytes && bytes_ > 0 && bytes_ + data.size() > opt_.max_bytes) finish();
    if (fd_ < 0) open(now_s);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            // Cut back to the last whole write so the file stays valid.
            if (ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
                spdlog::warn("cannot truncate {} after a failed write", partial_);
            }
            throw Error(fmt::format("cannot write {}: {}", partial_, std::strerror(e)));
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    bytes_ += data.size();
}

void RotatingWriter::close() { finish(); }

OutputQueue::OutputQueue(RotatingWriter::Options opt, uint64_t max_queued_bytes)
    : writer_(std::move(opt)),
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

void OutputQueue::rotate_now() { worker_.rotate_now(); }

void OutputQueue::write_batch(std::deque<Lines>& batch, bool rotate, bool stop) {
    int64_t now = wall_now();
    uint64_t total = 0, committed = 0;
    for (const auto& item : batch) total += item.second;
    try {
        if (batch.empty()) writer_.tick(now);
        std::string joined;
        uint64_t n = 0;
        auto flush = [&] {
            writer_.write(joined, now);
            committed += n;
            std::lock_guard lock(mu_);
            written_ += n;
            joined.clear();
            n = 0;
        };
        for (auto& [lines, records] : batch) {
            if (lines.size() >= (64u << 10)) {
                // big enough for a write of its own: no copy
                if (!joined.empty()) flush();
                writer_.write(lines, now);
                committed += records;
                std::lock_guard lock(mu_);
                written_ += records;
                continue;
            }
            joined += lines;
            n += records;
            if (joined.size() >= (1u << 20)) flush();
        }
        if (!joined.empty()) flush();
        if (rotate || stop) writer_.close();
    } catch (const Error& e) {
        // The disk refused: what was written stays in a valid file; the
        // rest of this batch is counted as dropped, and writing is tried
        // again with the next batch.
        spdlog::error("{}", e.what());
        std::lock_guard lock(mu_);
        error_ = e.what();
        dropped_ += total - committed;
    }
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
