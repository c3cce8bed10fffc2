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

func demo(w io.Writer) error {
	step := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	// Two backend instances behind one redirect URI: their listeners
	// first, since the registration names the first one's address.
	instA, instB := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	base := "http://" + instA.Listener.Addr().String()
	reg := examplereg.New("users:read", base+exampleapp.CallbackPath)
	reg.LogoURI = "https://client.example/logo.png"
	reg.InitiationURI, reg.SettingsURI = base+exampleapp.ConnectPath, base+exampleapp.SettingsPath
	report := reg.Check(pleooauth.Staging)
	if err := report.Err(); err != nil {
		return err
	}
	step("1. registration   valid for staging (%s), redirect URI %s", count(len(report.Warnings), "warning"), reg.RedirectURIs[0])

	// One clock for the fake Pleo and the backends, so that the demo can
	// skip ahead to the access tokens' expiry.
	clock := pleooauthtest.NewClock(time.Now())
	creds, err := pleooauth.NewCredentials("demo-client", rand.Text())
	if err != nil {
		return err
	}
	pleo := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithClock(clock.Now))
	defer pleo.Close()
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoint(pleo.Endpoint()))
	if err != nil {
		return err
	}
	flowKey, tokenKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(flowKey)
	_, _ = rand.Read(tokenKey)
	store := connect.NewMemoryStore() // one store for both instances
	var mgrs []*connect.Manager
	for _, inst := range []*httptest.Server{instA, instB} {
		mgr, err := connect.NewManager(cfg, store, connect.WithKeys(tokenKey), connect.WithHTTPClient(pleo.Client()),
			connect.WithIntrospectionURL(pleo.IntrospectionURL()), connect.WithAPIBaseURL(pleo.URL), connect.WithClock(clock.Now))
		if err != nil {
			return err
		}
		backend, err := exampleapp.New(exampleapp.Config{Manager: mgr, FlowKey: flowKey, APIBaseURL: pleo.URL})
		if err != nil {
			return err
		}
		inst.Config.Handler = backend
		inst.Start()
		defer inst.Close()
		mgrs = append(mgrs, mgr)
	}
	step("2. servers        fake Pleo at %s; backend instances A at %s and B at %s, one store", pleo.URL, instA.URL, instB.URL)

	const company1 = "urn:pleo:company:11111111-1111-4111-8111-111111111111"
	const company2 = "urn:pleo:company:22222222-2222-4222-8222-222222222222"
	alice, err := signIn(instA.URL, "alice")
	if err != nil {
		return err
	}
	path1, scope, err := connectCompany(alice, pleo, instA.URL, instB.URL, company1)
	if err != nil {
		return err
	}
	step("3. connect        alice connects company 1 at A (PKCE S256, scope %s); Pleo sends her back to B, which completes it: %s", scope, path1)

	bob, err := signIn(instB.URL, "bob")
	if err != nil {
		return err
	}
	path2, _, err := connectCompany(bob, pleo, instB.URL, instB.URL, company2)
	if err != nil {
		return err
	}
	step("4. second company bob connects company 2 at B; the store holds two connections, one per company")

	n, err := employees(alice, instB.URL+path1)
	if err != nil {
		return err
	}
	step("5. API call       alice asks B for company 1's employees: GET /v2/employees with company 1's token: %d employees", n)

	status, err := statusOf(bob, instA.URL+path1+"/employees.json")
	if err != nil {
		return err
	}
	step("6. isolation      bob asks for company 1's connection: %d; each customer sees only their own", status)

	clock.Advance(16 * time.Minute)
	before, _ := pleo.RefreshStats()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { _, errs[i] = mgrs[i%2].Token(context.Background(), company1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	after, reuses := pleo.RefreshStats()
	step("7. refresh        16 minutes later, 10 calls on A and B at once for company 1: %d refresh at Pleo, %d reuse; the rotated refresh token is saved, sealed", after-before, reuses)

	// Pleo's rule, shown: presenting an old refresh token revokes the
	// grant. Here a stray copy of company 2's grant does it.
	tok2, err := mgrs[1].Token(context.Background(), company2)
	if err != nil {
		return err
	}
	old := tok2.RefreshToken
	for range 2 {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}}
		req, _ := http.NewRequest(http.MethodPost, pleo.Endpoint().TokenURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(creds.ClientID), url.QueryEscape(creds.ClientSecret.Reveal()))
		resp, err := pleo.Client().Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	clock.Advance(16 * time.Minute)
	status, err = statusOf(bob, instB.URL+path2+"/employees.json")
	if err != nil {
		return err
	}
	c2, err := mgrs[0].Get(context.Background(), company2)
	if err != nil {
		return err
	}
	step("8. reuse          a refresh token used twice elsewhere: Pleo revokes company 2's grant; B answers %d and the connection is %s", status, c2.Status)

	resp, err := alice.Post(instA.URL+path1+"/disconnect", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	c1, err := mgrs[1].Get(context.Background(), company1)
	if err != nil {
		return err
	}
	step("9. disconnect     alice disconnects company 1 at A: Pleo's DELETE /v1/installations/me revokes its tokens, and B sees it %s", c1.Status)
	return nil
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
