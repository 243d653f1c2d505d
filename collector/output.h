#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "writer_thread.h"

namespace bpfix {

// Writes lines (JSONL records) into rotated files in a directory. A file
// being written is named NAME.EXT.partial; when its interval ends (aligned
// to the wall clock: with 300 s, files cover 12:00:00-12:05:00, ...) or it
// reaches the size limit, it is fsynced, closed and renamed atomically to
// NAME.EXT, so a reader never sees a partial file under a final name.
// NAME is PREFIX-YYYYMMDDTHHMMSSZ of the interval's start (UTC), with -N
// appended for a second file in one interval (size rotation).
// How files rotate and how long finished ones are kept: what a reload of
// the collector may change while it writes.
struct RotationLimits {
    uint64_t interval_s = 300;
    uint64_t max_bytes = 0;
    uint64_t keep_seconds = 0;
    uint64_t keep_bytes = 0;
    bool operator==(const RotationLimits&) const = default;
};

// The length of a file's leading bytes that are whole records, for crash
// recovery; throws bpfix::Error when the file is not of its format.
using WholePrefix = std::function<uint64_t(const std::string& path, uint64_t size)>;

// Start-up after a run that did not end (kill -9, a crash, power loss):
// the .partial files PREFIX-*.EXT.partial it left in `dir` are cut back to
// their last whole record, fsynced and renamed to their final names, so
// that readers, replay and retention see them. A file that is not of its
// format is renamed to NAME.damaged instead. Each is logged; the totals are
// counted process-wide (recovery_totals()). Only one collector writes into
// a directory (the Hub holds a lock on it), so every .partial there at
// start is a crashed run's.
struct RecoveryTotals {
    uint64_t files = 0;          // finished by recovery
    uint64_t bytes_dropped = 0;  // of records cut off at the crash
    uint64_t damaged = 0;        // set aside as .damaged
};
void recover_partials(const std::string& dir, const std::string& prefix, const std::string& extension,
                      const WholePrefix& whole);
RecoveryTotals recovery_totals();
// Whole lines, and whole zstd frames of whole lines.
uint64_t whole_lines(const std::string& path, uint64_t size);
uint64_t whole_zstd_frames(const std::string& path, uint64_t size);

class RotatingWriter {
public:
    struct Options {
        std::string dir;
        std::string prefix = "flows";
        std::string extension = "jsonl";
        uint64_t interval_s = 300;
        uint64_t max_bytes = 0;  // 0: no size limit
        // Retention of finished files (ours: PREFIX-*.EXT): deleted, oldest
        // first, when older than this many seconds or while all of them
        // together exceed this many bytes. 0: keep.
        uint64_t keep_seconds = 0;
        uint64_t keep_bytes = 0;
        // Compression: 0 none; 1..19 a zstd level, and ".zst" is appended
        // to the extension. Every write() is one zstd frame, so a file cut
        // back after a failed write is still a valid .zst stream.
        int zstd_level = 0;
        // Formats with their own needs: the first bytes of every file (a
        // CSV header), told when a file was created (its .partial path), and
        // asked to finish before it is fsynced and renamed (a database
        // closing its handle).
        std::function<std::string()> header;
        std::function<void(const std::string& partial)> on_open;
        std::function<void()> before_finish;
        // Crash recovery (see recover_partials): how many leading bytes of
        // a .partial file of `size` bytes are whole records. None: whole
        // lines (whole zstd frames when compressed).
        WholePrefix whole;
    };
    explicit RotatingWriter(Options opt);
    ~RotatingWriter();
    RotatingWriter(const RotatingWriter&) = delete;
    RotatingWriter& operator=(const RotatingWriter&) = delete;

    // Appends `data` (whole lines) at wall-clock time `now_s`, rotating
    // first when the interval or the size limit says so. Throws
    // bpfix::Error naming the file when the disk refuses (full, gone).
    void write(const std::string& data, int64_t now_s);
    // For formats that write through their own handle (sqlite): rotates by
    // time and size as write() would for `bytes` more and opens a file if
    // none is; returns whether it opened one. add_bytes() then counts what
    // was written, for the size limit.
    bool prepare(size_t bytes, int64_t now_s);
    void add_bytes(uint64_t n) { bytes_ += n; }
    // Rotates if the current file's interval has ended, even without data.
    void tick(int64_t now_s);
    // Finalizes the open file (if any).
    void close();
    // Applies the retention limits to the finished files; returns how many
    // were deleted.
    size_t enforce_retention(int64_t now_s);

    uint64_t files_finished() const { return files_finished_; }
    // New limits (a reload), from the next file on; call close() first for
    // a fresh file now.
    void set_limits(const RotationLimits& l);
    const std::string& current_path() const { return partial_; }
    bool is_open() const { return fd_ >= 0; }
    // Whether writing `bytes` at `now_s` starts a new file (none open, the
    // interval over, or the size limit passed): for formats whose files
    // must each begin with their own context (IPFIX templates).
    bool starts_new_file(size_t bytes, int64_t now_s) const {
        return fd_ < 0 || now_s >= interval_start_ + static_cast<int64_t>(opt_.interval_s) ||
               (opt_.max_bytes && bytes_ > 0 && bytes_ + bytes > opt_.max_bytes);
    }

private:
    void open(int64_t now_s);
    void finish();
    void raw_write(const char* p, size_t n);

    Options opt_;
    struct Zstd;
    std::unique_ptr<Zstd> zstd_;
    int fd_ = -1;
    std::string partial_, final_;
    int64_t interval_start_ = 0;
    uint64_t bytes_ = 0;
    unsigned part_ = 0;
    uint64_t files_finished_ = 0;
    int64_t last_retention_ = 0;
};

// The files a RotatingWriter with this prefix and extension left in `dir`,
// finished and being written (a reader of a .partial file stops at its
// last whole record), oldest first.
struct RotatedFile {
    std::string path;
    int64_t start_ns;  // the start of its interval (from its name), UNIX ns
    unsigned part;     // 0, or N of a -N name
};
std::vector<RotatedFile> rotated_files(const std::string& dir, const std::string& prefix,
                                       const std::string& extension);
// Those that may hold records of [from, to): a file is started before
// everything in it was written and ends where the next starts; `slack`
// covers the clocks of exporters that differ from the collector's.
std::vector<RotatedFile> files_for_range(const std::vector<RotatedFile>& files, int64_t from_ns, int64_t to_ns,
                                         int64_t slack_ns);

// What an output format does, on the writer thread, with batches of JSON
// lines (the decoder's form of every record; see line_formats.h).
class LineFormat {
public:
    using Lines = std::pair<std::string, uint64_t>;  // whole JSON lines, records in them
    virtual ~LineFormat() = default;
    // Sets the hooks the format needs in its writer's options.
    virtual void configure(RotatingWriter::Options&) {}
    // Stores `batch` through `w`, adding to `stored` the records of every
    // item once it is in the file. Throws bpfix::Error when the disk
    // refuses; the items not counted in `stored` are then dropped.
    virtual void store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) = 0;
    // Before the writer finishes the open file on request (SIGHUP, stop).
    virtual void flush(RotatingWriter&) {}
};

// Records from the receiving threads, as JSON lines, written by one
// LineFormat (JSONL when none is given) into rotated files on a
// WriterThread, so that disk latency never blocks receiving. When the
// writer falls behind by more than `max_queued_bytes`, new batches are
// dropped and counted (never silently).
class OutputQueue {
public:
    OutputQueue(RotatingWriter::Options opt, uint64_t max_queued_bytes, std::unique_ptr<LineFormat> format = nullptr);
    ~OutputQueue();  // finishes writing what was queued, finalizes the file

    // Queues whole lines holding `records` records. Returns false (and
    // counts them) when the queue is full.
    bool push(std::string lines, uint64_t records);
    // Stops accepting, writes everything queued, finalizes the open file.
    void stop();
    // Finalizes the open file now (SIGHUP); the next records start a new
    // one, under `limits` when given (a reload).
    void rotate_now(std::optional<RotationLimits> limits = std::nullopt);

    uint64_t records_written() const;
    // Files finalized (valid after stop()).
    uint64_t files_finished() const { return writer_.files_finished(); }
    uint64_t records_dropped() const;
    std::string last_error() const;

private:
    using Lines = LineFormat::Lines;
    void write_batch(std::deque<Lines>& batch, bool rotate, bool stop);
    static RotatingWriter::Options configured(RotatingWriter::Options opt, LineFormat& f) {
        f.configure(opt);
        return opt;
    }

    std::unique_ptr<LineFormat> format_;
    RotatingWriter writer_;
    mutable std::mutex mu_;  // the counters
    uint64_t written_ = 0, dropped_ = 0;
    std::string error_;
    WriterThread<Lines> worker_;  // last: its thread uses the rest
};

// The JSONL format: the lines as they are.
class JsonlFormat : public LineFormat {
public:
    void store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) override;
};

}  // namespace bpfix
