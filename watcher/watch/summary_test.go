package watch_test

import (
	"strings"
	"testing"
	"time"

	"authwatch/watcher"
	"authwatch/watcher/watch"
)

func TestSummary(t *testing.T) {
	w := watch.Begin("w1", online, t0, 5*time.Minute, true)
	w.Ticket, w.Agent = "2026112512345", "Ana"
	for i, ev := range (evs{stop(10, "old"), reject(41, "wrong password"), start(65, "new", macOld), httpUp(69)}) {
		ev.Seq = int64(11 + i)
		if i == 3 {
			w.SetOutage(watch.Outage{NAS: "bras1", Since: at(5), Cause: "40 sessions stopped in 60s"})
		}
		w.Apply(ev)
	}
	saoPaulo := time.FixedZone("-03", -3*3600)

	pt := w.Summary(watch.PtBR, saoPaulo, at(100))
	for _, want := range []string{
		"protocolo 2026112512345", "atendente Ana", "login joao",
		"11:02:10 sessão caiu — sem sinal do roteador: desligado, sem energia ou sem fibra/rádio (Lost-Carrier)",
		"11:02:41 autenticação rejeitada (senha incorreta)",
		"11:03:05 autenticado, IP 100.64.3.9, MAC 18:FD:74:22:23:B7, concentrador bras1",
		"11:03:09 equipamento responde em HTTP (Archer C6)",
		"falha em massa no concentrador bras1 desde 11:02:05",
		"Resultado: reinício concluído — autenticou e o equipamento responde, em 1m9s",
	} {
		if !strings.Contains(pt, want) {
			t.Errorf("pt-BR summary lacks %q:\n%s", want, pt)
		}
	}
	// Lines are in time order: the drop comes before the reject.
	if strings.Index(pt, "sessão caiu") > strings.Index(pt, "rejeitada") {
		t.Errorf("out of order:\n%s", pt)
	}
	en := w.Summary(watch.ParseLang("en-US"), time.UTC, at(100))
	for _, want := range []string{"ticket 2026112512345", "14:02:41 authentication rejected (wrong password)", "Result: reboot worked"} {
		if !strings.Contains(en, want) {
			t.Errorf("English summary lacks %q:\n%s", want, en)
		}
	}
}

func TestVerdictTexts(t *testing.T) {
	failing := watch.Begin("w", online, t0, time.Minute, true)
	for i, ev := range (evs{stop(1, "old"), reject(2, "wrong password"), reject(3, "unknown user"), reject(4, "wrong password")}) {
		ev.Seq = int64(20 + i)
		failing.Apply(ev)
	}
	failing.Expire(at(60))
	changed := watch.Begin("w", online, t0, time.Minute, false)
	changed.Apply(watcher.Event{Seq: 20, At: at(1), Login: "joao", Kind: watcher.SessionStart, Source: "radius", NAS: "bras1", SessionID: "n", MAC: macNew, IP: "100.64.0.1"})
	tests := []struct {
		w    *watch.Watch
		lang watch.Lang
		want string
	}{
		{failing, watch.PtBR, "autenticação falhando — 3 rejeições: senha incorreta, usuário desconhecido"},
		{failing, watch.En, "3 rejects: wrong password, unknown user"},
		{changed, watch.PtBR, "antes 18:FD:74:22:23:B7, agora E4:8D:8C:00:00:01"},
		{watch.Begin("w", online, t0, time.Minute, true), watch.En, "running (10s), step: waiting_drop"},
	}
	for _, tt := range tests {
		if got := tt.w.VerdictText(tt.lang, at(10)); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q lacks %q", tt.lang, got, tt.want)
		}
	}
}

func TestSummaryListsAgentActions(t *testing.T) {
	w := watch.Begin("w1", online, t0, time.Minute, true)
	w.Apply(watcher.Event{Seq: 11, At: at(5), Login: "joao", Kind: watcher.AuthReject, Source: "freeradius:r1", Reason: "already online — an old session is still open (Multiple logins)"})
	w.Expire(at(60))
	ended := watcher.Event{At: at(70), Login: "joao", Kind: watcher.Action, Source: "agent:ana", Reason: "session ended by ana via radius: done"}
	text := w.Summary(watch.PtBR, time.UTC, at(80), ended)
	if !strings.Contains(text, "14:03:10 ação do atendente: session ended by ana via radius: done") {
		t.Errorf("summary lacks the action:\n%s", text)
	}
	if strings.Index(text, "ação do atendente") < strings.Index(text, "rejeitada") {
		t.Errorf("action not in time order:\n%s", text)
	}
}
