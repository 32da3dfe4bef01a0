// Node-to-node transport: consensus messages over mutual TLS (docs/replication.md,
// "Node-to-node channel"; byte layout in docs/formats/consensus-messages.md, "Transport").
//
// Each node listens on its node_address with its node certificate. A peer connects with its
// own node certificate as the client certificate; both sides accept the other only if its
// certificate is issued by the service identity (and, on the receiving side, the message's
// `from` must be the node id of that certificate). Messages to one peer are queued and sent
// in batches by one thread per peer over one persistent connection; a full queue or a failed
// connection drops messages, which Raft tolerates (it retransmits).
//
// Thread-safety: every public method is thread-safe. `deliver` is called on the server's
// I/O threads, concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "consensus/messages.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "net/server.h"
#include "node/config.h"

namespace coffer::node {

constexpr std::string_view kConsensusMessagesPath = "/consensus/messages";
// Header by which a sender says where it listens, so that a peer can answer a node it has
// not seen in the nodes map yet (a joining node, or one restarted on another port).
constexpr std::string_view kNodeAddressHeader = "x-coffer-node-address";
// Version of the batch framing (docs/formats/consensus-messages.md, "Transport"), sent in
// kTransportVersionHeader; a receiver refuses other versions (each message also carries its
// own format version).
constexpr uint32_t kTransportFormatVersion = 1;
constexpr std::string_view kTransportVersionHeader = "x-coffer-transport-version";
// Messages waiting for one peer; beyond it the oldest are dropped.
constexpr size_t kMaxQueuedMessagesPerPeer = 4096;
// Bytes of messages in one request body (a larger single message goes alone).
constexpr size_t kMaxBatchBytes = 8u << 20;
// Largest request body the node-to-node server accepts: one largest message plus framing.
constexpr size_t kMaxTransportBodyBytes = consensus::kMaxMessageBytes + 64;
// Wait after a failed connection before the next attempt to the same peer.
constexpr uint32_t kReconnectBackoffMs = 100;
// Certificates whose chain was verified, remembered by fingerprint (then cleared).
constexpr size_t kMaxVerifiedPeerCerts = 256;

struct TransportOptions {
    std::string node_id;
    ListenAddress listen;  // port 0: any free port
    std::string node_cert_pem;
    std::string node_key_pem;
    crypto::Certificate service_cert;
    uint32_t timeout_ms = 2000;
};

struct TransportStats {
    uint64_t messages_sent = 0;
    uint64_t messages_received = 0;
    uint64_t messages_dropped = 0;  // queue full, unknown peer, or failed connection
    uint64_t requests_refused = 0;  // bad certificate, bad framing, wrong sender
};

class PeerTransport {
  public:
    using Deliver = std::function<void(consensus::Message)>;

    // Binds the node-to-node server and starts accepting. Errors: those of HttpServer::start.
    static Result<std::unique_ptr<PeerTransport>> start(TransportOptions options, Deliver deliver);

    ~PeerTransport();
    PeerTransport(const PeerTransport&) = delete;
    PeerTransport& operator=(const PeerTransport&) = delete;

    uint16_t port() const;
    // The address peers should use for this node (the listen host with the bound port).
    ListenAddress advertised_address() const;

    // Records where `peer` listens (from the nodes map, a join answer, or the header above).
    void set_address(const consensus::NodeId& peer, const ListenAddress& address);
    std::optional<ListenAddress> address_of(const consensus::NodeId& peer) const;

    // Queues `msg` for msg.to. Dropped (counted) when the peer's address is unknown.
    void send(consensus::Message msg);

    // Stops the server and every sender thread. Idempotent.
    void stop();

    TransportStats stats() const;

  private:
    struct Peer;
    PeerTransport(TransportOptions options, Deliver deliver);
    net::HttpResponse handle(const net::HttpRequest& request);
    Result<std::string> authenticate(const net::HttpRequest& request);
    void sender_loop(const std::shared_ptr<Peer>& peer);

    TransportOptions options_;
    Deliver deliver_;
    std::unique_ptr<net::HttpServer> server_;

    mutable std::mutex mu_;
    bool stopping_ = false;
    std::map<consensus::NodeId, std::shared_ptr<Peer>> peers_;
    // Verified certificates: fingerprint -> (node id, not-after), so that an expired one is
    // verified again (and refused) rather than trusted from the cache.
    std::map<std::string, std::pair<std::string, int64_t>> verified_;

    std::atomic<uint64_t> sent_{0};
    std::atomic<uint64_t> received_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> refused_{0};
};

// Frames messages for one request body: per message a u32 little-endian length, then the
// encoded message (consensus/messages.h).
std::string frame_messages(const std::vector<Bytes>& encoded);
// Strict inverse. Errors: kInvalidArgument for truncation or an over-long length.
Result<std::vector<consensus::Message>> parse_framed_messages(std::string_view body);

}  // namespace coffer::node
