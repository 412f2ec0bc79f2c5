// Package radius is authwatch's RADIUS source: a Listener that receives
// Accounting-Requests from the concentrators (NAS) listed in the
// configuration, turns each one into a watcher.Event (see Decode) and answers
// with an Accounting-Response only after the Recorder reports the event
// committed to the store; and a Proxy (proxy mode, below) that stands in
// front of the provider's own RADIUS server and records every Access-Accept
// and Access-Reject it relays.
//
// What the Listener guarantees, and why:
//
//   - Ack after commit. The Accounting-Response is the NAS's signal that it may
//     forget the record; it is encoded and sent from the Recorder's done
//     callback, never before. When the store fails nothing is sent and the NAS
//     retransmits.
//   - Duplicates are stored once and answered again (RFC 5080 §2.2.2). A
//     retransmission (same source address and port, Identifier and Request
//     Authenticator) that arrives while the first copy is still being committed
//     is dropped; one that arrives after the answer is answered again, with
//     the same bytes, and not recorded. Entries live for
//     Options.DuplicateWindow, in a sharded two-generation cache with a hard
//     cap on entries, so memory is bounded under any rate.
//   - Nothing unverified is answered. Packets from sources that match no
//     configured client, packets that do not parse, packets whose Request
//     Authenticator does not verify with the client's secret and codes other
//     than Accounting-Request and Status-Server are dropped silently and
//     counted by reason (Stats). Warnings about unknown sources and bad secrets
//     are logged at most once per source per minute and never include the
//     secret.
//   - Malformed optional attributes (an IPv6 prefix with a bad length, an
//     integer of the wrong size) are left out of the event and counted; the
//     rest of the record is still stored and acknowledged, because dropping a
//     whole Stop for one bad attribute would lose more than it protects.
//
// The Listener uses layeh.com/radius for parsing, verification and attribute
// types, but its own read loop: a fixed number of reader goroutines share the
// UDP socket (no goroutine per datagram), read into reused buffers and hand
// events to the Recorder, which group-commits them.
//
// Counters: Listener.Stats returns monotonic counters (received, recorded,
// acked, duplicates answered, drops by reason, per-NAS packets by code) meant
// to be exported as Prometheus counters as they are. The operator's first
// questions have a counter each: a NAS with the wrong secret shows as
// bad_authenticator under its name, a NAS missing from the configuration as
// unknown_client, a failing store as store_error (and no acks).
//
// Wiring (see the Listener example): the application opens the UDP socket,
// starts the watcher.Recorder, runs the Listener, and on shutdown cancels the
// Listener's context first, closes the socket after Run returns, and stops
// the Recorder last, so that requests already handed over are still answered.
// SetClients swaps the NAS list on a configuration reload.
//
// Status-Server (RFC 5997) is answered with an Accounting-Response carrying a
// Message-Authenticator, so that `radclient status` and NAS health checks
// work; its Message-Authenticator must verify, like everything else.
//
// # Proxy mode
//
// A Proxy (configured by ProxyConfig, the [proxy] section) receives
// Access-Requests from the same NAS list on its own socket and forwards them
// to the upstream servers, first to last. What it guarantees, and why:
//
//   - BlastRADIUS (CVE-2024-3596). An Access-Request must carry a valid
//     Message-Authenticator, unless its Client allows it to be missing
//     (older RouterOS cannot send one); one that is present is always
//     verified. Refusals are counted (missing_message_authenticator,
//     bad_authenticator), never forwarded. Every request to an upstream and
//     every reply to a NAS carries a Message-Authenticator, first.
//   - Forwarded untouched but for re-signing: a fresh Identifier and
//     Request Authenticator per upstream hop, User-Password re-encrypted
//     with the upstream's secret, CHAP and MS-CHAP attributes as they came
//     (CHAP without CHAP-Challenge gets one holding the NAS's
//     authenticator, which was the challenge), one Proxy-State added. The
//     reply loses that Proxy-State, gets Tunnel-Password and the MPPE keys
//     re-encrypted for the NAS, and is signed with the NAS's secret. No
//     password or key is ever decrypted into memory as a whole: hidden
//     values are re-keyed block by block.
//   - Replies are verified (Response Authenticator, Message-Authenticator
//     when present or required by Upstream.RequireMessageAuthenticator); one
//     that does not verify is no reply.
//   - Identifiers: each upstream port has UpstreamSockets sockets of 256
//     Identifiers and a FIFO free list; requests past that wait for one, so
//     any number in flight are matched correctly.
//   - Retries and failover: each upstream is tried Retries+1 times, Timeout
//     apart (defaults 2 s and 1: 4 s per upstream), then the next one. An
//     upstream that leaves DeadAfter requests in a row unanswered is skipped
//     for DeadTime; when all are dead all are tried. With no answer at all
//     the NAS gets nothing (it retries, or asks its own next server) and a
//     log event "upstream timeout — no answer from …" is recorded for the
//     login, at most once a minute per login.
//   - Duplicates (RFC 5080): a retransmission while the upstream has not
//     answered is dropped (duplicate_inflight); once answered it gets the
//     cached reply, byte for byte. Failed requests are forgotten, so the
//     next retransmission is forwarded afresh.
//   - Events: every Access-Accept and Access-Reject becomes auth.accept or
//     auth.reject (Source "proxy"), with the NAS's name, User-Name,
//     Calling-Station-Id as MAC, the Reply-Message as reason ("rejected by
//     server" without one), the upstream latency and the reply's
//     attributes in Detail (Framed-IP-Address, Framed-Pool,
//     Mikrotik-Rate-Limit…, hidden ones left out). The reply is sent first
//     and the event recorded without waiting for its commit: the NAS's
//     timeout is short, and unlike an Accounting-Response an
//     authentication answer promises nothing about our storage.
//   - Accounting forwarding (ForwardAccounting): the Proxy is the
//     Listener's Options.Forward. A record is stored first, then forwarded;
//     the NAS is acked once both are done. When no upstream answers, the NAS
//     gets no ack, and its retransmission is forwarded again but not
//     stored again.
//   - Status-Server on the authentication port is answered by the Proxy
//     itself (an Access-Accept), not forwarded.
//
// Counters: Proxy.Stats (requests forwarded, replies by code, drops by
// reason, per upstream port: requests, retransmits, timeouts, bad replies,
// dead, a latency histogram), ready to export to Prometheus.
//
// Wiring (see the Proxy example): open the Access-Request socket, NewProxy,
// pass the Proxy as the accounting Listener's Options.Forward when
// forwarding, and run both. The Proxy waits, when stopping, for the
// Listeners forwarding through it to drain, so they may be cancelled
// together.
//
// # Dynamic authorization
//
// Disconnect sends an RFC 5176 Disconnect-Request to a NAS (authwatch as the
// Dynamic Authorization Client, for "End session") and reports Disconnect-ACK
// as ResultDone, Disconnect-NAK as ResultRefused with its Error-Cause, and
// silence after the retransmissions (the same bytes, the same Identifier) as
// ResultTimeout. The request carries a Message-Authenticator and the
// accounting-style Request Authenticator of RFC 5176 §3.5; an answer whose
// Response Authenticator or Message-Authenticator does not verify is no
// answer.
package radius
