package radius

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
)

// Client is a NAS allowed to send accounting (and, in proxy mode,
// Access-Requests): its name (the event's NAS field), the address or network
// it sends from, and the shared secret.
type Client struct {
	Name   string
	Prefix netip.Prefix
	Secret []byte
	// AllowMissingMessageAuthenticator lets the Proxy accept this NAS's
	// Access-Requests without a Message-Authenticator. Off (the default),
	// they are refused and counted: without one, an attacker on the path
	// can forge the server's answer (BlastRADIUS, CVE-2024-3596). Turn it
	// on only for a NAS that cannot send one (RouterOS before 7.15, for
	// instance). A Message-Authenticator that is present is always
	// verified.
	AllowMissingMessageAuthenticator bool
}

// String and LogValue leave the secret out, so that a Client printed or
// logged by mistake does not leak it.
func (c Client) String() string { return c.Name + " (" + c.Prefix.String() + ")" }

// LogValue implements slog.LogValuer.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("prefix", c.Prefix.String()))
}

// client is a Client as the read loop uses it, with its counters.
type client struct {
	name      string
	secret    []byte
	allowNoMA bool
	stats     *nasCounters
}

// clientTable finds the client a packet came from. It is immutable once
// built; SetClients swaps in a new one.
type clientTable struct {
	hosts    map[netip.Addr]*client // single addresses: the common case
	prefixes []prefixClient         // networks, longest prefix first
}

type prefixClient struct {
	prefix netip.Prefix
	*client
}

// buildClients validates cs and builds the lookup table. Counters are taken
// from counters by name, so that they survive a reload.
func buildClients(cs []Client, counters func(name string) *nasCounters) (*clientTable, error) {
	t := &clientTable{hosts: make(map[netip.Addr]*client)}
	var errs []error
	for i, c := range cs {
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("client %d: no name", i))
			continue
		case !c.Prefix.IsValid():
			errs = append(errs, fmt.Errorf("client %q: no address", c.Name))
			continue
		case len(c.Secret) == 0:
			errs = append(errs, fmt.Errorf("client %q: empty secret", c.Name))
			continue
		}
		cl := &client{name: c.Name, secret: slices.Clone(c.Secret), allowNoMA: c.AllowMissingMessageAuthenticator, stats: counters(c.Name)}
		p := c.Prefix.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.IsSingleIP() {
			if _, dup := t.hosts[p.Addr()]; !dup { // first match wins
				t.hosts[p.Addr()] = cl
			}
			continue
		}
		t.prefixes = append(t.prefixes, prefixClient{prefix: p, client: cl})
	}
	// Stable: among prefixes of the same length the first configured wins.
	slices.SortStableFunc(t.prefixes, func(a, b prefixClient) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
	return t, errors.Join(errs...)
}

// lookup returns the client for a source address, or nil.
func (t *clientTable) lookup(a netip.Addr) *client {
	a = a.Unmap() // a dual-stack socket reports IPv4 sources as ::ffff:a.b.c.d
	if c := t.hosts[a.WithZone("")]; c != nil {
		return c
	}
	for i := range t.prefixes {
		if t.prefixes[i].prefix.Contains(a.WithZone("")) {
			return t.prefixes[i].client
		}
	}
	return nil
}
