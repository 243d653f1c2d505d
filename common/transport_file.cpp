// IPFIX file (RFC 5655): messages back to back, fsync'd when finished.
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.h"
#include "transport.h"

namespace bpfix {
namespace {

class FileTransport : public Transport {
public:
    // Writes PATH.partial and renames it to PATH only when the run ends
    // well: a failed run never replaces an existing PATH.
    explicit FileTransport(const std::string& path) : path_(path), partial_(path + ".partial") {
        name_ = "file:" + path;
        if (::access(path.c_str(), F_OK) == 0) {
            spdlog::warn("IPFIX file {} exists: this run replaces it when it finishes (it writes {} until then)",
                         path, partial_);
        }
        fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            throw Error(fmt::format("cannot create IPFIX file {}: {}; check the directory exists and is writable",
                                    partial_, strerror(errno)));
        }
    }
    ~FileTransport() override {
        if (fd_ < 0) return;
        // Not finished: the run failed before its end; PATH stays as it was.
        ::close(fd_);
        ::unlink(partial_.c_str());
        spdlog::error("IPFIX file {} not written: the run did not finish (it is left as it was)", path_);
    }

    void send(IpfixMessage&& msg) override {
        if (failed_) {
            records_not_sent_ += msg.data_records;
            return;
        }
        const uint8_t* p = msg.bytes.data();
        size_t left = msg.bytes.size();
        while (left > 0) {
            ssize_t n = ::write(fd_, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fail(n < 0 ? errno : ENOSPC, msg);
                return;
            }
            p += n;
            left -= static_cast<size_t>(n);
        }
        committed_ += static_cast<off_t>(msg.bytes.size());
        data_records_ += msg.data_records;
        ++messages_sent_;
    }

    bool finish(asio::io_context&, std::chrono::milliseconds) override {
        if (fd_ >= 0) {
            if (!failed_ && ::fsync(fd_) != 0) {
                spdlog::error("cannot sync IPFIX file {}: {}", partial_, strerror(errno));
                failed_ = true;
            }
            ::close(fd_);
            fd_ = -1;
            if (failed_ || records_not_sent_) {
                set_aside();
            } else if (std::rename(partial_.c_str(), path_.c_str()) != 0) {
                spdlog::error("cannot rename {} to {}: {}; the flows stay in {}", partial_, path_, strerror(errno),
                              partial_);
                failed_ = true;
            } else {
                sync_dir();
            }
        }
        return !failed_ && records_not_sent_ == 0;
    }

    uint16_t max_message_size() const override { return 65000; }

private:
    void fail(int err, const IpfixMessage& msg) {
        failed_ = true;
        records_not_sent_ += msg.data_records;
        // Cut a partly written message off so the file stays valid IPFIX:
        // what was accepted before stays intact.
        if (::ftruncate(fd_, committed_) != 0) {
            spdlog::warn("cannot truncate {} after a failed write: {}", path_, strerror(errno));
        }
        spdlog::error("cannot write IPFIX file {}: {}; records from here on are not written (free some space or "
                      "choose another path)",
                      path_, strerror(err));
    }

    // A run that could not write everything (disk full) leaves PATH as it
    // was; what it did write is kept in PATH.partial, valid IPFIX.
    void set_aside() {
        spdlog::error("IPFIX file {} not replaced: not every record could be written; the {} that were are in {}",
                      path_, data_records_, partial_);
    }
    void sync_dir() {
        std::string dir = path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/') + 1);
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }

    std::string path_, partial_;
    uint64_t data_records_ = 0;
    int fd_ = -1;
    bool failed_ = false;
    off_t committed_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_file_transport(const std::string& path) {
    return std::make_unique<FileTransport>(path);
}

}  // namespace bpfix
