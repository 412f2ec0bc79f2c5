package radius_test

import (
	"context"
	"log"
	"net"
	"net/netip"

	"authwatch/radius"
	"authwatch/watcher"
	"authwatch/watcher/sqlstore"
)

// The application's wiring: socket, recorder, listener; on shutdown the
// listener stops first, then the socket closes, then the recorder stops.
func ExampleListener() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	store, err := sqlstore.Open(ctx, sqlstore.Options{Driver: "sqlite", Path: "/var/lib/authwatch/authwatch.db"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	rec := watcher.NewRecorder(store, watcher.NewState(), watcher.NewHub(0), watcher.RecorderOptions{})
	recCtx, stopRecorder := context.WithCancel(context.Background())
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(recCtx) }()

	conn, err := net.ListenPacket("udp", "0.0.0.0:1813")
	if err != nil {
		log.Fatal(err)
	}
	clients := []radius.Client{{
		Name:   "bras-centro",
		Prefix: netip.MustParsePrefix("10.0.0.1/32"),
		Secret: []byte("s3cret"),
	}}
	l, err := radius.NewListener(conn, clients, rec, radius.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Run(ctx); err != nil { // until ctx ends
		log.Print(err)
	}
	conn.Close()
	stopRecorder()
	<-recDone
}
