// Package load is authwatch's RADIUS accounting load generator, behind
// `authwatch load` and the benchmarks in bench/.
//
// It simulates NAS (one UDP socket each, optionally bound to a chosen
// 127.0.0.x source address) whose customers log in, send Interim-Updates and
// log out in a configurable mix, each customer's requests in order. A
// request unanswered for Retry is retransmitted as a NAS does: the same
// datagram, same Identifier and Request Authenticator; after Tries datagrams
// it counts as lost. Load is open loop (a fixed rate, whatever the answers)
// or closed loop (a fixed number of requests in flight).
//
// The report counts requests sent, acked, retransmitted and lost exactly,
// and gives ack latency percentiles from a fixed-size log-linear histogram
// (1.6 % precision), so a run of millions of requests needs no more memory
// than a short one.
//
// With WS set it also opens websocket subscribers on authwatch's /ws (one
// per customer login, and/or the login=* firehose) and measures
// event-to-websocket latency: from a request's first transmission to the
// moment its event is read off each subscriber's socket. Events are matched
// to requests by Acct-Session-Id and Acct-Session-Time, which the generator
// keeps unique per request; no extra attribute is sent.
//
// It works against any RADIUS accounting server (FreeRADIUS included): only
// the websocket part is authwatch's own.
package load
