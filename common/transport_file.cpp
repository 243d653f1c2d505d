// IPFIX file (RFC 5655): messages back to back, fsync'd when finished.
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "error.h"
#include "transport.h"

namespace bpfix {
namespace {

class FileTransport : public Transport {
public:
    explicit FileTransport(const std::string& path) : path_(path) {
        name_ = "file:" + path;
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            throw Error(fmt::format("cannot create IPFIX file {}: {}; check the directory exists and is writable",
                                    path, strerror(errno)));
        }
    }
    ~FileTransport() override {
        if (fd_ >= 0) ::close(fd_);
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
        ++messages_sent_;
    }

    bool finish(asio::io_context&, std::chrono::milliseconds) override {
        if (fd_ >= 0) {
            if (!failed_ && ::fsync(fd_) != 0) {
                spdlog::error("cannot sync IPFIX file {}: {}", path_, strerror(errno));
                failed_ = true;
            }
            ::close(fd_);
            fd_ = -1;
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

    std::string path_;
    int fd_ = -1;
    bool failed_ = false;
    off_t committed_ = 0;
};

}  // namespace

std::unique_ptr<Transport> make_file_transport(const std::string& path) {
    return std::make_unique<FileTransport>(path);
}

}  // namespace bpfix
