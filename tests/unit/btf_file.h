#pragma once
// A BTF object built in memory with libbpf, written to a temporary raw BTF
// file (the format of /sys/kernel/btf/vmlinux) that is removed with it.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

namespace bpfix::test {

struct BtfFree {
    void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfFree>;

class TempBtfFile {
public:
    explicit TempBtfFile(const btf* b) {
        char name[] = "/tmp/bpfix-btf-XXXXXX";
        int fd = mkstemp(name);
        EXPECT_GE(fd, 0);
        path_ = name;
        uint32_t size = 0;
        const void* data = btf__raw_data(b, &size);
        EXPECT_NE(data, nullptr);
        EXPECT_EQ(write(fd, data, size), static_cast<ssize_t>(size));
        close(fd);
    }
    ~TempBtfFile() { std::remove(path_.c_str()); }
    TempBtfFile(const TempBtfFile&) = delete;
    TempBtfFile& operator=(const TempBtfFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace bpfix::test
