// Package watcher is authwatch's domain: the Event every source emits, the
// per-login State derived from events, the Store that keeps them, the Hub that
// fans them out to subscribers, and the Recorder that ties the three together
// (commit first, then update state, publish and acknowledge).
//
// Sources (RADIUS accounting, RouterOS, the CPE probe…) live in their own
// packages; each turns what it sees into Events and hands them to a Recorder.
package watcher
