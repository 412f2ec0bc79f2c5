// Package frlog follows a FreeRADIUS radius.log file live, like tail -F, and
// records every authentication FreeRADIUS logs there — Login OK, Login
// incorrect, Invalid user, Multiple logins — as auth.accept and auth.reject
// events with Source "freeradius:<name>": the login, the NAS (the FreeRADIUS
// client's short name, mapped through Config.Clients), the NAS-Port, the
// calling station's MAC, and why a login was refused in plain words.
//
// FreeRADIUS writes these lines only with auth = yes in the log section of
// radiusd.conf. They are where the reasons live: the stock radpostauth table
// has no NAS, MAC or reason.
//
// # Passwords
//
// With auth_badpass = yes (and auth_goodpass = yes) FreeRADIUS prints the
// password the customer's router sent: "[joao/s3nha]". The parser drops it
// before anything else sees the line, and unparsed lines are counted, never
// logged, so a password reaches neither the store, the page nor authwatch's
// own log. The line does not say whether the password was printed, and both
// halves may contain '/': the login is taken to end at the first '/'. That
// always removes the whole password; the price is that a login which itself
// contains '/' is cut short there (such logins are rare on PPPoE). A module
// message that happens to contain the password is withheld as a whole.
//
// # Following the file
//
// Run starts at the end of the file on the first run (Config.Backfill reads
// some lines before it), and afterwards resumes where the last committed
// batch ended: the position (device, inode, offset and the timestamp of the
// file's first line) is saved in a watcher.PositionStore after every batch
// of events is committed, so a restart neither replays nor skips lines. It
// survives rotation by rename (the old file is read to its end, and for as
// long as lines keep coming — FreeRADIUS writes to it until a HUP makes it
// reopen its log — until 10 seconds pass without one), copytruncate (Debian's logrotate default for radius.log: a file
// shorter than the offset, or whose first line changed, is read again from
// the start, after the lines not yet read are taken from the copy beside it),
// and the file being absent for a while. fsnotify wakes the reader on
// changes; a poll every second backs it up, since notifications miss changes
// on NFS and some other file systems. A last line without its newline waits
// until it is complete.
//
// # Lines
//
// The FreeRADIUS 3.x format (2.x is the same without the "(N)" request
// number):
//
//	Tue Nov 25 14:02:10 2026 : Auth: (7) Login OK: [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)
//	Tue Nov 25 14:02:11 2026 : Auth: (8) Login incorrect (pap: Cleartext password does not match "known good" password): [joao/senha] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)
//	Tue Nov 25 14:02:12 2026 : Auth: (9) Multiple logins (max 1) : [joao] (from client bras1 port 15728640 cli AA-BB-CC-DD-EE-FF)
//
// Lines forwarded through syslog (destination = syslog, or radius.log shipped
// by rsyslog) are read too, with an RFC 3339 or a BSD timestamp and the tag
// freeradius or radiusd. Other FreeRADIUS lines (Info, Error…) are ignored;
// lines of a shape the parser does not know are skipped and counted.
//
// FreeRADIUS 3.2 logs a second, bare "Login incorrect" for a request it has
// already logged as "Invalid user" or "Multiple logins"; the second line is
// merged into the first, so one attempt is one event.
//
// Reasons: "wrong password" (pap, chap, mschap mismatches), "unknown user"
// (no Auth-Type found — FreeRADIUS had no password to check against — and a
// bare "Invalid user", which is what the usual "reject when the user is not
// found" policy logs), ReasonMultipleLogins for "Multiple logins", "rejected
// by server" for a bare "Login incorrect" (Auth-Type := Reject, a policy);
// otherwise the module's own message.
package frlog
