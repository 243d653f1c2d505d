// KernelBtf: names looked up in a raw BTF file read in blocks. A file
// written by libbpf with every kind the walk must step over (so a wrong
// size for any of them misplaces what follows), and the running kernel's
// BTF compared with libbpf's own parse of it.
#include <gtest/gtest.h>
#include <linux/btf.h>

#include <fstream>
#include <string>

#include "btf_file.h"
#include "error.h"
#include "kernel_btf.h"

using namespace bpfix;
using bpfix::test::BtfPtr;
using bpfix::test::TempBtfFile;

namespace {

// Types of every kind, then the ones the tests look for; enough enumerators
// that the file spans several 64 KiB blocks.
struct Built {
    BtfPtr b{btf__new_empty()};
    int int_id = 0, proto_id = 0, ptr_id = 0, typedef_id = 0, func_id = 0, enum_id = 0, enum64_id = 0;
};

Built build() {
    Built x;
    btf* b = x.b.get();
    x.int_id = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
    int s = btf__add_struct(b, "sk_buff", 16);
    btf__add_field(b, "len", x.int_id, 0, 0);
    btf__add_field(b, "data_len", x.int_id, 32, 0);
    btf__add_union(b, "u", 4);
    btf__add_field(b, "a", x.int_id, 0, 0);
    btf__add_array(b, x.int_id, x.int_id, 8);
    btf__add_fwd(b, "later", BTF_FWD_STRUCT);
    btf__add_volatile(b, x.int_id);
    btf__add_const(b, x.int_id);
    btf__add_restrict(b, btf__add_ptr(b, s));
    btf__add_float(b, "double", 8);
    int v = btf__add_var(b, "counter", BTF_VAR_GLOBAL_ALLOCATED, x.int_id);
    btf__add_datasec(b, ".data", 4);
    btf__add_datasec_var_info(b, v, 0, 4);
    btf__add_decl_tag(b, "tag", s, -1);
    btf__add_type_tag(b, "user", x.int_id);
    // A second "sk_buff" of another kind: find() must match the kind too.
    btf__add_typedef(b, "sk_buff", s);
    x.enum_id = btf__add_enum(b, "skb_drop_reason", 4);
    for (int i = 0; i < 5000; ++i) btf__add_enum_value(b, ("SKB_DROP_REASON_R" + std::to_string(i)).c_str(), i);
    x.enum64_id = btf__add_enum64(b, "wide", 8, false);
    btf__add_enum64_value(b, "WIDE_BIG", 0x123456789ull);
    btf__add_enum64_value(b, "WIDE_SMALL", 7);
    x.proto_id = btf__add_func_proto(b, x.int_id);
    for (const char* p : {"ctx", "skb", "location", "reason"}) btf__add_func_param(b, p, x.int_id);
    x.ptr_id = btf__add_ptr(b, x.proto_id);
    x.typedef_id = btf__add_typedef(b, "btf_trace_kfree_skb", x.ptr_id);
    x.func_id = btf__add_func(b, "tcp_rcv_established", BTF_FUNC_GLOBAL, x.proto_id);
    return x;
}

}  // namespace

TEST(KernelBtf, FindsTypesByNameAndKindAfterEveryKind) {
    Built x = build();
    TempBtfFile file(x.b.get());
    KernelBtf k(file.path());
    auto td = k.find("btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
    ASSERT_TRUE(td);
    EXPECT_EQ(td->id, static_cast<uint32_t>(x.typedef_id));
    EXPECT_EQ(td->type, static_cast<uint32_t>(x.ptr_id));
    auto ptr = k.type(td->type);
    ASSERT_TRUE(ptr);
    EXPECT_EQ(ptr->kind, static_cast<uint32_t>(BTF_KIND_PTR));
    auto proto = k.type(ptr->type);
    ASSERT_TRUE(proto);
    EXPECT_EQ(proto->kind, static_cast<uint32_t>(BTF_KIND_FUNC_PROTO));
    EXPECT_EQ(proto->vlen, 4);
    auto fn = k.find("tcp_rcv_established", BTF_KIND_FUNC);
    ASSERT_TRUE(fn);
    EXPECT_EQ(fn->id, static_cast<uint32_t>(x.func_id));
    auto st = k.find("sk_buff", BTF_KIND_STRUCT);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->vlen, 2);
    EXPECT_EQ(k.find("sk_buff", BTF_KIND_TYPEDEF)->type, st->id);
    EXPECT_FALSE(k.find("sk_buff", BTF_KIND_ENUM));
    EXPECT_FALSE(k.find("no_such_name", BTF_KIND_FUNC));
    EXPECT_FALSE(k.find("sk_buf", BTF_KIND_STRUCT));  // a prefix is not a match
    EXPECT_FALSE(k.type(100000));
}

TEST(KernelBtf, ReadsEnumeratorsOfBothWidths) {
    Built x = build();
    TempBtfFile file(x.b.get());
    KernelBtf k(file.path());
    auto e = k.enumerators("skb_drop_reason");
    ASSERT_TRUE(e);
    ASSERT_EQ(e->size(), 5000u);
    EXPECT_EQ((*e)[0].name, "SKB_DROP_REASON_R0");
    EXPECT_EQ((*e)[4999].name, "SKB_DROP_REASON_R4999");
    EXPECT_EQ((*e)[4999].value, 4999);
    auto w = k.enumerators("wide");
    ASSERT_TRUE(w);
    ASSERT_EQ(w->size(), 2u);
    EXPECT_EQ((*w)[0].name, "WIDE_BIG");
    EXPECT_EQ((*w)[0].value, 0x123456789);
    EXPECT_FALSE(k.enumerators("sk_buff"));  // a struct, not an enum
    EXPECT_FALSE(k.enumerators("absent"));
}

TEST(KernelBtf, AFileThatIsNotBtfIsAClearError) {
    const std::string path = "/tmp/bpfix-not-btf";
    std::ofstream(path) << "this is not BTF at all, but long enough for a header";
    try {
        KernelBtf k(path);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path + ": not a BTF file"), std::string::npos) << e.what();
    }
    std::remove(path.c_str());
    try {
        KernelBtf k("/nonexistent/vmlinux");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/vmlinux"), std::string::npos) << e.what();
    }
}

TEST(KernelBtf, TheRunningKernelAgreesWithLibbpf) {
    if (!KernelBtf::available()) GTEST_SKIP() << "no kernel BTF";
    BtfPtr lib(btf__load_vmlinux_btf());
    ASSERT_TRUE(lib);
    KernelBtf k;
    const std::pair<const char*, int> wanted[] = {{"tcp_rcv_established", BTF_KIND_FUNC},
                                                  {"btf_trace_kfree_skb", BTF_KIND_TYPEDEF},
                                                  {"sk_buff", BTF_KIND_STRUCT},
                                                  {"bpf_attach_type", BTF_KIND_ENUM}};
    for (auto [name, kind] : wanted) {
        int id = btf__find_by_name_kind(lib.get(), name, kind);
        auto t = k.find(name, static_cast<uint32_t>(kind));
        ASSERT_EQ(id > 0, t.has_value()) << name;
        if (t) {
            EXPECT_EQ(t->id, static_cast<uint32_t>(id)) << name;
            EXPECT_EQ(t->vlen, btf_vlen(btf__type_by_id(lib.get(), t->id))) << name;
        }
    }
    auto attach = k.enumerators("bpf_attach_type");
    ASSERT_TRUE(attach);
    const btf_type* t = btf__type_by_id(lib.get(), btf__find_by_name_kind(lib.get(), "bpf_attach_type", BTF_KIND_ENUM));
    ASSERT_EQ(attach->size(), btf_vlen(t));
    const struct btf_enum* e = btf_enum(t);
    for (size_t i = 0; i < attach->size(); ++i) {
        EXPECT_EQ((*attach)[i].name, btf__name_by_offset(lib.get(), e[i].name_off));
        EXPECT_EQ((*attach)[i].value, e[i].val);
    }
}
