package webui

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"authwatch/internal/browser"
	"authwatch/webui/auth"
)

// pageTab drives one tab of a headless Chromium against a fixture.
type pageTab struct {
	t   *testing.T
	ctx context.Context
}

// newPageTab starts Chromium for the test, or skips it when there is none
// (and CI is unset), as TestLoginScreen does.
func newPageTab(t *testing.T) *pageTab {
	t.Helper()
	if _, err := os.Stat(browser.Path); err != nil && os.Getenv("CI") == "" {
		t.Skip("no Chromium at " + browser.Path)
	}
	ctx, cancel, err := browser.New(context.Background(), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	ctx, stop := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(stop)
	return &pageTab{t: t, ctx: ctx}
}

func (p *pageTab) open(u string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(u)); err != nil {
		p.t.Fatalf("open %s: %v", u, err)
	}
}

func (p *pageTab) eval(expr string) string {
	p.t.Helper()
	v, err := browser.Eval[string](p.ctx, expr)
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func (p *pageTab) is(expr string) bool {
	p.t.Helper()
	v, err := browser.Eval[bool](p.ctx, "!!("+expr+")")
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func (p *pageTab) wait(expr string) {
	p.t.Helper()
	if err := browser.WaitJS(p.ctx, expr, 10*time.Second); err != nil {
		p.t.Fatal(err)
	}
}

func (p *pageTab) click(id string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`document.getElementById(%q).click(); ""`, id))
}

// login logs in through login.html, which then opens next.
func (p *pageTab) login(f *fixture, user, password, next string) {
	p.t.Helper()
	p.open(f.url("/login.html#next=" + url.QueryEscape(next)))
	p.wait(`document.getElementById("login-form")`)
	p.eval(fmt.Sprintf(`
		document.getElementById("username").value = %q;
		document.getElementById("password").value = %q;
		document.getElementById("login-form").requestSubmit(); ""`, user, password))
	p.wait(fmt.Sprintf(`location.pathname === "/" && location.hash === %q`, strings.TrimPrefix(next, "/")))
}

// JavaScript snippets the tests share.
const (
	jsNavAdminShown = `(() => { const a = document.getElementById("nav-admin"); return !a.hidden && a.offsetParent !== null; })()`
	jsNotice        = `(document.getElementById("notice").hidden ? "" : document.getElementById("notice").className + ": " + document.getElementById("notice-text").textContent)`
)

// jsCell is the text of a cell of the account's row in the accounts table.
func jsCell(user, cell string) string {
	return fmt.Sprintf(`(document.querySelector('#users-table tr[data-user=%q] %s')?.textContent ?? "")`, user, cell)
}

// jsAuditColumn is the texts of one column of the audit table, joined by |.
func jsAuditColumn(col int) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#audit-table tbody tr")].map((r) => r.cells[%d].textContent).join("|")`, col)
}

// TestAdminPage drives #/admin in a real Chromium as an admin: the accounts
// listed, one added (and refused first, in the server's words), disabled
// after a confirmation and enabled again, made an admin and an agent again,
// given a new password that then logs in; the last admin kept; the audit
// log with its filters and its older pages; English on the switch. Every
// change is checked in the store, not only on the screen.
func TestAdminPage(t *testing.T) {
	p := newPageTab(t)
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	rootPW := f.addUser("root", auth.RoleAdmin)
	anaPW := f.addUser("ana", auth.RoleAgent)
	bg := context.Background()
	stored := func(name string) auth.User {
		t.Helper()
		u, err := f.store.UserByName(bg, name)
		if err != nil {
			t.Fatalf("store: user %s: %v", name, err)
		}
		return u
	}
	// loginStatus is POST /api/login's status for name and password.
	loginStatus := func(name, password string) int {
		t.Helper()
		return f.newClient().do("POST", "/api/login", map[string]string{"username": name, "password": password}).status
	}
	// Passwords never reach the screen, and no field keeps one once sent.
	noPassword := func(pw string) {
		t.Helper()
		if p.is(fmt.Sprintf(`document.body.innerText.includes(%q) || [...document.querySelectorAll("input")].some((i) => i.value === %[1]q)`, pw)) {
			t.Errorf("the page shows or keeps the password %q", pw)
		}
	}

	p.login(f, "root", rootPW, "/#/admin")
	p.wait(`document.querySelector('#users-table tr[data-user="root"]') && document.querySelector('#users-table tr[data-user="ana"]')`)
	p.wait(jsNavAdminShown)
	if got := p.eval(`document.getElementById("nav-admin").textContent + "|" + document.getElementById("nav-admin").getAttribute("aria-current")`); got != "Administração|page" {
		t.Errorf("admin link: %q", got)
	}
	if got := p.eval(`document.getElementById("view-title").textContent + "|" + document.activeElement.id + "|" + document.title`); got != "Administração|view-title|Administração — authwatch" {
		t.Errorf("title, focus, document title: %q", got)
	}
	if got := p.eval(jsCell("root", "th") + ` + "|" + ` + jsCell("root", ".role") + ` + "|" + ` + jsCell("root", ".state") + ` + "|" + ` + jsCell("ana", ".role")); got != "root (você)|Administrador|Ativa|Atendente" {
		t.Errorf("accounts: %q", got)
	}
	p.wait(`document.getElementById("audit-empty")?.textContent === "Nenhuma entrada ainda."`)

	// A password the server refuses: its own words, and the field emptied.
	fill := func(name, role, password string) {
		t.Helper()
		p.eval(fmt.Sprintf(`
			document.getElementById("add-name").value = %q;
			document.getElementById("add-role").value = %q;
			document.getElementById("add-password").value = %q;
			document.getElementById("user-add").requestSubmit(); ""`, name, role, password))
	}
	fill("bia", "agent", "curta")
	p.wait(`document.getElementById("add-error")?.textContent === "Não foi possível criar a conta: password: at least 8 characters"`)
	if got := p.eval(jsNotice); !strings.Contains(got, "tone-bad") || !strings.Contains(got, "at least 8 characters") {
		t.Errorf("notice after a refused account: %q", got)
	}
	if got := p.eval(`document.getElementById("add-name").value + "|" + document.getElementById("add-password").value`); got != "bia|" {
		t.Errorf("after a refusal, name|password fields: %q (the name stays, the password goes)", got)
	}
	if _, err := f.store.UserByName(bg, "bia"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("refused account stored: %v", err)
	}

	biaPW := "bia-senha-inicial-1"
	fill("bia", "agent", biaPW)
	p.wait(jsCell("bia", ".role") + ` === "Atendente" && ` + jsCell("bia", ".state") + ` === "Ativa"`)
	if got := p.eval(jsNotice); got != "banner tone-ok: Conta bia criada (Atendente). Passe a senha ao usuário por um canal seguro." {
		t.Errorf("notice after adding: %q", got)
	}
	if p.is(`document.getElementById("add-error")`) || p.eval(`document.getElementById("add-name").value + document.getElementById("add-password").value`) != "" {
		t.Error("the form is not emptied after adding")
	}
	if u := stored("bia"); u.Role != auth.RoleAgent || u.Disabled {
		t.Errorf("bia stored as %+v", u)
	}
	if st := loginStatus("bia", biaPW); st != 200 {
		t.Errorf("bia logs in with the password given on the page: %d", st)
	}
	noPassword(biaPW)

	// Disabling asks first; cancelling changes nothing.
	p.click("u-toggle-bia")
	p.wait(`document.getElementById("u-confirm-bia") && document.activeElement.id === "u-cancel-bia"`)
	if got := p.eval(`document.getElementById("u-confirm-text").textContent`); !strings.HasPrefix(got, "Desativar bia?") {
		t.Errorf("confirmation: %q", got)
	}
	if stored("bia").Disabled {
		t.Fatal("bia disabled before the confirmation")
	}
	p.click("u-cancel-bia")
	p.wait(`!document.getElementById("u-confirm-bia") && document.activeElement.id === "u-toggle-bia"`)
	if stored("bia").Disabled {
		t.Fatal("bia disabled after cancelling")
	}
	p.click("u-toggle-bia")
	p.wait(`document.getElementById("u-confirm-bia")`)
	p.click("u-confirm-bia")
	p.wait(jsCell("bia", ".state") + ` === "Desativada" && document.getElementById("u-toggle-bia").textContent === "Reativar"`)
	if !stored("bia").Disabled {
		t.Fatal("the page shows bia disabled, the store does not")
	}
	if st := loginStatus("bia", biaPW); st != 403 {
		t.Errorf("disabled bia logs in: %d", st)
	}
	if got := p.eval(jsNotice); got != "banner tone-ok: Conta bia desativada." {
		t.Errorf("notice after disabling: %q", got)
	}

	p.click("u-toggle-bia")
	p.wait(jsCell("bia", ".state") + ` === "Ativa" && document.getElementById("u-toggle-bia").textContent === "Desativar"`)
	if stored("bia").Disabled {
		t.Fatal("the page shows bia enabled, the store does not")
	}

	p.click("u-role-bia")
	p.wait(jsCell("bia", ".role") + ` === "Administrador" && document.getElementById("u-role-bia").textContent === "Tornar atendente"`)
	if r := stored("bia").Role; r != auth.RoleAdmin {
		t.Fatalf("bia's role in the store: %s", r)
	}
	p.click("u-role-bia")
	p.wait(jsCell("bia", ".role") + ` === "Atendente" && document.getElementById("u-role-bia").textContent === "Tornar administrador"`)
	if r := stored("bia").Role; r != auth.RoleAgent {
		t.Fatalf("bia's role in the store: %s", r)
	}

	// The server keeps its last admin, and the page says why in its words.
	p.click("u-role-root")
	p.wait(jsNotice + `.includes("tone-bad")`)
	if got := p.eval(jsNotice); !strings.Contains(got, `Não foi possível alterar root: user "root" is the last enabled admin`) {
		t.Errorf("notice after demoting the last admin: %q", got)
	}
	if r := stored("root").Role; r != auth.RoleAdmin || p.eval(jsCell("root", ".role")) != "Administrador" {
		t.Errorf("root's role: %s in the store, %q on the page", r, p.eval(jsCell("root", ".role")))
	}

	// A new password: refused when short, then set; it logs in, the old one no longer.
	before := stored("bia").PasswordChanged
	p.click("u-pw-bia")
	p.wait(`document.activeElement.id === "pw-new" && document.querySelector('label[for="pw-new"]').textContent === "Nova senha para bia"`)
	setPassword := func(pw string) {
		t.Helper()
		p.eval(fmt.Sprintf(`document.getElementById("pw-new").value = %q; document.getElementById("pw-form").requestSubmit(); ""`, pw))
	}
	setPassword("curta2")
	p.wait(`document.getElementById("pw-error")?.textContent.includes("password: at least 8 characters")`)
	if got := p.eval(`document.getElementById("pw-new").value`); got != "" {
		t.Errorf("the refused password stays in the field: %q", got)
	}
	newPW := "bia-nova-senha-2"
	setPassword(newPW)
	p.wait(`!document.getElementById("pw-form") && document.getElementById("notice-text").textContent === "Senha de bia alterada."`)
	if st := loginStatus("bia", newPW); st != 200 {
		t.Errorf("bia logs in with the new password: %d", st)
	}
	if st := loginStatus("bia", biaPW); st != 401 {
		t.Errorf("bia logs in with the old password: %d", st)
	}
	if !stored("bia").PasswordChanged.After(before) {
		t.Error("password change time not moved")
	}
	noPassword(newPW)

	// The audit log: what two other sessions looked at.
	root := f.newClient()
	root.login("root", rootPW)
	ana := f.newClient()
	ana.login("ana", anaPW)
	for _, get := range []struct {
		c    *client
		path string
	}{{root, "/api/customers/alice"}, {ana, "/api/customers/bob"}} {
		if a := get.c.do("GET", get.path, nil); a.status != 200 {
			t.Fatalf("GET %s: %d %s", get.path, a.status, a.body)
		}
	}
	p.click("audit-filter") // no filter: the newest entries again
	p.wait(jsAuditColumn(3) + ` === "bob|alice"`)
	if got := p.eval(jsAuditColumn(1) + ` + "/" + ` + jsAuditColumn(2) + ` + "/" + ` + jsAuditColumn(4)); got != "ana|root/abriu o cliente|abriu o cliente/127.0.0.1|127.0.0.1" {
		t.Errorf("audit rows (user/action/from): %q", got)
	}
	p.eval(`document.getElementById("audit-login").value = "alice"; document.getElementById("audit-filters").requestSubmit(); ""`)
	p.wait(jsAuditColumn(3) + ` === "alice"`)
	if got := p.eval(jsAuditColumn(1)); got != "root" {
		t.Errorf("alice's audit users: %q", got)
	}
	p.eval(`document.getElementById("audit-login").value = ""; document.getElementById("audit-user").value = "ana"; document.getElementById("audit-filters").requestSubmit(); ""`)
	p.wait(jsAuditColumn(1) + ` === "ana"`)
	p.eval(`document.getElementById("audit-login").value = "ninguem"; document.getElementById("audit-filters").requestSubmit(); ""`)
	p.wait(`document.getElementById("audit-empty")?.textContent === "Nenhuma entrada com estes filtros."`)

	// More entries than a page: "older entries" fetches the rest, each once.
	for i := range 60 {
		if a := ana.do("GET", fmt.Sprintf("/api/customers/c%02d", i), nil); a.status != 200 {
			t.Fatalf("GET c%02d: %d", i, a.status)
		}
	}
	all, err := f.auth.Audit(bg, auth.AuditQuery{Limit: auth.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	p.click("audit-clear")
	p.wait(`document.querySelectorAll("#audit-table tbody tr").length === 50 && document.getElementById("audit-older")`)
	if got := p.eval(`document.getElementById("audit-login").value + document.getElementById("audit-user").value`); got != "" {
		t.Errorf("filters after clearing: %q", got)
	}
	p.click("audit-older")
	p.wait(fmt.Sprintf(`document.querySelectorAll("#audit-table tbody tr").length === %d && document.getElementById("audit-end")`, len(all)))
	ids := p.eval(`[...document.querySelectorAll("#audit-table tbody tr")].map((r) => r.dataset.id).join(",")`)
	var want []string
	for _, e := range all {
		want = append(want, fmt.Sprint(e.ID))
	}
	if ids != strings.Join(want, ",") {
		t.Errorf("audit rows' ids\n got %s\nwant %s (newest first, each once)", ids, strings.Join(want, ","))
	}

	// English.
	p.click("lang")
	p.wait(`document.getElementById("view-title").textContent === "Administration"`)
	if got := p.eval(jsCell("bia", ".role") + ` + "|" + ` + jsCell("bia", ".state") + ` + "|" + document.getElementById("audit-title").textContent + "|" + document.getElementById("nav-admin").textContent + "|" + document.getElementById("u-toggle-bia").textContent`); got != "Agent|Enabled|Audit log|Admin|Disable" {
		t.Errorf("in English: %q", got)
	}
}

// TestAdminPageClosed: an agent who opens #/admin gets a plain "admins only"
// (the API answers 403) and no admin link; neither does desk mode, which
// has no accounts.
func TestAdminPageClosed(t *testing.T) {
	p := newPageTab(t)
	f, _ := apiFixture(t, fixtureOptions{accounts: func(*auth.Options) {}})
	f.addUser("root", auth.RoleAdmin)
	anaPW := f.addUser("ana", auth.RoleAgent)

	p.login(f, "ana", anaPW, "/#/admin")
	p.wait(`document.getElementById("admin-status")?.textContent.startsWith("Esta página é só para administradores.")`)
	if p.is(jsNavAdminShown) {
		t.Error("an agent sees the admin link")
	}
	if p.is(`document.getElementById("users-table") || !document.getElementById("users").hidden || !document.getElementById("audit").hidden`) {
		t.Error("an agent sees the accounts or the audit log")
	}
	if got := p.eval(`document.getElementById("view-title").textContent`); got != "Administração" {
		t.Errorf("title: %q", got)
	}

	desk, _ := apiFixture(t, fixtureOptions{})
	p.open(desk.url("/#/admin"))
	p.wait(`document.getElementById("admin-status")?.textContent.includes("modo balcão")`)
	if p.is(jsNavAdminShown) {
		t.Error("desk mode shows the admin link")
	}
}
