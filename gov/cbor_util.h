// Internal CBOR helpers of the gov folder, on top of libcbor: a writer that emits the
// deterministic encoding (RFC 8949 section 4.2.1: shortest heads, definite lengths), a bounded
// pre-scan that refuses hostile input before libcbor allocates anything for it, and an owning
// pointer for libcbor items.
//
// Not a public API: signed_request.h is. Tests use the writer to build malformed messages.
// Everything here is thread-compatible (no shared state).
#pragma once

#include <cbor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::gov::detail {

// The most CBOR data items (every head counts once: a tag, an array, each element) that one
// scanned buffer may hold. A signed request has 6 in its envelope and at most 13 in its
// protected header; the bound keeps libcbor's allocations and recursion small.
constexpr size_t kMaxCborItems = 32;

// Appends CBOR items in their shortest encoding. Arrays and maps are written as a head
// followed by the caller's items; the caller is responsible for writing exactly that many.
class CborWriter {
  public:
    void uint(uint64_t v);
    // Writes the negative integer -1 - v (CBOR major type 1 with argument v).
    void negint(uint64_t v);
    void bstr(ByteSpan b);
    void tstr(std::string_view s);
    void array_head(size_t n);
    void map_head(size_t n);
    void tag(uint64_t t);
    // Raw bytes, for an item encoded elsewhere.
    void raw(ByteSpan b) { put_bytes(out_, b); }

    const Bytes& bytes() const { return out_; }
    Bytes take() { return std::move(out_); }

  private:
    Bytes out_;
};

// Checks that `data` starts with one well-formed CBOR item of definite lengths only, with at
// most kMaxCborItems items, and returns the length of that item (the caller decides whether
// trailing bytes are allowed). `what` names the buffer in error messages.
// Errors: kInvalidArgument ("<what>: indefinite-length item", "...: truncated", ...).
Result<size_t> scan_cbor_item(ByteSpan data, std::string_view what);

struct CborItemDeleter {
    void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using CborItemPtr = std::unique_ptr<cbor_item_t, CborItemDeleter>;

// Scans `data` with scan_cbor_item, refuses trailing bytes, then decodes it with cbor_load.
// Errors: kInvalidArgument naming the problem; kResourceExhausted if libcbor runs out of
// memory.
Result<CborItemPtr> load_cbor(ByteSpan data, std::string_view what);

}  // namespace coffer::gov::detail
