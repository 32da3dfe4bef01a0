// X25519 Diffie-Hellman (RFC 7748), the key agreement behind HPKE and the encryption keys
// that members (recovery shares) and users (clean-room results) register.
//
// Keys are raw 32-byte strings. Public keys follow RFC 7748 §5: the top bit of the last
// byte is ignored and non-canonical values are reduced modulo p. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::crypto {

constexpr size_t kX25519KeySize = 32;

struct X25519KeyPair {
    Bytes private_key;  // 32 bytes, secret
    Bytes public_key;   // 32 bytes
};

// A fresh random key pair.
X25519KeyPair x25519_generate();

// Recomputes the public key of a 32-byte private key (clamped as in RFC 7748 §5).
// Errors: kInvalidArgument unless the key has 32 bytes.
Result<X25519KeyPair> x25519_from_private(ByteSpan private_key);

// The 32-byte shared secret X25519(private_key, peer_public).
// Errors: kInvalidArgument for wrong sizes; kCrypto "invalid public key: shared secret is
// zero (low-order point)" when the peer key is a low-order point (RFC 7748 §6.1 allows the
// check; we always make it so a peer cannot force a known secret).
Result<Bytes> x25519_shared_secret(ByteSpan private_key, ByteSpan peer_public);

// PEM encodings: "PRIVATE KEY" (PKCS#8) and "PUBLIC KEY" (SubjectPublicKeyInfo), the
// formats OpenSSL's command line reads and writes for X25519.
// Errors: kInvalidArgument for wrong sizes.
Result<std::string> x25519_private_to_pem(ByteSpan private_key);
Result<std::string> x25519_public_to_pem(ByteSpan public_key);
// Parsers. Errors: kInvalidArgument if unparsable or "not an X25519 key".
Result<X25519KeyPair> x25519_private_from_pem(std::string_view pem);
Result<Bytes> x25519_public_from_pem(std::string_view pem);

}  // namespace coffer::crypto
