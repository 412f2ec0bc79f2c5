package config_test

import (
	"strings"
	"testing"

	"authwatch/internal/config"
)

// The keys of "End session": [[nas]] coa_port and coa_secret, [actions].
func TestDisconnectKeys(t *testing.T) {
	c, err := config.Parse(minimal)
	if err != nil {
		t.Fatal(err)
	}
	n := c.NAS[0]
	if n.CoAPort != 3799 || n.DisconnectSecret().Reveal() != "s3cret" || c.Actions.AgentsMayDisconnect {
		t.Errorf("defaults: coa_port %d, secret %q, agents_may_disconnect %v", n.CoAPort, n.DisconnectSecret().Reveal(), c.Actions.AgentsMayDisconnect)
	}
	text := strings.Replace(minimal, `secret = "s3cret"`, "secret = \"s3cret\"\ncoa_port = 1700\ncoa_secret = \"coa\"", 1) +
		"\n[actions]\nagents_may_disconnect = true\n"
	if c, err = config.Parse(text); err != nil {
		t.Fatal(err)
	}
	if n = c.NAS[0]; n.CoAPort != 1700 || n.DisconnectSecret().Reveal() != "coa" || !c.Actions.AgentsMayDisconnect {
		t.Errorf("set: %+v %+v", n, c.Actions)
	}
	for _, bad := range []string{"coa_port = 70000", "coa_port = -1"} {
		_, err := config.Parse(strings.Replace(minimal, `secret = "s3cret"`, "secret = \"s3cret\"\n"+bad, 1))
		if err == nil || !strings.Contains(err.Error(), "nas[0].coa_port") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := config.Parse(minimal + "\n[actions]\nagents_may_kick = true\n"); err == nil || !strings.Contains(err.Error(), "actions.agents_may_kick") {
		t.Errorf("unknown [actions] key: %v", err)
	}
}
