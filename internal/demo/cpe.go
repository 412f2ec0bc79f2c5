package demo

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

var models = []string{"TP-Link Archer C6", "Huawei EchoLife HG8245H", "ZTE F670L", "Intelbras Twibi Giga", "Mercusys AC12G", "FiberHome AN5506-04"}

// CPEs serves a web page for the customers' routers on their own loopback
// addresses (Linux routes all of 127.0.0.0/8 to the loopback interface), so
// that the demo's probe reaches a real HTTP server. Every seventh customer's
// router has remote management off and answers nothing.
type CPEs struct {
	Port    int
	servers []*http.Server
}

// StartCPEs listens on every customer's IP, on one port shared by all.
func StartCPEs(customers []*Customer) (*CPEs, error) {
	c := &CPEs{}
	for i, cu := range customers {
		if i%7 == 6 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(cu.IP.String(), strconv.Itoa(c.Port)))
		if err != nil {
			if c.Port == 0 {
				return nil, fmt.Errorf("demo CPE on %s: %w", cu.IP, err)
			}
			continue
		}
		if c.Port == 0 {
			c.Port = ln.Addr().(*net.TCPAddr).Port
		}
		model := models[i%len(models)]
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><html><head><title>%s</title></head><body>Login</body></html>", model)
		})}
		go srv.Serve(ln)
		c.servers = append(c.servers, srv)
	}
	if len(c.servers) == 0 {
		return nil, errors.New("demo CPE: no customer address could be listened on")
	}
	return c, nil
}

// Close stops every CPE page.
func (c *CPEs) Close() {
	for _, s := range c.servers {
		s.Close()
	}
}
