#include "line_formats.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "error.h"

namespace bpfix {

namespace {

using Json = nlohmann::ordered_json;

// Calls `f(record)` for every JSON line in `lines`; a line that does not
// parse (it would be a decoder bug) is counted in `bad` and skipped.
template <typename F>
void each_record(const std::string& lines, uint64_t& bad, F&& f) {
    size_t pos = 0;
    while (pos < lines.size()) {
        size_t end = lines.find('\n', pos);
        if (end == std::string::npos) end = lines.size();
        if (end > pos) {
            Json rec = Json::parse(lines.begin() + static_cast<std::ptrdiff_t>(pos),
                                   lines.begin() + static_cast<std::ptrdiff_t>(end), nullptr, false);
            if (rec.is_object()) {
                f(rec);
            } else if (bad++ < 10) {
                spdlog::error("output: a record line is not a JSON object, skipped: {}",
                              lines.substr(pos, std::min<size_t>(end - pos, 200)));
            }
        }
        pos = end + 1;
    }
}

void csv_cell(std::string& out, const Json& v) {
    std::string text;
    if (v.is_string()) {
        text = v.get_ref<const std::string&>();
    } else if (v.is_null()) {
        return;
    } else {
        text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
    if (text.find_first_of(",\"\r\n") == std::string::npos) {
        out += text;
        return;
    }
    out += '"';
    for (char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

std::string csv_name(const std::string& name) {
    std::string out;
    csv_cell(out, Json(name));
    return out;
}

}  // namespace

// ---- csv ----

CsvFormat::CsvFormat() {
    for (const char* c : {"exporter", "observationDomainId", "templateId"}) {
        index_[c] = columns_.size();
        columns_.push_back(c);
    }
}

void CsvFormat::configure(RotatingWriter::Options& opt) {
    opt.header = [this] { return header(); };
}

std::string CsvFormat::header() const {
    std::string h;
    for (size_t i = 0; i < columns_.size(); ++i) {
        if (i) h += ',';
        h += csv_name(columns_[i]);
    }
    h += "\r\n";
    return h;
}

void CsvFormat::store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) {
    std::string text;
    uint64_t n = 0;
    auto flush = [&] {
        if (!text.empty()) w.write(text, now);
        stored += n;
        text.clear();
        n = 0;
    };
    for (auto& [lines, records] : batch) {
        each_record(lines, bad_lines_, [&](const Json& rec) {
            bool wider = false;
            for (const auto& [k, v] : rec.items()) {
                if (index_.count(k)) continue;
                if (!wider) {
                    // Rows so far belong under the old header: write them,
                    // finish that file; the next starts with the new one.
                    wider = true;
                    if (!text.empty()) w.write(text, now);
                    text.clear();
                    if (w.is_open()) w.close();
                }
                index_[k] = columns_.size();
                columns_.push_back(k);
            }
            cells_.assign(columns_.size(), std::string());
            for (const auto& [k, v] : rec.items()) csv_cell(cells_[index_[k]], v);
            for (size_t i = 0; i < cells_.size(); ++i) {
                if (i) text += ',';
                text += cells_[i];
            }
            text += "\r\n";
        });
        n += records;
        if (text.size() >= (1u << 20)) flush();
    }
    flush();
}

// ---- sqlite ----

SqliteFormat::~SqliteFormat() {
    try {
        close_db();
    } catch (const Error& e) {
        spdlog::error("{}", e.what());
    }
}

void SqliteFormat::configure(RotatingWriter::Options& opt) {
    opt.on_open = [this](const std::string& partial) { open_db(partial); };
    opt.before_finish = [this] { close_db(); };
    // A crashed run's database: kept whole when SQLite finds it intact (its
    // journal is in memory, so a crash inside a transaction can leave a
    // broken file, set aside as .damaged).
    opt.whole = [](const std::string& path, uint64_t size) -> uint64_t {
        sqlite3* db = nullptr;
        std::string verdict;
        if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
            sqlite3_exec(
                db, "PRAGMA integrity_check",
                [](void* out, int, char** values, char**) {
                    if (values[0]) *static_cast<std::string*>(out) += values[0];
                    return 0;
                },
                &verdict, nullptr);
        }
        sqlite3_close(db);
        if (verdict != "ok") throw Error(fmt::format("SQLite integrity check: {}", verdict.empty() ? "cannot read it" : verdict));
        return size;
    };
}

void SqliteFormat::fail(const std::string& what) {
    std::string msg = fmt::format("sqlite output {}: {}: {}", path_, what, db_ ? sqlite3_errmsg(db_) : "not open");
    if (in_txn_ && db_) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        in_txn_ = false;
        pending_ = 0;
    }
    throw Error(msg);
}

void SqliteFormat::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string e = err ? err : "unknown error";
        sqlite3_free(err);
        fail(fmt::format("{} failed ({})", sql, e));
    }
}

void SqliteFormat::open_db(const std::string& path) {
    path_ = path;
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
        std::string e = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw Error(fmt::format("cannot open {} as a SQLite database: {}", path, e));
    }
    // The file is private until it is renamed: no journal on disk, no
    // syncs (one fsync when it is finished), a rollback journal in memory
    // so a failed batch (disk full) can still be undone.
    exec("PRAGMA journal_mode=MEMORY");
    exec("PRAGMA synchronous=OFF");
    exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("CREATE TABLE flows (exporter TEXT, observationDomainId INTEGER, templateId INTEGER)");
    columns_ = {{"exporter", 0}, {"observationDomainId", 1}, {"templateId", 2}};
}

void SqliteFormat::commit() {
    if (!in_txn_) return;
    exec("COMMIT");
    in_txn_ = false;
    if (stored_) *stored_ += pending_;
    pending_ = 0;
}

void SqliteFormat::close_db() {
    if (!db_) return;
    commit();
    for (auto& [k, st] : inserts_) sqlite3_finalize(st);
    inserts_.clear();
    if (sqlite3_close(db_) != SQLITE_OK) {
        std::string e = sqlite3_errmsg(db_);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw Error(fmt::format("cannot close the SQLite database {}: {}", path_, e));
    }
    db_ = nullptr;
}

void SqliteFormat::store(RotatingWriter& w, std::deque<Lines>& batch, int64_t now, uint64_t& stored) {
    stored_ = &stored;
    struct Reset {
        uint64_t*& p;
        ~Reset() { p = nullptr; }
    } reset{stored_};
    std::vector<size_t> cols;
    for (auto& [lines, records] : batch) {
        w.prepare(lines.size(), now);  // may finish a file (committing) and open the next
        if (!db_) throw Error(fmt::format("sqlite output: no database open for {}", w.current_path()));
        if (!in_txn_) {
            exec("BEGIN");
            in_txn_ = true;
        }
        each_record(lines, bad_lines_, [&](const Json& rec) {
            cols.clear();
            for (const auto& [k, v] : rec.items()) {
                auto it = columns_.find(k);
                if (it == columns_.end()) {
                    std::string quoted = "\"";
                    for (char c : k) {
                        if (c == '"') quoted += '"';
                        quoted += c;
                    }
                    quoted += '"';
                    // No declared type: every value keeps the type it is bound
                    // with (a declared INTEGER would turn a counter beyond
                    // 2^63-1, kept exact as text, into an inexact REAL).
                    exec(fmt::format("ALTER TABLE flows ADD COLUMN {}", quoted).c_str());
                    it = columns_.emplace(k, columns_.size()).first;
                }
                cols.push_back(it->second);
            }
            auto st_it = inserts_.find(cols);
            if (st_it == inserts_.end()) {
                std::vector<std::string> names(columns_.size());
                for (const auto& [name, i] : columns_) names[i] = name;
                std::string sql = "INSERT INTO flows (", marks;
                for (size_t i = 0; i < cols.size(); ++i) {
                    std::string q = "\"";
                    for (char c : names[cols[i]]) {
                        if (c == '"') q += '"';
                        q += c;
                    }
                    q += '"';
                    sql += (i ? "," : "") + q;
                    marks += i ? ",?" : "?";
                }
                sql += ") VALUES (" + marks + ")";
                sqlite3_stmt* st = nullptr;
                if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) fail("cannot prepare " + sql);
                st_it = inserts_.emplace(cols, st).first;
            }
            sqlite3_stmt* st = st_it->second;
            int i = 1;
            for (const auto& [k, v] : rec.items()) {
                if (v.is_number_unsigned()) {
                    uint64_t u = v.get<uint64_t>();
                    if (u <= static_cast<uint64_t>(INT64_MAX)) {
                        sqlite3_bind_int64(st, i, static_cast<sqlite3_int64>(u));
                    } else {
                        std::string t = std::to_string(u);  // beyond SQLite's integers: exact as text
                        sqlite3_bind_text(st, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
                    }
                } else if (v.is_number_integer()) {
                    sqlite3_bind_int64(st, i, v.get<int64_t>());
                } else if (v.is_number_float()) {
                    sqlite3_bind_double(st, i, v.get<double>());
                } else if (v.is_boolean()) {
                    sqlite3_bind_int(st, i, v.get<bool>() ? 1 : 0);
                } else if (v.is_null()) {
                    sqlite3_bind_null(st, i);
                } else if (v.is_string()) {
                    const auto& s = v.get_ref<const std::string&>();
                    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
                } else {
                    std::string t = v.dump(-1, ' ', false, Json::error_handler_t::replace);
                    sqlite3_bind_text(st, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
                }
                ++i;
            }
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            if (rc != SQLITE_DONE) fail("cannot insert a record");
        });
        pending_ += records;
        w.add_bytes(lines.size());
    }
    commit();
}

std::unique_ptr<LineFormat> make_line_format(const std::string& name) {
    if (name == "jsonl") return std::make_unique<JsonlFormat>();
    if (name == "csv") return std::make_unique<CsvFormat>();
    if (name == "sqlite") return std::make_unique<SqliteFormat>();
    throw Error(fmt::format("output format '{}' is not a record format (jsonl, csv, sqlite)", name));
}

}  // namespace bpfix
