// Helpers shared by the kv tests (not part of the library).
#pragma once

#include <map>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "kv/store.h"

namespace coffer::kv::testing {

// map -> key -> (value, version): everything a reader at `at` can observe.
using Dump = std::map<std::string, std::map<Bytes, std::pair<Bytes, Seqno>>>;

inline Dump dump(Store& store, Seqno at) {
    Dump out;
    auto tx = store.begin_at(at);
    EXPECT_TRUE(tx.ok()) << tx.status().to_string();
    if (!tx.ok()) {
        return out;
    }
    for (const std::string& name : store.map_names()) {
        std::vector<Bytes> keys;
        Status s = tx->range(name, {}, std::nullopt, 0, [&](ByteSpan key, ByteSpan value) {
            out[name][Bytes(key.begin(), key.end())].first = Bytes(value.begin(), value.end());
            keys.emplace_back(key.begin(), key.end());
            return true;
        });
        EXPECT_TRUE(s.ok()) << s.to_string();
        for (const Bytes& key : keys) {
            auto version = tx->get_version(name, key);
            EXPECT_TRUE(version.has_value());
            out[name][key].second = version.value_or(0);
        }
    }
    return out;
}

inline Dump dump(Store& store) {
    return dump(store, store.current().seqno);
}

inline Bytes b(std::string_view s) {
    return to_bytes(s);
}

// Commits one put, expecting success; returns the new seqno.
inline Seqno put_one(Store& store, std::string_view map, std::string_view key,
                     std::string_view value) {
    Transaction tx = store.begin();
    EXPECT_TRUE(tx.put(map, as_bytes(key), as_bytes(value)).ok());
    auto r = store.commit(std::move(tx));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->id.seqno : 0;
}

inline Seqno remove_one(Store& store, std::string_view map, std::string_view key) {
    Transaction tx = store.begin();
    EXPECT_TRUE(tx.remove(map, as_bytes(key)).ok());
    auto r = store.commit(std::move(tx));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->id.seqno : 0;
}

inline std::optional<std::string> get_str(Transaction& tx, std::string_view map,
                                          std::string_view key) {
    auto v = tx.get(map, as_bytes(key));
    if (!v.has_value()) {
        return std::nullopt;
    }
    return to_string(*v);
}

}  // namespace coffer::kv::testing
