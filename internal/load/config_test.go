package load

import (
	"flag"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mix
		bad  bool
	}{
		{in: "start=1,interim=8,stop=1", want: Mix{1, 8, 1}},
		{in: " Start = 2 , update=3 ", want: Mix{Start: 2, Interim: 3}},
		{in: "interim-update=1", want: Mix{Interim: 1}},
		{in: "start=0,stop=0", bad: true},
		{in: "start=-1,stop=1", bad: true},
		{in: "start", bad: true},
		{in: "accounting-on=1", bad: true},
	} {
		got, err := ParseMix(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseMix(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if m, _ := ParseMix(DefaultMix.String()); m != DefaultMix {
		t.Errorf("DefaultMix does not round-trip: %v", m)
	}
}

func TestParseSources(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "127.0.0.2, 127.0.0.3", want: []string{"127.0.0.2", "127.0.0.3"}},
		{in: "127.0.1.0/29", want: []string{"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4", "127.0.1.5", "127.0.1.6"}},
		{in: "127.0.1.8/31", want: []string{"127.0.1.8", "127.0.1.9"}},
		{in: "127.0.0.9/32", want: []string{"127.0.0.9"}},
		{in: "::1", want: []string{"::1"}},
		{in: "10.0.0.0/8", bad: true},
		{in: "127.0.0.300", bad: true},
	} {
		got, err := ParseSources(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseSources(%q): %v", tc.in, err)
			continue
		}
		var want []netip.Addr
		for _, s := range tc.want {
			want = append(want, netip.MustParseAddr(s))
		}
		if !slices.Equal(got, want) {
			t.Errorf("ParseSources(%q) = %v, want %v", tc.in, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		fs := flag.NewFlagSet("load", flag.ContinueOnError)
		f := BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return f.Config()
	}
	t.Setenv("AUTHWATCH_LOAD_SECRET", "")
	if _, err := parse(); err == nil {
		t.Error("no secret accepted")
	}
	c, err := parse("-secret", "s", "-requests", "500")
	if err != nil || c.Requests != 500 || c.Duration != 0 {
		t.Errorf("-requests alone: %+v, %v; want no time limit", c, err)
	}
	c, err = parse("-secret", "s", "-requests", "500", "-duration", "2s")
	if err != nil || c.Duration != 2*time.Second {
		t.Errorf("-requests and -duration: duration %v, %v", c.Duration, err)
	}
	t.Setenv("AUTHWATCH_LOAD_SECRET", "from-env")
	t.Setenv("AUTHWATCH_TOKEN", "tok")
	c, err = parse("-mix", "start=1", "-bind", "127.0.0.2")
	if err != nil || string(c.Secret) != "from-env" || c.WS.Token != "tok" || c.Mix != (Mix{Start: 1}) || len(c.Sources) != 1 {
		t.Errorf("env and flags: %+v, %v", c, err)
	}
	if _, err := parse("-secret", "s", "-mix", "bogus=1"); err == nil {
		t.Error("bad -mix accepted")
	}
}
