// Package radiustest builds RADIUS accounting packets and sends them over
// real UDP: the NAS side of authwatch's tests, of the demo's simulated NAS
// and of the load generator.
//
//   - Acct describes an Accounting-Request in the terms of the event it
//     should become; Acct.Packet and Acct.Encode produce it.
//   - Access describes an Access-Request (PAP or CHAP, with the
//     Message-Authenticator a NAS safe from BlastRADIUS sends), for the
//     proxy mode's tests; ReplyMessageAuthenticatorOK checks an answer's.
//   - Client sends requests and waits for verified answers, retransmitting
//     like a NAS. It is safe for concurrent use and keeps many requests in
//     flight: 256 per socket (the Identifier is one octet), ClientOptions.Sockets
//     sockets.
//   - NeedCommand finds an external tool (radclient, freeradius) for
//     interop tests.
//
// The package depends only on layeh.com/radius, not on authwatch's own
// packages, so anything may use it.
package radiustest
