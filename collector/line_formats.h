#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "output.h"

struct sqlite3;
struct sqlite3_stmt;

namespace bpfix {

// The `csv` format: one row per record (RFC 4180: comma-separated, cells
// with a comma, quote or line break quoted, quotes doubled), a header row
// first. The columns are exporter, observationDomainId, templateId, then
// every element name in the order the collector first met it: the union of
// all templates, a cell left empty where a record lacks the element. When
// a record brings an element no column has yet, the open file is finished
// (under its old header) and the next one starts with the wider header, so
// every file has one header that names all of its columns. Values as in
// JSONL: addresses and times as text, numbers as numbers, a repeated
// element as a JSON array in one cell.
class CsvFormat : public LineFormat {
public:
    CsvFormat();
    void configure(RotatingWriter::Options& opt) override;
    void store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) override;

    const std::vector<std::string>& columns() const { return columns_; }

private:
    std::string header() const;

    std::vector<std::string> columns_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::string> cells_;  // one row being built
    uint64_t bad_lines_ = 0;
};

// The `sqlite` format: one SQLite database per file (flows-TIME.sqlite),
// with one table `flows`: columns exporter (TEXT), observationDomainId and
// templateId (INTEGER), then one column per element name met in that file
// (added with ALTER TABLE as they come, with no declared type: each value
// keeps its own, INTEGER, REAL or TEXT; addresses and times as text as in
// JSONL; a counter beyond 2^63-1 as its exact decimal text; a repeated
// element as JSON text; NULL where a record lacks the element). Rows are inserted in one transaction per batch. The
// database is written under the .partial name and closed before it is
// fsynced and renamed; a killed collector leaves only a .partial.
class SqliteFormat : public LineFormat {
public:
    ~SqliteFormat() override;
    void configure(RotatingWriter::Options& opt) override;
    void store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) override;

private:
    void open_db(const std::string& path);
    void close_db();
    void exec(const char* sql);
    void commit();
    [[noreturn]] void fail(const std::string& what);

    sqlite3* db_ = nullptr;
    std::string path_;
    bool in_txn_ = false;
    uint64_t pending_ = 0;          // records inserted in the open transaction
    uint64_t* stored_ = nullptr;    // the store() call's count, while it runs
    std::unordered_map<std::string, size_t> columns_;  // of this file's table
    std::map<std::vector<size_t>, sqlite3_stmt*> inserts_;  // by the columns they fill, in order
    uint64_t bad_lines_ = 0;
};

// The format named `name` for the line-based outputs: jsonl, csv, sqlite.
std::unique_ptr<LineFormat> make_line_format(const std::string& name);

}  // namespace bpfix
