package watcher

import (
	"slices"
	"strings"
)

// routerChecked folds what a RouterOS router said of a session when it got
// its address (its simple queue, the [blocked] address-lists holding its IP)
// into the customer's plan and block status.
//
// The router speaks for the moment it was asked, after the accept: its
// max-limit becomes the plan, and it sets, keeps or lifts a block or a
// reduction that a router found earlier. A block the RADIUS server's accept
// decided (Mikrotik-Address-List, Framed-Pool, a rate limit) stands until
// the next accept: the check may run a moment before RouterOS adds the
// session's IP to the list that accept named.
func (c *customer) routerChecked(ev Event, p BlockPolicy) {
	rc := ev.Detail.RouterCheck
	if rc.MaxLimit != "" {
		c.Plan = rc.MaxLimit
	}
	if rc.ListsChecked {
		by := ""
		for _, l := range rc.AddressLists {
			if slices.Contains(p.AddressLists, l) {
				by = "address-list " + l
				break
			}
		}
		c.Blocked = routerBlock(c.Blocked, by, ev)
	}
	if rc.MaxLimit != "" {
		by := ""
		if slices.Contains(p.ReducedRateLimits, rc.MaxLimit) {
			by = "max-limit " + rc.MaxLimit
		}
		c.Reduced = routerBlock(c.Reduced, by, ev)
	}
}

// routerBlock returns the block status after a router's finding by ("" for
// none) about cur.
func routerBlock(cur *Block, by string, ev Event) *Block {
	switch {
	case cur != nil && !fromRouter(cur):
		return cur // the accept's word stands
	case by == "":
		return nil
	case cur != nil && cur.By == by:
		return cur // still so: keep since when
	}
	return &Block{By: by, Since: ev.At, Source: ev.Source}
}

func fromRouter(b *Block) bool { return strings.HasPrefix(b.Source, "routeros:") }

// forgetRouterBlocks drops what routers found once the customer has no
// session left: it was said of sessions that are gone, and would otherwise
// make the next session look blocked before its own router check.
func (c *customer) forgetRouterBlocks() {
	if c.Blocked != nil && fromRouter(c.Blocked) {
		c.Blocked = nil
	}
	if c.Reduced != nil && fromRouter(c.Reduced) {
		c.Reduced = nil
	}
}
