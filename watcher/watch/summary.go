package watch

import (
	"fmt"
	"strings"
	"time"

	"authwatch/watcher"
)

// Lang is a language of the ticket summary.
type Lang string

// The languages summaries are written in; pt-BR is the default.
const (
	PtBR Lang = "pt-BR"
	En   Lang = "en"
)

// multipleLogins keys the text of an auth_failing verdict whose rejects say
// the login is already online: the fix is ending the old session, not the
// password.
const multipleLogins Verdict = "auth_failing/multiple_logins"

// ParseLang accepts "pt-BR", "pt", "en" (any case); anything else is pt-BR.
func ParseLang(s string) Lang {
	if strings.HasPrefix(strings.ToLower(s), "en") {
		return En
	}
	return PtBR
}

type phrases struct {
	header, login, ticket, agent            string
	started, startedOffline                 string
	dropped, rejected, accepted, online     string
	reachable, unreachable, newDrop, outage string
	result, running, staleAt, action        string
	verdicts                                map[Verdict]string
	reasons                                 map[string]string
}

var text = map[Lang]phrases{
	PtBR: {
		header: "Acompanhamento de reinício", login: "login", ticket: "protocolo", agent: "atendente",
		started:        "%s início do acompanhamento; sessão ativa em %s, IP %s, MAC %s",
		startedOffline: "%s início do acompanhamento; cliente já estava offline",
		dropped:        "%s sessão caiu — %s",
		rejected:       "%s autenticação rejeitada (%s)",
		accepted:       "%s autenticação aceita",
		online:         "%s autenticado, IP %s, MAC %s, concentrador %s",
		reachable:      "%s equipamento responde em HTTP (%s)",
		unreachable:    "%s equipamento não responde em HTTP (%s)",
		newDrop:        "%s a nova sessão caiu de novo (%s)",
		outage:         "Aviso: falha em massa no concentrador %s desde %s (%s) — provavelmente não é o equipamento do cliente",
		result:         "Resultado: %s",
		running:        "em andamento (%s), etapa: %s",
		staleAt:        " (em %s, aberta desde %s UTC)",
		action:         "%s ação do atendente: %s",
		verdicts: map[Verdict]string{
			OK:                "reinício concluído — autenticou e o equipamento responde, em %s",
			AuthFailing:       "autenticação falhando — %d rejeições: %s",
			multipleLogins:    "a sessão antiga ainda está aberta no concentrador (Multiple logins) — %d rejeições; encerre a sessão antiga%s",
			NoAttempt:         "nenhuma tentativa de autenticação após a queda — verificar o equipamento, a fibra/ONU ou o rádio, não o login",
			OnlineUnreachable: "autenticou (IP %s), mas o equipamento não responde em HTTP",
			MACChanged:        "voltou de outro MAC (antes %s, agora %s) — é outro roteador",
			NoDrop:            "a sessão não caiu — o cliente pode não ter reiniciado o roteador",
			OnlineBlocked:     "autenticou, mas está bloqueado (%s) — verificar situação financeira",
			Cancelled:         "acompanhamento encerrado pelo atendente",
		},
		reasons: map[string]string{
			"wrong password": "senha incorreta", "unknown user": "usuário desconhecido", "no password sent": "nenhuma senha enviada",
			"already online — an old session is still open (Multiple logins)": "já está online — uma sessão antiga ainda está aberta (Multiple logins)",
			"rejected by server": "rejeitado pelo servidor", "Lost-Carrier": "sem sinal do roteador: desligado, sem energia ou sem fibra/rádio (Lost-Carrier)",
			"User-Request": "o próprio roteador desconectou (User-Request)", "Admin-Reset": "desconectado pelo provedor (Admin-Reset)",
			"Session-Timeout": "tempo máximo de sessão (Session-Timeout)", "Idle-Timeout": "inatividade (Idle-Timeout)",
			"NAS-Reboot": "o concentrador reiniciou (NAS-Reboot)", "NAS-Request": "o concentrador encerrou (NAS-Request)",
		},
	},
	En: {
		header: "Reboot watch", login: "login", ticket: "ticket", agent: "agent",
		started:        "%s watch started; session up on %s, IP %s, MAC %s",
		startedOffline: "%s watch started; the customer was already offline",
		dropped:        "%s session dropped — %s",
		rejected:       "%s authentication rejected (%s)",
		accepted:       "%s authentication accepted",
		online:         "%s authenticated, IP %s, MAC %s, concentrator %s",
		reachable:      "%s equipment answers over HTTP (%s)",
		unreachable:    "%s equipment does not answer over HTTP (%s)",
		newDrop:        "%s the new session dropped again (%s)",
		outage:         "Notice: mass outage on concentrator %s since %s (%s) — likely not the customer's equipment",
		result:         "Result: %s",
		running:        "running (%s), step: %s",
		staleAt:        " (on %s, open since %s UTC)",
		action:         "%s agent action: %s",
		verdicts: map[Verdict]string{
			OK:                "reboot worked — authenticated and the equipment answers, in %s",
			AuthFailing:       "authentication failing — %d rejects: %s",
			multipleLogins:    "the old session is still open on the concentrator (Multiple logins) — %d rejects; end the old session%s",
			NoAttempt:         "no authentication attempt after the drop — check the equipment, the fibre/ONU or the radio, not the login",
			OnlineUnreachable: "authenticated (IP %s) but the equipment does not answer over HTTP",
			MACChanged:        "came back from another MAC (was %s, now %s) — a different router",
			NoDrop:            "the session never dropped — the customer may not have rebooted the router",
			OnlineBlocked:     "authenticated but blocked (%s) — check billing",
			Cancelled:         "watch ended by the agent",
		},
		reasons: map[string]string{
			"Lost-Carrier": "the router went silent: powered off, no power, or no fibre/radio (Lost-Carrier)",
			"User-Request": "the router hung up itself (User-Request)", "Admin-Reset": "disconnected by the provider (Admin-Reset)",
		},
	},
}

// Reason returns a reject or stop reason in lang's words where it is a known
// one, as given otherwise.
func Reason(lang Lang, reason string) string {
	if r, ok := text[lang].reasons[reason]; ok {
		return r
	}
	return reason
}

// VerdictText says the watch's verdict (or progress) in plain words.
func (w *Watch) VerdictText(lang Lang, now time.Time) string {
	p := text[lang]
	switch w.Verdict {
	case "":
		return fmt.Sprintf(p.running, w.Elapsed(now).Round(time.Second), w.Step)
	case OK:
		return fmt.Sprintf(p.verdicts[OK], w.Elapsed(now).Round(time.Second))
	case AuthFailing:
		if w.MultipleLogins {
			where := ""
			if s := w.Stale; s != nil {
				where = fmt.Sprintf(p.staleAt, s.NAS, s.At.Format("2006-01-02 15:04"))
			}
			return fmt.Sprintf(p.verdicts[multipleLogins], len(w.Rejects), where)
		}
		return fmt.Sprintf(p.verdicts[AuthFailing], len(w.Rejects), w.rejectReasons(lang))
	case OnlineUnreachable:
		return fmt.Sprintf(p.verdicts[OnlineUnreachable], w.After.IP)
	case OnlineBlocked:
		by := ""
		if w.Blocked != nil {
			by = w.Blocked.By
		}
		return fmt.Sprintf(p.verdicts[OnlineBlocked], by)
	case MACChanged:
		return fmt.Sprintf(p.verdicts[MACChanged], w.Before.MAC, w.After.MAC)
	}
	return p.verdicts[w.Verdict]
}

// rejectReasons lists the distinct reasons, most frequent first.
func (w *Watch) rejectReasons(lang Lang) string {
	count := map[string]int{}
	var order []string
	for _, r := range w.Rejects {
		why := Reason(lang, r.Reason)
		if count[why] == 0 {
			order = append(order, why)
		}
		count[why]++
	}
	for i := 1; i < len(order); i++ { // few reasons: insertion sort keeps ties in order
		for j := i; j > 0 && count[order[j]] > count[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return strings.Join(order, ", ")
}

// Summary is the plain text an agent pastes into the ticket: what happened,
// when (in loc), and the verdict. Actions are what agents did meanwhile
// (an ended stale session: kind "action" events), listed in time order with
// the rest.
func (w *Watch) Summary(lang Lang, loc *time.Location, now time.Time, actions ...watcher.Event) string {
	p := text[lang]
	hm := func(t time.Time) string { return t.In(loc).Format("15:04:05") }
	var b strings.Builder
	head := []string{p.header, p.login + " " + w.Login}
	if w.Ticket != "" {
		head = append(head, p.ticket+" "+w.Ticket)
	}
	if w.Agent != "" {
		head = append(head, p.agent+" "+w.Agent)
	}
	b.WriteString(strings.Join(head, " — ") + "\n")

	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	add := func(at time.Time, format string, args ...any) {
		lines = append(lines, line{at, fmt.Sprintf(format, append([]any{hm(at)}, args...)...)})
	}
	if s := w.Before; s != nil {
		add(w.Started, p.started, s.NAS, dash(s.IP), dash(s.MAC))
	} else {
		add(w.Started, p.startedOffline)
	}
	drops := 0
	for _, m := range w.Marks {
		switch m.Step {
		case Dropped:
			if m.At.Equal(w.Started) && w.Before == nil {
				continue // already offline: said above
			}
			if drops++; drops > 1 {
				add(m.At, p.newDrop, dash(Reason(lang, m.Note)))
			} else {
				add(m.At, p.dropped, dash(Reason(lang, m.Note)))
			}
		}
	}
	for _, r := range w.Rejects {
		add(r.At, p.rejected, Reason(lang, r.Reason))
	}
	if s := w.After; s != nil {
		add(s.At, p.online, dash(s.IP), dash(s.MAC), s.NAS)
	}
	if h := w.HTTP; h != nil {
		if h.Up {
			what := h.Title
			if what == "" {
				what = h.Reason
			}
			add(h.At, p.reachable, what)
		} else {
			add(h.At, p.unreachable, h.Reason)
		}
	}
	for _, a := range actions {
		add(a.At, p.action, a.Reason)
	}
	// Events are listed in time order, whatever their kind.
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && lines[j].at.Before(lines[j-1].at); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	if o := w.Outage; o != nil {
		b.WriteString(fmt.Sprintf(p.outage, o.NAS, hm(o.Since), o.Cause) + "\n")
	}
	b.WriteString(fmt.Sprintf(p.result, w.VerdictText(lang, now)) + "\n")
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
