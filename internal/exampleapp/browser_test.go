package exampleapp_test

// End-to-end tests in a real browser: Debian's Chromium, headless, driven
// through the DevTools protocol (github.com/chromedp/chromedp). The backend
// is served as http://localhost:PORT and the fake Pleo as
// http://127.0.0.1:PORT, two origins, so the flow cookie's trip to Pleo and
// back is the browser's own.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/connect/sqlitestore"
	"github.com/partnerkit/pleooauth/internal/exampleapp"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var screenshots = flag.String("screenshots", "", "write a PNG of each page the browser tests visit to this folder")

// chromium finds Debian's Chromium, or skips the test (fails it under
// CI=true, where the browser tests must run).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found: CI must run the browser tests (apt-get install -y chromium)")
	}
	t.Skip("no Chromium found: install it (apt-get install -y chromium) to run the browser tests")
	return ""
}

// companies are what the fake Pleo's consent page offers.
var (
	acme   = pleooauthtest.Company{Subject: "urn:pleo:company:0a1b2c3d-0000-4000-8000-000000000001", Name: "Acme ApS"}
	globex = pleooauthtest.Company{Subject: "urn:pleo:company:0a1b2c3d-0000-4000-8000-000000000002", Name: "Globex A/S"}
)

type browserFixture struct {
	t       *testing.T
	base    string // the backend, http://localhost:PORT
	pleo    *pleooauthtest.Server
	mgr     *connect.Manager
	store   connect.Store
	browser context.Context
	shot    int
}

func setupBrowser(t *testing.T) *browserFixture {
	exe := chromium(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	reg := examplereg.New("users:read", base+exampleapp.CallbackPath)
	reg.InitiationURI, reg.SettingsURI = base+exampleapp.ConnectPath, base+exampleapp.SettingsPath
	creds, err := pleooauth.NewCredentials("browser-client", "browser-secret-0123456789")
	require.NoError(t, err)
	pleo := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithConsentPage(acme, globex))
	t.Cleanup(pleo.Close)
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(pleo.Endpoints()))
	require.NoError(t, err)
	store, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "connections.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	key := []byte("0123456789abcdef0123456789abcdef")
	mgr, err := connect.NewManager(cfg, store, connect.WithKeys(key), connect.WithHTTPClient(pleo.Client()),
		connect.WithEndpoints(pleo.Endpoints()))
	require.NoError(t, err)
	accounts, err := exampleapp.NewSQLAccounts(t.Context(), store.DB())
	require.NoError(t, err)
	a, err := exampleapp.New(exampleapp.Config{Manager: mgr, FlowKey: key, Accounts: accounts})
	require.NoError(t, err)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a}}
	srv.Start()
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	browser, cancel = context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(browser), "starting Chromium")
	return &browserFixture{t: t, base: base, pleo: pleo, mgr: mgr, store: store, browser: browser}
}

// person is one customer's browser: a browser context of its own, with
// its own cookies.
func (f *browserFixture) person(name string) context.Context {
	ctx, cancel := chromedp.NewContext(f.browser, chromedp.WithNewBrowserContext())
	f.t.Cleanup(cancel)
	f.do(ctx, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.ID("name")))
	f.check(ctx, "sign-in")
	f.do(ctx, chromedp.SendKeys(chromedp.ID("name"), name), chromedp.Click(chromedp.CSS("form button")),
		chromedp.WaitVisible(`//p[contains(., "Signed in as")]`))
	return ctx
}

func (f *browserFixture) do(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	f.t.Helper()
	require.NoError(f.t, chromedp.Do(ctx, actions...))
}

func (f *browserFixture) text(ctx context.Context) string {
	f.t.Helper()
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	require.NoError(f.t, err)
	return body
}

func (f *browserFixture) location(ctx context.Context) *url.URL {
	f.t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(f.t, err)
	u, err := url.Parse(loc)
	require.NoError(f.t, err)
	return u
}

// a11y lists what the page lacks of the accessibility basics: a title,
// exactly one h1, a label for every form control, text on every button.
const a11y = `(() => {
	const problems = [];
	if (!document.title.trim()) problems.push("the page has no title");
	const h1 = document.querySelectorAll("h1").length;
	if (h1 !== 1) problems.push("the page has " + h1 + " h1 elements");
	for (const el of document.querySelectorAll("input, select, textarea")) {
		if (el.type === "hidden" || el.type === "submit") continue;
		const label = (el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) || el.closest("label") || el.getAttribute("aria-label");
		if (!label) problems.push("no label for " + el.outerHTML);
	}
	for (const b of document.querySelectorAll("button")) {
		if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("a button without text");
	}
	return problems;
})()`

// check asserts the accessibility basics on the current page and writes
// its screenshot when -screenshots is given.
func (f *browserFixture) check(ctx context.Context, name string) {
	f.t.Helper()
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11y))
	require.NoError(f.t, err)
	assert.Empty(f.t, problems, "%s: %s", name, f.location(ctx))
	if *screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	require.NoError(f.t, err)
	require.NoError(f.t, os.MkdirAll(*screenshots, 0o755))
	f.shot++
	require.NoError(f.t, os.WriteFile(filepath.Join(*screenshots, fmt.Sprintf("%s-%02d-%s.png", strings.ReplaceAll(f.t.Name(), "/", "-"), f.shot, name)), png, 0o644))
}

// connectCompany clicks through connecting: the backend's button, Pleo's
// consent page (on the other origin), the company, and approve or deny.
func (f *browserFixture) connectCompany(ctx context.Context, button string, company pleooauthtest.Company, approve bool) {
	f.t.Helper()
	f.do(ctx, chromedp.Click(`//button[normalize-space()="`+button+`"]`))
	f.waitFor(ctx, "127.0.0.1") // the consent page, on Pleo's origin
	f.do(ctx, chromedp.WaitVisible(`//h1[starts-with(., "Authorise")]`))
	f.check(ctx, "consent")
	decision := "Allow"
	if !approve {
		decision = "Deny"
	}
	f.do(ctx, chromedp.Click(`//label[normalize-space()="`+company.Name+`"]`),
		chromedp.Click(`//button[normalize-space()="`+decision+`"]`))
	f.waitFor(ctx, "localhost") // back at the backend
}

// waitFor waits until the page is one of host's, and shown. Reading the
// location while a navigation replaces the page may fail: that is a page
// not shown yet.
func (f *browserFixture) waitFor(ctx context.Context, host string) {
	f.t.Helper()
	for {
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
			if u, err := url.Parse(loc); err == nil && u.Hostname() == host {
				break
			}
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("never reached %s", host)
		case <-time.After(20 * time.Millisecond):
		}
	}
	f.do(ctx, chromedp.WaitVisible(chromedp.CSS("h1")))
}

func TestBrowserCustomersConnectTheirOwnCompanies(t *testing.T) {
	f := setupBrowser(t)

	// Alice connects Acme: the flow cookie survives the trip to Pleo's
	// origin and back, and she sees Acme's employees.
	alice := f.person("alice")
	f.check(alice, "home")
	f.connectCompany(alice, "Connect a Pleo company", acme, true)
	aliceConn := f.location(alice).Path
	assert.Equal(t, exampleapp.ConnectionsPath+acme.Subject, aliceConn)
	f.check(alice, "connection")
	body := f.text(alice)
	for _, want := range []string{acme.Subject, "active", "users:read", "Ada Lovelace", "Grace Hopper"} {
		assert.Contains(t, body, want)
	}

	// Bob, in a browser of his own, connects Globex.
	bob := f.person("bob")
	f.connectCompany(bob, "Connect a Pleo company", globex, true)
	bobConn := f.location(bob).Path
	assert.Equal(t, exampleapp.ConnectionsPath+globex.Subject, bobConn)

	// Neither sees the other's connection.
	f.do(bob, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.CSS("h1")))
	body = f.text(bob)
	assert.Contains(t, body, globex.Subject)
	assert.NotContains(t, body, acme.Subject)
	f.do(bob, chromedp.Navigate(f.base+aliceConn), chromedp.WaitVisible(chromedp.CSS("h1")))
	f.check(bob, "not-found")
	assert.Contains(t, f.text(bob), "You have no such connection")
	f.do(alice, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.CSS("h1")))
	assert.NotContains(t, f.text(alice), globex.Subject)

	// Alice disconnects; Bob's connection is untouched.
	f.do(alice, chromedp.Navigate(f.base+aliceConn), chromedp.WaitVisible(chromedp.CSS("h1")),
		chromedp.Click(`//button[normalize-space()="Disconnect"]`))
	for f.location(alice).Path != exampleapp.HomePath { // the disconnect redirects home
		time.Sleep(20 * time.Millisecond)
	}
	f.do(alice, chromedp.Navigate(f.base+aliceConn), chromedp.WaitVisible(`//button[normalize-space()="Reconnect Pleo"]`))
	f.check(alice, "disconnected")
	assert.Contains(t, f.text(alice), "disconnected")
	f.do(bob, chromedp.Navigate(f.base+bobConn), chromedp.WaitVisible(chromedp.CSS("h1")))
	assert.Contains(t, f.text(bob), "Ada Lovelace")

	// Pleo revokes Bob's grant: his page offers to reconnect, and
	// reconnecting brings the employees back.
	uninstallAtPleo(t, f.pleo, f.mgr, globex.Subject)
	f.do(bob, chromedp.Navigate(f.base+bobConn), chromedp.WaitVisible(`//button[normalize-space()="Reconnect Pleo"]`))
	f.check(bob, "reauthorization-required")
	assert.Contains(t, f.text(bob), "reauthorization_required")
	f.do(bob, chromedp.WaitVisible(`//p[@class="banner"][contains(., "Pleo no longer accepts this connection")][contains(., "Reconnect Pleo to resume.")]`))
	f.connectCompany(bob, "Reconnect Pleo", globex, true)
	assert.Equal(t, bobConn, f.location(bob).Path)
	assert.Contains(t, f.text(bob), "Ada Lovelace")

	// Alice denies consent: a page says so, and nothing is connected.
	f.do(alice, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.CSS("h1")))
	f.connectCompany(alice, "Connect a Pleo company", acme, false)
	f.check(alice, "denied")
	assert.Contains(t, f.text(alice), "You chose not to connect Pleo")
	c, err := f.mgr.Get(t.Context(), acme.Subject)
	require.NoError(t, err)
	assert.Equal(t, connect.StatusDisconnected, c.Status)
}

// TestBrowserFailingConnectionShowsBanner: a connection whose refreshes
// have been failing shows a banner at the top of its page, in view without
// scrolling, saying so and that it is retried, and a sentence beside its
// row in the list; a healthy one has neither. The failing health is
// written through the Store interface, as the Manager writes it after
// WithFailingAfter, which also records the event the page lists.
func TestBrowserFailingConnectionShowsBanner(t *testing.T) {
	f := setupBrowser(t)
	alice := f.person("alice")
	f.connectCompany(alice, "Connect a Pleo company", acme, true)
	f.do(alice, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.CSS("h1")))
	f.connectCompany(alice, "Connect a Pleo company", globex, true)
	f.do(alice, chromedp.WaitVisible(`//h2[normalize-space()="Employees"]`))
	assert.Zero(t, f.eval(alice, `document.querySelectorAll(".banner").length`), "a healthy connection has no banner")

	rec, err := f.store.Get(t.Context(), acme.Subject)
	require.NoError(t, err)
	since := time.Now().Add(-80 * time.Hour).UTC().Truncate(time.Second)
	rec.Health, rec.FailingSince, rec.LastError, rec.UpdatedAt = connect.HealthFailing, since, "token_endpoint_unavailable", time.Now()
	_, err = f.store.Update(t.Context(), rec, "", false)
	require.NoError(t, err)

	f.do(alice, chromedp.Navigate(f.base+exampleapp.ConnectionsPath+acme.Subject),
		chromedp.WaitVisible(chromedp.CSS(`.banner[role="alert"]`)))
	f.check(alice, "failing")
	banner, err := chromedp.Run(alice, chromedp.Text(chromedp.CSS(".banner")))
	require.NoError(t, err)
	assert.Equal(t, "Pleo has not been reachable for this connection since "+since.Format("2006-01-02 15:04:05 MST")+
		". It is retried automatically and resumes on its own once Pleo answers; you do not need to do anything.", banner)
	assert.Equal(t, 1, f.eval(alice, `(() => {
		const b = document.querySelector(".banner").getBoundingClientRect();
		const first = document.querySelector("h1").nextElementSibling.classList.contains("banner");
		return first && b.top >= 0 && b.bottom <= window.innerHeight && b.height > 0 ? 1 : 0;
	})()`), "the banner comes right after the title, in view")
	body := f.text(alice)
	assert.Contains(t, body, "Ada Lovelace", "Pleo's API still answers: the token has not expired")
	assert.Regexp(t, `failing\s+\S+ \S+ UTC\s+token_endpoint_unavailable`, body, "the failing event, listed")

	f.do(alice, chromedp.Navigate(f.base+exampleapp.HomePath), chromedp.WaitVisible(chromedp.CSS(".attention")))
	f.check(alice, "failing-list")
	acmeRow, err := chromedp.Run(alice, chromedp.Text(`//tr[td/a[normalize-space()="`+acme.Subject+`"]]`))
	require.NoError(t, err)
	assert.Contains(t, acmeRow, "Pleo has not been reachable for this connection since")
	globexRow, err := chromedp.Run(alice, chromedp.Text(`//tr[td/a[normalize-space()="`+globex.Subject+`"]]`))
	require.NoError(t, err)
	assert.NotContains(t, globexRow, "reachable", "the healthy connection's row")
	assert.Equal(t, 1, f.eval(alice, `document.querySelectorAll(".attention").length`))
}

// eval evaluates a JavaScript expression whose value is a number.
func (f *browserFixture) eval(ctx context.Context, expr string) int {
	f.t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
	require.NoError(f.t, err)
	return n
}
