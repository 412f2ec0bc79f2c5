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

// Proxy mode with accounting forwarding: the NAS list is shared, the Proxy
// is the Listener's Options.Forward, and both run under the same context
// (the Proxy waits for the Listener to drain before closing its upstream
// sockets). The recorder outlives both.
func ExampleProxy() {
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

	clients := []radius.Client{{
		Name:   "bras-centro",
		Prefix: netip.MustParsePrefix("10.0.0.1/32"),
		Secret: []byte("s3cret"),
	}}
	cfg := radius.DefaultProxyConfig() // then decoded from [proxy]
	cfg.Listen = "0.0.0.0:1812"
	cfg.ForwardAccounting = true
	cfg.Upstreams = []radius.Upstream{{Address: "10.0.0.5:1812", AcctAddress: "10.0.0.5:1813", Secret: "upstream-secret"}}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err) // names the key: proxy.upstream[0].secret: required…
	}

	authConn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		log.Fatal(err)
	}
	proxy, err := radius.NewProxy(authConn, clients, rec, cfg, radius.ProxyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	acctConn, err := net.ListenPacket("udp", "0.0.0.0:1813")
	if err != nil {
		log.Fatal(err)
	}
	l, err := radius.NewListener(acctConn, clients, rec, radius.Options{Forward: proxy})
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan error, 2)
	go func() { done <- proxy.Run(ctx) }()
	go func() { done <- l.Run(ctx) }()
	<-ctx.Done()
	for range 2 {
		if err := <-done; err != nil {
			log.Print(err)
		}
	}
	authConn.Close()
	acctConn.Close()
	stopRecorder()
	<-recDone
}
