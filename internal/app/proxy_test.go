package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/vendors/mikrotik"

	"authwatch/internal/config"
	"authwatch/radius/radiustest"
	"authwatch/watcher"
	"authwatch/watcher/watch"
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
			user := rfc2865.UserName_GetString(r.Packet)
			if (user == "joao" || user == "devedor") && rfc2865.UserPassword_GetString(r.Packet) == "right" {
				code, msg = radius.CodeAccessAccept, ""
			}
			resp := r.Response(code)
			if code == radius.CodeAccessAccept {
				// The plan, and for a customer who has not paid, the block.
				rate := "300M/150M"
				if user == "devedor" {
					rate = "1M/1M"
					mikrotik.MikrotikAddressList_SetString(resp, "bloqueados")
				}
				mikrotik.MikrotikRateLimit_SetString(resp, rate)
			}
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

// TestBlockedCustomerComesBackBlocked: the server's Access-Accept puts the
// customer in the "bloqueados" address-list; the state says blocked, the
// plan is the reduced one, and a reboot watch ends online_blocked.
func TestBlockedCustomerComesBackBlocked(t *testing.T) {
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
[probe]
enabled = false
[blocked]
address_lists = ["bloqueados"]
reduced_rate_limits = ["1M/1M"]
[proxy]
listen = "127.0.0.1:0"
[[proxy.upstream]]
address = %q
secret = "upstream-secret"
`, filepath.Join(t.TempDir(), "a.db"), secret, up))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := start(t, cfg)
	base := "http://" + d.HTTPAddr()
	old := radiustest.Acct{Status: rfc2866.AcctStatusType_Value_Start, User: "devedor", SessionID: "old", IP: netip.MustParseAddr("100.64.0.9")}
	send(t, d, old)
	resp, err := http.Post(base+"/api/watches", "application/json", strings.NewReader(`{"login":"devedor","timeout":60}`))
	if err != nil {
		t.Fatal(err)
	}
	var v watch.View
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()

	stop := old
	stop.Status = rfc2866.AcctStatusType_Value_Stop
	send(t, d, stop)
	c, err := radiustest.NewClient(d.ProxyAddr(), []byte(secret), radiustest.ClientOptions{Retry: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, _ := radiustest.Access{User: "devedor", Password: "right"}.Packet([]byte(secret))
	if r, err := c.Exchange(context.Background(), p); err != nil || r.Code != radius.CodeAccessAccept {
		t.Fatalf("access: %v %v", r, err)
	}
	back := old
	back.SessionID = "new"
	send(t, d, back)

	deadline := time.Now().Add(10 * time.Second)
	for v.Verdict == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		getJSON(t, base+"/api/watches/"+v.ID, &v)
	}
	if v.Verdict != watch.OnlineBlocked || !strings.Contains(v.VerdictText[watch.PtBR], "bloqueado (address-list bloqueados)") {
		t.Fatalf("watch %+v %q", v.Watch, v.VerdictText)
	}
	var cust watcher.Customer
	getJSON(t, base+"/api/customers/devedor", &cust)
	if cust.Blocked == nil || cust.Blocked.By != "address-list bloqueados" || cust.Plan != "1M/1M" || cust.Reduced == nil {
		t.Fatalf("state %+v blocked %+v reduced %+v", cust, cust.Blocked, cust.Reduced)
	}
}
