# The verifiable part of the ledger: entry codec, secrets, Merkle tree, signatures,
# receipts, the Ledger facade and offline verification (included by ledger/CMakeLists.txt).
coffer_library(coffer_ledger
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/entry.cc
    ${CMAKE_CURRENT_LIST_DIR}/secrets.cc
    ${CMAKE_CURRENT_LIST_DIR}/merkle.cc
    ${CMAKE_CURRENT_LIST_DIR}/signature.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt.cc
    ${CMAKE_CURRENT_LIST_DIR}/verify.cc
    ${CMAKE_CURRENT_LIST_DIR}/ledger.cc
  DEPS coffer_ledger_storage coffer_kv coffer_crypto nlohmann_json::nlohmann_json)

coffer_test(ledger_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/entry_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/merkle_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/receipt_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/ledger_test.cc
  DEPS coffer_ledger)
