// Package radius is authwatch's RADIUS accounting source: a Listener that
// receives Accounting-Requests from the concentrators (NAS) listed in the
// configuration, turns each one into a watcher.Event (see Decode) and answers
// with an Accounting-Response only after the Recorder reports the event
// committed to the store.
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
package radius
