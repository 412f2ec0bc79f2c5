package app_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
)

// upstream is a stand-in for the provider's RADIUS server: joao/right is
// accepted, anything else rejected with a Reply-Message.
func upstream(t *testing.T, secret string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			code, msg := radius.CodeAccessReject, "senha incorreta"
			if rfc2865.UserName_GetString(r.Packet) == "joao" && rfc2865.UserPassword_GetString(r.Packet) == "right" {
				code, msg = radius.CodeAccessAccept, ""
			}
			resp := r.Response(code)
			if msg != "" {
				rfc2865.ReplyMessage_SetString(resp, msg)
			}
			for _, avp := range r.Packet.Attributes {
				if avp.Type == rfc2865.ProxyState_Type {
					resp.Attributes.Add(avp.Type, avp.Attribute)
				}
			}
			w.Write(resp)
		}),
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return pc.LocalAddr().String()
}

// TestProxyModeWiring: the [proxy] block as the issue writes it runs in the
// daemon, and an agent sees the server's reason for a reject.
func TestProxyModeWiring(t *testing.T) {
	up := upstream(t, "upstream-secret")
	cfg, err := config.Parse(fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
auth = false
[store]
path = %q
[radius]
listen = "127.0.0.1:0"
[[nas]]
name = "bras-centro"
address = "127.0.0.0/8"
secret = %q

[proxy]
listen = "127.0.0.1:0"        # Access-Request from the [[nas]] clients
forward_accounting = false

[[proxy.upstream]]             # first is primary, the next ones are failover
address = %q
secret = "upstream-secret"
`, filepath.Join(t.TempDir(), "a.db"), secret, up))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	c, err := radiustest.NewClient(d.ProxyAddr(), []byte(secret), radiustest.ClientOptions{Retry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range []struct {
		password string
		code     radius.Code
	}{{"right", radius.CodeAccessAccept}, {"wrong", radius.CodeAccessReject}} {
		p, err := radiustest.Access{User: "joao", Password: tt.password, MAC: "18-FD-74-22-23-B7"}.Packet([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Exchange(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != tt.code {
			t.Fatalf("%s: %v, want %v", tt.password, resp.Code, tt.code)
		}
		if tt.code == radius.CodeAccessReject && rfc2865.ReplyMessage_GetString(resp) != "senha incorreta" {
			t.Errorf("reply message %q", rfc2865.ReplyMessage_GetString(resp))
		}
	}
	var cust watcher.Customer
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		getJSON(t, "http://"+d.HTTPAddr()+"/api/customers/joao", &cust)
		if cust.LastAuth != nil && !cust.LastAuth.Accepted {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cust.LastAuth == nil || cust.LastAuth.Accepted || cust.LastAuth.Reason != "senha incorreta" || cust.LastAuth.MAC != "18:FD:74:22:23:B7" || cust.LastAuth.Source != "proxy" {
		t.Fatalf("last auth %+v", cust.LastAuth)
	}
}
