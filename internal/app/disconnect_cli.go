package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"authwatch/webui"
)

// DisconnectOptions tune `authwatch disconnect`.
type DisconnectOptions struct {
	Server    string // http(s)://host:port of authwatch
	Token     string // API token, sent as Authorization: Bearer
	Login     string
	SessionID string // "" for every open session of Login
	JSON      bool   // print the API's answer as it is
}

// ErrNotEnded is returned by Disconnect (the command) when the NAS did not
// end the session: refused or no answer. The result has been printed.
var ErrNotEnded = errors.New("the session was not ended")

// Disconnect is `authwatch disconnect`: it asks a running authwatch to end
// a customer's sessions at the NAS (POST /api/customers/{login}/disconnect)
// and prints the result, one line per session.
func Disconnect(ctx context.Context, o DisconnectOptions, out io.Writer) error {
	u, err := url.Parse(strings.TrimRight(o.Server, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("-server %q: not a URL like http://127.0.0.1:8080", o.Server)
	}
	u = u.JoinPath("api", "customers", o.Login, "disconnect")
	var body []byte
	if o.SessionID != "" {
		body, _ = json.Marshal(map[string]string{"session_id": o.SessionID})
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach authwatch at %s: %w", o.Server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return errors.New(resp.Status)
	}
	var res webui.DisconnectResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	if o.JSON {
		out.Write(bytes.TrimSpace(raw))
		fmt.Fprintln(out)
	} else if len(res.Sessions) == 0 {
		fmt.Fprintf(out, "%s: %s via %s: %s\n", o.Login, res.Result, res.Via, res.Detail)
	} else {
		for _, s := range res.Sessions {
			fmt.Fprintf(out, "%s session %s on %s: %s via %s: %s\n", o.Login, s.SessionID, s.NAS, s.Result, s.Via, s.Detail)
		}
	}
	if res.Result != "done" {
		return fmt.Errorf("%w: %s", ErrNotEnded, res.Result)
	}
	return nil
}
