#include "gov/cbor_util.h"

#include <array>

namespace coffer::gov::detail {
namespace {

// libcbor writes a head in at most 9 bytes (one initial byte and an 8-byte argument).
constexpr size_t kMaxCborHeadSize = 9;

template <typename Encoder, typename Value>
void append_head(Bytes& out, Encoder encode, Value v) {
    std::array<unsigned char, kMaxCborHeadSize> head{};
    size_t n = encode(v, head.data(), head.size());
    COFFER_CHECK(n > 0 && n <= head.size(), "libcbor failed to encode a CBOR head");
    out.insert(out.end(), head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n));
}

// State of the pre-scan: the items still owed to each open array, map or tag.
struct ScanState {
    std::vector<uint64_t> pending;
    size_t items = 0;
    bool called = false;
    bool done = false;
    std::string error;
};

ScanState& state(void* ctx) {
    return *static_cast<ScanState*>(ctx);
}

void fail(void* ctx, std::string message) {
    ScanState& s = state(ctx);
    s.called = true;
    if (s.error.empty()) {
        s.error = std::move(message);
    }
}

// Called once per decoded head; `children` is how many items must follow it.
void on_item(void* ctx, uint64_t children) {
    ScanState& s = state(ctx);
    s.called = true;
    s.items += 1;
    if (s.items > kMaxCborItems) {
        fail(ctx, "more than " + std::to_string(kMaxCborItems) + " CBOR items");
        return;
    }
    if (children > 0) {
        s.pending.push_back(children);
        return;
    }
    while (!s.pending.empty()) {
        if (--s.pending.back() > 0) {
            return;
        }
        s.pending.pop_back();
    }
    s.done = true;
}

void on_leaf(void* ctx) {
    on_item(ctx, 0);
}

void on_collection(void* ctx, size_t n, uint64_t per_entry) {
    // Checked before anything is pushed, so that a declared length of 2^64 - 1 can make
    // neither the count overflow nor libcbor allocate for it later.
    if (n > kMaxCborItems) {
        fail(ctx, "CBOR array or map declares " + std::to_string(n) + " entries");
        return;
    }
    on_item(ctx, n * per_entry);
}

void on_indefinite(void* ctx) {
    fail(ctx, "indefinite-length CBOR item (only definite lengths are allowed)");
}

cbor_callbacks make_scan_callbacks() {
    cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = [](void* ctx, uint8_t) { on_leaf(ctx); };
    cb.uint16 = [](void* ctx, uint16_t) { on_leaf(ctx); };
    cb.uint32 = [](void* ctx, uint32_t) { on_leaf(ctx); };
    cb.uint64 = [](void* ctx, uint64_t) { on_leaf(ctx); };
    cb.negint8 = [](void* ctx, uint8_t) { on_leaf(ctx); };
    cb.negint16 = [](void* ctx, uint16_t) { on_leaf(ctx); };
    cb.negint32 = [](void* ctx, uint32_t) { on_leaf(ctx); };
    cb.negint64 = [](void* ctx, uint64_t) { on_leaf(ctx); };
    cb.byte_string = [](void* ctx, cbor_data, size_t) { on_leaf(ctx); };
    cb.string = [](void* ctx, cbor_data, size_t) { on_leaf(ctx); };
    cb.byte_string_start = on_indefinite;
    cb.string_start = on_indefinite;
    cb.indef_array_start = on_indefinite;
    cb.indef_map_start = on_indefinite;
    cb.indef_break = on_indefinite;
    cb.array_start = [](void* ctx, size_t n) { on_collection(ctx, n, 1); };
    cb.map_start = [](void* ctx, size_t n) { on_collection(ctx, n, 2); };
    cb.tag = [](void* ctx, uint64_t) { on_item(ctx, 1); };
    cb.float2 = [](void* ctx, float) { on_leaf(ctx); };
    cb.float4 = [](void* ctx, float) { on_leaf(ctx); };
    cb.float8 = [](void* ctx, double) { on_leaf(ctx); };
    cb.undefined = on_leaf;
    cb.null = on_leaf;
    cb.boolean = [](void* ctx, bool) { on_leaf(ctx); };
    return cb;
}

std::string prefixed(std::string_view what, std::string_view message) {
    return std::string(what) + ": " + std::string(message);
}

}  // namespace

void CborWriter::uint(uint64_t v) {
    append_head(out_, cbor_encode_uint, v);
}

void CborWriter::negint(uint64_t v) {
    append_head(out_, cbor_encode_negint, v);
}

void CborWriter::bstr(ByteSpan b) {
    append_head(out_, cbor_encode_bytestring_start, b.size());
    put_bytes(out_, b);
}

void CborWriter::tstr(std::string_view s) {
    append_head(out_, cbor_encode_string_start, s.size());
    put_bytes(out_, as_bytes(s));
}

void CborWriter::array_head(size_t n) {
    append_head(out_, cbor_encode_array_start, n);
}

void CborWriter::map_head(size_t n) {
    append_head(out_, cbor_encode_map_start, n);
}

void CborWriter::tag(uint64_t t) {
    append_head(out_, cbor_encode_tag, t);
}

Result<size_t> scan_cbor_item(ByteSpan data, std::string_view what) {
    static const cbor_callbacks kCallbacks = make_scan_callbacks();
    ScanState s;
    size_t offset = 0;
    while (!s.done) {
        if (offset == data.size()) {
            return error(Errc::kInvalidArgument, prefixed(what, "truncated CBOR"));
        }
        s.called = false;
        cbor_decoder_result r =
            cbor_stream_decode(data.data() + offset, data.size() - offset, &kCallbacks, &s);
        if (r.status == CBOR_DECODER_NEDATA) {
            return error(Errc::kInvalidArgument, prefixed(what, "truncated CBOR"));
        }
        if (r.status != CBOR_DECODER_FINISHED || !s.called) {
            return error(Errc::kInvalidArgument, prefixed(what, "malformed CBOR"));
        }
        if (!s.error.empty()) {
            return error(Errc::kInvalidArgument, prefixed(what, s.error));
        }
        offset += r.read;
    }
    return offset;
}

Result<CborItemPtr> load_cbor(ByteSpan data, std::string_view what) {
    COFFER_ASSIGN_OR_RETURN(size_t length, scan_cbor_item(data, what));
    if (length != data.size()) {
        return error(Errc::kInvalidArgument,
                     prefixed(what, std::to_string(data.size() - length) +
                                        " trailing bytes after the CBOR item"));
    }

    cbor_load_result result{};
    CborItemPtr item(cbor_load(data.data(), data.size(), &result));
    if (item == nullptr) {
        if (result.error.code == CBOR_ERR_MEMERROR) {
            return error(Errc::kResourceExhausted, prefixed(what, "out of memory decoding CBOR"));
        }
        return error(Errc::kInvalidArgument, prefixed(what, "malformed CBOR"));
    }
    if (result.read != data.size()) {
        return error(Errc::kInvalidArgument, prefixed(what, "trailing bytes after the CBOR item"));
    }
    return item;
}

}  // namespace coffer::gov::detail
