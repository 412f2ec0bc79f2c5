package routeros

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-routeros/routeros/v3"
)

// How authwatch uses go-routeros v3.0.1, and why (see LIBRARIES.md and the
// project's issue tracker):
//
//   - Two connections per router. In async mode (which Listen switches on)
//     Run sends a command before registering its reply tag, so a fast reply
//     is dropped and Run hangs (go-routeros/routeros#33), and every Listen
//     leaves a goroutine waiting on its context until the connection ends.
//     So listens live on a "listen" link that only ever carries the two
//     long-lived listens, and every command (the connection check, the
//     periodic /ppp/active print) runs in sync mode on a separate "command"
//     link, one at a time, bounded by socket deadlines because sync Run
//     ignores its context.
//   - Client.Queue is set: a listen channel with no buffer stalls the whole
//     connection. Every listen channel is drained until closed, also while
//     tearing down; listens are never cancelled with /cancel (which is a
//     Run, see above): closing the link ends them.
//   - Cancelling a context handed to the library makes its reader return
//     EOF to whoever is reading, which kills the connection, and races with
//     Client.Close (a send on the channel Close closes); so the only
//     context it gets is the link's own, cancelled after Client.Close.
//   - A frameGuard under the client refuses absurd word lengths that the
//     library would otherwise allocate.
//   - The library's logger prints every sentence at debug level, /login's
//     password included: it gets a handler that discards everything.

// Connection tuning.
const (
	listenQueue = 100 // Client.Queue: sentences buffered per listen
	// TCP keepalive finds a listen link whose peer vanished (power cut,
	// cable) in about idle + count × interval, since a quiet listen would
	// otherwise wait forever.
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	// teardownWait bounds waiting for the library's goroutines to end when a
	// link closes; past it they are reported and left behind.
	teardownWait = 5 * time.Second
)

// ErrLoginRefused is wrapped by the error of a connection attempt whose
// login the router refused (wrong user or password, no api policy).
var ErrLoginRefused = errors.New("login refused")

// link is one logged-in API connection.
type link struct {
	raw    net.Conn
	client *routeros.Client
	stop   func() bool // ends the context.AfterFunc that closes raw

	// Listen links only: the context the library's goroutines wait on.
	ctx      context.Context
	cancel   context.CancelFunc
	asyncErr <-chan error
	listens  []*routeros.ListenReply
}

// dialLink connects, does TLS if configured, and logs in, all within
// cfg.DialTimeout. onBad is told about framing violations.
func dialLink(ctx context.Context, cfg Config, password string, onBad func(error)) (*link, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	nd := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
	}}
	var raw net.Conn
	var err error
	if cfg.TLS {
		tc, terr := cfg.tlsConfig()
		if terr != nil {
			return nil, terr
		}
		raw, err = (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext(dctx, "tcp", cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("connect %s (tls): %w", cfg.Address, err)
		}
	} else {
		raw, err = nd.DialContext(dctx, "tcp", cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", cfg.Address, err)
		}
	}
	client, err := routeros.NewClient(&frameGuard{Conn: raw, onBad: onBad})
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("api client: %w", err)
	}
	client.SetLogHandler(slog.DiscardHandler)
	client.Queue = listenQueue
	l := &link{raw: raw, client: client}
	// Whatever the library is doing when Run's context ends, closing the
	// socket ends it.
	l.stop = context.AfterFunc(ctx, func() { raw.Close() })

	deadline, _ := dctx.Deadline()
	raw.SetDeadline(deadline)
	if err := client.LoginContext(dctx, cfg.User, password); err != nil {
		l.close(nil)
		var de *routeros.DeviceError
		if errors.As(err, &de) {
			return nil, fmt.Errorf("login as %q: %w: %s", cfg.User, ErrLoginRefused, de.Sentence.Map["message"])
		}
		return nil, fmt.Errorf("login as %q: %w", cfg.User, err)
	}
	raw.SetDeadline(time.Time{})
	return l, nil
}

// run executes one command in sync mode, within timeout. A *DeviceError
// (the router's !trap) leaves the link usable; any other error does not.
func (l *link) run(timeout time.Duration, words ...string) (*routeros.Reply, error) {
	l.raw.SetDeadline(time.Now().Add(timeout))
	defer l.raw.SetDeadline(time.Time{})
	return l.client.RunArgs(words)
}

// startListening switches l to async mode for listens; asyncErr then
// reports the end of the library's read loop.
func (l *link) startListening() {
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.asyncErr = l.client.AsyncContext(l.ctx)
}

// listen starts a listen on a link switched to async mode. Its reply
// channel must be drained until closed; close does that for whatever is
// left.
func (l *link) listen(words ...string) (*routeros.ListenReply, error) {
	r, err := l.client.ListenArgsQueueContext(l.ctx, words, listenQueue)
	if err != nil {
		return nil, err
	}
	l.listens = append(l.listens, r)
	return r, nil
}

// close ends the link and waits (bounded) for the library's goroutines. It
// must be called by the goroutine that used the link, once.
func (l *link) close(log *slog.Logger) {
	if l.stop != nil {
		l.stop()
	}
	// The socket first: a library write stuck on a dead peer holds the lock
	// Client.Close needs. The context last: its watchers call the reader's
	// Cancel, which sends on the channel Client.Close closes — a panic if
	// the two race; once Close has returned, Cancel sees the reader closed
	// and does nothing.
	l.raw.Close()
	l.client.Close()
	if l.cancel != nil {
		l.cancel()
	}
	var wg sync.WaitGroup
	for _, r := range l.listens {
		wg.Go(func() {
			for range r.Chan() {
			}
		})
	}
	if l.asyncErr != nil {
		wg.Go(func() {
			for range l.asyncErr {
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(teardownWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		if log != nil {
			log.Error("routeros: API client goroutines did not end; leaving them behind", "wait", teardownWait)
		}
	}
}
