package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/internal/exampleapp"
	"github.com/partnerkit/pleooauth/internal/examplereg"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func runDemo(c *cli, args []string) int {
	fs := newFlagSet(c, "demo", `Demo runs the whole OAuth path in this process, with no network and no
credentials: a fake Pleo (pleooauthtest) and two instances of the example
backend (examples/backend) sharing one store. Two customers connect two Pleo
companies, each sees only their own, one refresh serves both instances, a
reused refresh token revokes a grant, and a company is disconnected. It
prints each step.`)
	args, status, carryOn := parseFlags(c, fs, args)
	if !carryOn {
		return status
	}
	if len(args) != 0 {
		return usageError(c, fs, "takes no arguments")
	}
	if err := demo(c.stdout); err != nil {
		fmt.Fprintf(c.stderr, "pleo-oauth demo: %v\n", err)
		return exitFindings
	}
	return exitOK
}

// demo runs the demo's steps in order, printing a line for each, and stops
// at the first that fails.
func demo(w io.Writer) error {
	d := &demoRun{}
	defer d.close()
	steps := []struct {
		name string
		run  func() (string, error)
	}{
		{"registration", d.register},
		{"servers", d.startServers},
		{"connect", d.connectFirst},
		{"second company", d.connectSecond},
		{"API call", d.callAPI},
		{"isolation", d.isolation},
		{"refresh", d.refresh},
		{"reuse", d.reuse},
		{"disconnect", d.disconnect},
	}
	for i, step := range steps {
		line, err := step.run()
		if err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
		fmt.Fprintf(w, "%d. %-14s %s\n", i+1, step.name, line)
	}
	return nil
}

// The two Pleo companies the demo's customers connect.
const (
	demoCompany1 = "urn:pleo:company:11111111-1111-4111-8111-111111111111"
	demoCompany2 = "urn:pleo:company:22222222-2222-4222-8222-222222222222"
)

// demoRun is what the steps share: the fake Pleo, two instances of the
// example backend over one store, and the two customers' browsers.
type demoRun struct {
	instA, instB *httptest.Server
	reg          *pleooauth.Registration
	clock        *pleooauthtest.Clock
	creds        pleooauth.Credentials
	pleo         *pleooauthtest.Server
	mgrs         []*connect.Manager
	alice, bob   *http.Client
	path1, path2 string // each customer's connection page
}

func (d *demoRun) close() {
	for _, srv := range []*httptest.Server{d.instA, d.instB} {
		if srv != nil {
			srv.Close()
		}
	}
	if d.pleo != nil {
		d.pleo.Close()
	}
}

// register makes the registration: two backend instances behind one
// redirect URI, their listeners first, since it names the first one's
// address.
func (d *demoRun) register() (string, error) {
	d.instA, d.instB = httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	base := "http://" + d.instA.Listener.Addr().String()
	d.reg = examplereg.New("users:read", base+exampleapp.CallbackPath)
	d.reg.LogoURI = "https://client.example/logo.png"
	d.reg.InitiationURI, d.reg.SettingsURI = base+exampleapp.ConnectPath, base+exampleapp.SettingsPath
	report := d.reg.Check(pleooauth.Staging)
	if err := report.Err(); err != nil {
		return "", err
	}
	return fmt.Sprintf("valid for staging (%s), redirect URI %s", count(len(report.Warnings), "warning"), d.reg.RedirectURIs[0]), nil
}

// startServers starts the fake Pleo and both instances. One clock serves
// them all, so that the demo can skip ahead to the access tokens' expiry.
func (d *demoRun) startServers() (string, error) {
	d.clock = pleooauthtest.NewClock(time.Now())
	var err error
	if d.creds, err = pleooauth.NewCredentials("demo-client", rand.Text()); err != nil {
		return "", err
	}
	d.pleo = pleooauthtest.NewServer(d.reg, d.creds, pleooauthtest.WithClock(d.clock.Now))
	cfg, err := d.reg.OAuth2Config(pleooauth.Staging, d.creds, pleooauth.WithEndpoints(d.pleo.Endpoints()))
	if err != nil {
		return "", err
	}
	flowKey, tokenKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(flowKey)
	_, _ = rand.Read(tokenKey)
	store := connect.NewMemoryStore() // one store for both instances
	for _, inst := range []*httptest.Server{d.instA, d.instB} {
		mgr, err := connect.NewManager(cfg, store, connect.WithKeys(tokenKey), connect.WithHTTPClient(d.pleo.Client()),
			connect.WithEndpoints(d.pleo.Endpoints()), connect.WithClock(d.clock.Now))
		if err != nil {
			return "", err
		}
		backend, err := exampleapp.New(exampleapp.Config{Manager: mgr, FlowKey: flowKey})
		if err != nil {
			return "", err
		}
		inst.Config.Handler = backend
		inst.Start()
		d.mgrs = append(d.mgrs, mgr)
	}
	return fmt.Sprintf("fake Pleo at %s; backend instances A at %s and B at %s, one store", d.pleo.URL, d.instA.URL, d.instB.URL), nil
}

func (d *demoRun) connectFirst() (string, error) {
	var err error
	if d.alice, err = signIn(d.instA.URL, "alice"); err != nil {
		return "", err
	}
	var scope string
	if d.path1, scope, err = connectCompany(d.alice, d.pleo, d.instA.URL, d.instB.URL, demoCompany1); err != nil {
		return "", err
	}
	return fmt.Sprintf("alice connects company 1 at A (PKCE S256, scope %s); Pleo sends her back to B, which completes it: %s", scope, d.path1), nil
}

func (d *demoRun) connectSecond() (string, error) {
	var err error
	if d.bob, err = signIn(d.instB.URL, "bob"); err != nil {
		return "", err
	}
	if d.path2, _, err = connectCompany(d.bob, d.pleo, d.instB.URL, d.instB.URL, demoCompany2); err != nil {
		return "", err
	}
	return "bob connects company 2 at B; the store holds two connections, one per company", nil
}

func (d *demoRun) callAPI() (string, error) {
	n, err := employees(d.alice, d.instB.URL+d.path1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("alice asks B for company 1's employees: GET /v2/employees with company 1's token: %d employees", n), nil
}

func (d *demoRun) isolation() (string, error) {
	status, err := statusOf(d.bob, d.instA.URL+d.path1+"/employees.json")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("bob asks for company 1's connection: %d; each customer sees only their own", status), nil
}

// refresh skips past the access tokens' expiry and asks both instances
// for company 1's token at once.
func (d *demoRun) refresh() (string, error) {
	d.clock.Advance(16 * time.Minute)
	before, _ := d.pleo.RefreshStats()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { _, errs[i] = d.mgrs[i%2].Token(context.Background(), demoCompany1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	after, reuses := d.pleo.RefreshStats()
	return fmt.Sprintf("16 minutes later, 10 calls on A and B at once for company 1: %d refresh at Pleo, %d reuse; the rotated refresh token is saved, sealed", after-before, reuses), nil
}

// reuse shows Pleo's rule: presenting an old refresh token revokes the
// grant. Here a stray copy of company 2's grant does it.
func (d *demoRun) reuse() (string, error) {
	tok2, err := d.mgrs[1].Token(context.Background(), demoCompany2)
	if err != nil {
		return "", err
	}
	for range 2 {
		if err := d.refreshElsewhere(tok2.RefreshToken); err != nil {
			return "", err
		}
	}
	d.clock.Advance(16 * time.Minute)
	status, err := statusOf(d.bob, d.instB.URL+d.path2+"/employees.json")
	if err != nil {
		return "", err
	}
	c2, err := d.mgrs[0].Get(context.Background(), demoCompany2)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("a refresh token used twice elsewhere: Pleo revokes company 2's grant; B answers %d and the connection is %s", status, c2.Status), nil
}

// refreshElsewhere presents a refresh token at Pleo's token endpoint
// outside the backends, as a stray copy of a grant would.
func (d *demoRun) refreshElsewhere(refreshToken string) error {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	req, err := http.NewRequest(http.MethodPost, d.pleo.Endpoints().TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(d.creds.ClientID), url.QueryEscape(d.creds.ClientSecret.Reveal()))
	resp, err := d.pleo.Client().Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (d *demoRun) disconnect() (string, error) {
	resp, err := d.alice.Post(d.instA.URL+d.path1+"/disconnect", "", nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	c1, err := d.mgrs[1].Get(context.Background(), demoCompany1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("alice disconnects company 1 at A: Pleo's DELETE /v1/installations/me revokes its tokens, and B sees it %s", c1.Status), nil
}

// signIn makes a customer's browser (cookies kept, no redirects followed)
// and signs in at the backend.
func signIn(base, name string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.PostForm(base+exampleapp.SignInPath, url.Values{"name": {name}})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("signing in answered %s", resp.Status)
	}
	// Cookies are kept by host, not port: the sign-in (signed with the
	// key every instance shares) goes to both instances.
	return browser, nil
}

// connectCompany starts at one instance, consents at Pleo for subject, and
// comes back to another; it returns the connection's page.
func connectCompany(browser *http.Client, pleo *pleooauthtest.Server, start, back, subject string) (string, string, error) {
	resp, err := browser.Get(start + exampleapp.ConnectPath)
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	authURL, err := resp.Location()
	if err != nil {
		return "", "", fmt.Errorf("connect did not redirect: %s", resp.Status)
	}
	callback, err := pleo.AuthorizeAs(authURL.String(), subject)
	if err != nil {
		return "", "", err
	}
	resp, err = browser.Get(back + callback.Path + "?" + callback.RawQuery)
	if err != nil {
		return "", "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("callback answered %s", resp.Status)
	}
	return resp.Header.Get("Location"), authURL.Query().Get("scope"), nil
}

func employees(browser *http.Client, page string) (int, error) {
	resp, err := browser.Get(page + "/employees.json")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Employees []exampleapp.Employee
		Error     string
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the backend answered %s: %s", resp.Status, body.Error)
	}
	return len(body.Employees), nil
}

func statusOf(browser *http.Client, u string) (int, error) {
	resp, err := browser.Get(u)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
