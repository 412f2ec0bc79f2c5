// Package demo simulates a provider's network for `authwatch demo`: a NAS
// that sends real RADIUS accounting packets over UDP for a few dozen
// customers, with the things agents see every day (routers rebooted by their
// owners, power cuts, flapping radios, customers hanging up).
package demo
