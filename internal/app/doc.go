// Package app wires authwatch's parts into the daemon and the demo: the store,
// the recorder, the sources (RADIUS accounting, RouterOS…) and the web server,
// started together and stopped in the order that loses nothing: sources first,
// then the recorder (which commits and acknowledges what is queued), then the
// store.
package app
