package load

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a run. Its JSON form is what `authwatch load
// -json` prints and what bench/ reads.
type Report struct {
	Server      string  `json:"server"`
	Mode        string  `json:"mode"` // "open" (Rate) or "closed" (Concurrency)
	Rate        float64 `json:"rate,omitempty"`
	MaxInFlight int     `json:"max_in_flight,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Duration    string  `json:"duration,omitempty"`
	Requests    int64   `json:"requests,omitempty"`
	NAS         int     `json:"nas"`
	Customers   int     `json:"customers"`
	Mix         string  `json:"mix"`
	Retry       string  `json:"retry"`
	Tries       int     `json:"tries"`
	Seed        uint64  `json:"seed"`

	// Sent counts requests (first transmissions), by kind in SentByKind.
	// Every request sent ends acked, lost (no answer after Tries
	// datagrams) or aborted (the run was interrupted): Sent = Acked + Lost
	// + Aborted. Retransmitted counts the extra datagrams.
	Sent          int64            `json:"sent"`
	SentByKind    map[string]int64 `json:"sent_by_kind"`
	Acked         int64            `json:"acked"`
	Retransmitted int64            `json:"retransmitted"`
	Lost          int64            `json:"lost"`
	Aborted       int64            `json:"aborted"`
	Errors        int64            `json:"errors"`
	// StrayAnswers match no request in flight or do not verify (late
	// answers to requests already given up, a wrong secret);
	// DuplicateAnswers answer a request already answered (both it and its
	// retransmission were answered); SendErrors are datagrams the socket
	// refused (ICMP port unreachable), counted as sent and retransmitted.
	StrayAnswers     int64 `json:"stray_answers"`
	DuplicateAnswers int64 `json:"duplicate_answers"`
	SendErrors       int64 `json:"send_errors"`

	// Elapsed runs from the first request to the last fate, in seconds.
	Elapsed float64 `json:"elapsed_s"`
	// SentPerSec is requests over the time they were issued; AckedPerSec
	// acks over the time from the first request to the last ack.
	SentPerSec  float64 `json:"sent_per_s"`
	AckedPerSec float64 `json:"acked_per_s"`
	// AckLatency runs from a request's first transmission to its verified
	// answer, retransmissions included.
	AckLatency Latency `json:"ack_latency"`
	// ScheduleLag (open loop) runs from when a request was due to its
	// first transmission: how far the generator fell behind its schedule,
	// waiting for MaxInFlight or CPU.
	ScheduleLag *Latency `json:"schedule_lag,omitempty"`

	WS *WSReport `json:"websocket,omitempty"`

	// OpenAtStart is how many customers the run starts with online (as many
	// as the mix keeps online: Interim+Stop weight over the total), their
	// sessions opened before the run; OpenSessions how many are online at
	// the end.
	OpenAtStart  int `json:"open_at_start"`
	OpenSessions int `json:"open_sessions"`
}

// WriteJSON writes r as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r as a table for people.
func (r *Report) WriteText(w io.Writer) {
	var how string
	if r.Mode == "open" {
		how = fmt.Sprintf("open loop at %.0f req/s (at most %d in flight)", r.Rate, r.MaxInFlight)
	} else {
		how = fmt.Sprintf("closed loop, %d in flight", r.Concurrency)
	}
	var limit []string
	if r.Duration != "" {
		limit = append(limit, r.Duration)
	}
	if r.Requests > 0 {
		limit = append(limit, fmt.Sprintf("%d requests", r.Requests))
	}
	fmt.Fprintf(w, "authwatch load → %s: %s, %s; %d NAS, %d customers, mix %s, retry %s × %d\n\n",
		r.Server, how, strings.Join(limit, " or "), r.NAS, r.Customers, r.Mix, r.Retry, r.Tries)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "requests\tsent\tstart\tinterim\tstop\tacked\tretransmitted\tlost\taborted\t\n")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Sent, r.SentByKind["start"], r.SentByKind["interim"], r.SentByKind["stop"],
		r.Acked, r.Retransmitted, r.Lost, r.Aborted)
	tw.Flush()
	fmt.Fprintf(w, "\nthroughput  %.0f acked/s (sent %.0f/s) over %.2fs\n", r.AckedPerSec, r.SentPerSec, r.Elapsed)
	if r.StrayAnswers+r.DuplicateAnswers+r.SendErrors+r.Errors > 0 {
		fmt.Fprintf(w, "anomalies   stray answers %d, duplicate answers %d, send errors %d, errors %d\n",
			r.StrayAnswers, r.DuplicateAnswers, r.SendErrors, r.Errors)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\tcount\tmin\tp50\tp90\tp99\tp99.9\tmax\tmean\t\n")
	row := func(name string, l Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, l.Count, l.MinMS, l.P50MS, l.P90MS, l.P99MS, l.P999MS, l.MaxMS, l.MeanMS)
	}
	row("ack", r.AckLatency)
	if r.ScheduleLag != nil {
		row("schedule lag", *r.ScheduleLag)
	}
	if r.WS != nil {
		row("event→websocket", r.WS.Latency)
	}
	tw.Flush()
	if s := r.WS; s != nil {
		fmt.Fprintf(w, "\nwebsocket   %d subscribers on one login each + %d on the firehose: events expected %d, received %d, missing %d, unexpected %d; %d subscribers cut off\n",
			s.Logins, s.Firehose, s.Expected, s.Received, s.Missing, s.Unexpected, s.Disconnected)
	}
	fmt.Fprintf(w, "sessions    %d open at the start (opened before the run), %d at the end\n", r.OpenAtStart, r.OpenSessions)
}
