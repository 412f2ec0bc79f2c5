// Package routerostest is a fake MikroTik RouterOS API server that speaks the
// real wire protocol over real TCP (or TLS), for tests and for
// `authwatch demo`.
//
// It implements what authwatch and its tests need from a router:
//
//   - framing: length-prefixed words with every length width (1 to 5
//     bytes), sentences ended by an empty word, .tag on every reply;
//   - /login in the post-6.43 style (=name= =password=); wrong credentials
//     get "!trap =message=invalid user name or password (6)";
//   - print/getall (with =.proplist=, =count-only=, =follow=, =follow-only=
//     and ?key=value / ?key / ?-key queries), listen, add, set and remove on
//     /ppp/active, /queue/simple, /ip/firewall/address-list and any menu
//     added with AddMenu; removals reach listeners as "=.dead=yes"; remove
//     of an unknown .id is "!trap =message=no such item";
//   - /log/print, /log/listen, /system/identity/print,
//     /system/resource/print, /cancel (a cancelled listen ends with
//     "!trap =category=2 =message=interrupted" then its !done) and /quit.
//
// Tests script it: AddSession, SetSessionAddress, RemoveSession,
// AppendLog, SetCredentials, FailCommand, KillConnections (a reboot or link
// drop), and inject faults with InjectListen, TrapListens and InjectRaw.
// ConnectSession, DisconnectSession and RejectLogin play whole customer
// stories (table and log lines together) for the demo.
//
// Not implemented: the pre-6.43 challenge login, query stack operators
// (?#), and the exact text of every RouterOS error.
package routerostest
