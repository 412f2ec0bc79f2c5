package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"authwatch/watcher/routeros/routerostest"
)

// PasswordLogin is the RouterOS customer whose router keeps a wrong password
// for a while after each reboot: the "auth rejected" story.
const PasswordLogin = "demo.senha"

// Router is a simulated MikroTik concentrator: a fake RouterOS API server
// whose PPPoE sessions come and go, with the log lines a real one writes.
type Router struct {
	Server    *routerostest.Server
	Customers []*Customer
	Tempo     float64
	rnd       *rand.Rand
}

// NewRouter starts the fake API server on loopback with user and password.
func NewRouter(name, user, password string, customers []*Customer) (*Router, error) {
	srv, err := routerostest.New(routerostest.Options{User: user, Password: password, Identity: name})
	if err != nil {
		return nil, fmt.Errorf("demo router %s: %w", name, err)
	}
	return &Router{Server: srv, Customers: customers, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))}, nil
}

// Addr is the API address to configure in [[routeros]].
func (r *Router) Addr() string { return r.Server.Addr() }

func (r *Router) pause(ctx context.Context, d time.Duration) error { return sleep(ctx, d, r.Tempo) }

func (r *Router) connect(cu *Customer) {
	r.Server.ConnectSession(routerostest.Session{Name: cu.Login, CallerID: cu.MAC, Address: cu.IP.String(), Radius: true})
}

// Run plays the router's life until ctx ends, then closes the server.
func (r *Router) Run(ctx context.Context) error {
	defer r.Server.Close()
	for i, cu := range r.Customers {
		if i > 0 && r.rnd.IntN(8) == 0 {
			continue
		}
		r.connect(cu)
	}
	errc := make(chan error, 2)
	go func() { errc <- r.wrongPasswordCycle(ctx, r.Customers[0]) }()
	go func() { errc <- r.churn(ctx) }()
	<-errc
	<-errc
	return nil
}

// wrongPasswordCycle: the router is power-cycled, comes back with a wrong
// password (rejected three times), then someone fixes it and it connects.
func (r *Router) wrongPasswordCycle(ctx context.Context, cu *Customer) error {
	for {
		if err := r.pause(ctx, 50*time.Second); err != nil {
			return err
		}
		r.Server.DisconnectSession(cu.Login, "peer is not responding")
		for range 3 {
			if err := r.pause(ctx, 6*time.Second); err != nil {
				return err
			}
			r.Server.RejectLogin(cu.Login, cu.MAC)
		}
		if err := r.pause(ctx, 8*time.Second); err != nil {
			return err
		}
		r.connect(cu)
	}
}

func (r *Router) online(login string) bool {
	for _, s := range r.Server.Sessions() {
		if s.Name == login {
			return true
		}
	}
	return false
}

func (r *Router) churn(ctx context.Context) error {
	for {
		if err := r.pause(ctx, time.Duration(3+r.rnd.IntN(5))*time.Second); err != nil {
			return err
		}
		cu := r.Customers[1+r.rnd.IntN(len(r.Customers)-1)]
		if !r.online(cu.Login) {
			if r.rnd.IntN(3) == 0 {
				r.Server.RejectLogin(cu.Login, cu.MAC) // a customer who mistyped the new password
			} else {
				r.connect(cu)
			}
			continue
		}
		reasons := []string{"peer is not responding", "hungup", "peer is not responding", "session timeout"}
		r.Server.DisconnectSession(cu.Login, reasons[r.rnd.IntN(len(reasons))])
		if r.rnd.IntN(2) == 0 {
			if err := r.pause(ctx, time.Duration(4+r.rnd.IntN(8))*time.Second); err != nil {
				return err
			}
			r.connect(cu)
		}
	}
}
