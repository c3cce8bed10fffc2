package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/examples/backend/app"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

func runDemo(c *cli, args []string) int {
	fs := newFlagSet(c, "demo", `Demo runs the whole OAuth path in this process, with no network and no
credentials: a fake Pleo (pleooauthtest) and the example backend
(examples/backend), a registration checked, the user sent to Pleo, consent,
the callback, the code exchange, an API call, and a refresh whose rotated
refresh token is stored. It prints each step.`)
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

	// The backend's listener first: the registration names its address.
	backendServer := httptest.NewUnstartedServer(nil)
	base := "http://" + backendServer.Listener.Addr().String()
	reg := &pleooauth.Registration{
		HumanReadable: pleooauth.HumanReadable{
			ClientName: "Example Client",
			ClientURI:  "https://client.example/",
			LogoURI:    "https://client.example/logo.png",
			TOSURI:     "https://client.example/legal/tos.html",
			PolicyURI:  "https://client.example/legal/privacy.pdf",
			Contacts:   []string{"name.surname@example.io"},
		},
		PleoSpecific: pleooauth.PleoSpecific{InitiationURI: base + app.ConnectPath, SettingsURI: base + app.SettingsPath},
		Technical: pleooauth.Technical{
			RedirectURIs:  []string{base + app.CallbackPath},
			Scope:         "users:read",
			PKCESupported: true,
		},
	}
	report := reg.Check(pleooauth.Staging)
	if err := report.Err(); err != nil {
		return err
	}
	step("1. registration   valid for staging (%s), redirect URI %s", count(len(report.Warnings), "warning"), reg.RedirectURIs[0])

	// One clock for the fake Pleo and the backend, so that the demo can skip
	// ahead to the access token's expiry.
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
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store := &pleooauth.MemoryStore{}
	backend, err := app.New(app.Config{OAuth2: cfg, FlowKey: key, Store: store, APIBaseURL: pleo.URL, HTTPClient: pleo.Client(), Now: clock.Now})
	if err != nil {
		return err
	}
	backendServer.Config.Handler = backend
	backendServer.Start()
	defer backendServer.Close()
	step("2. servers        fake Pleo at %s, example backend at %s", pleo.URL, base)

	// The user's browser: keeps cookies, follows no redirects on its own.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := browser.Get(base + app.ConnectPath)
	if err != nil {
		return err
	}
	resp.Body.Close()
	authURL, err := resp.Location()
	if err != nil {
		return fmt.Errorf("connect did not redirect: %s", resp.Status)
	}
	q := authURL.Query()
	step("3. connect        %s redirects to Pleo: code_challenge_method=%s, scope=%s, state kept sealed in a cookie", app.ConnectPath, q.Get("code_challenge_method"), q.Get("scope"))

	callback, err := pleo.Authorize(authURL.String())
	if err != nil {
		return err
	}
	step("4. consent        the user approves; Pleo sends the browser back to %s with a code", callback.Path)

	resp, err = browser.Get(base + callback.Path + "?" + callback.RawQuery)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return fmt.Errorf("callback answered %s", resp.Status)
	}
	first, err := store.Load(context.Background())
	if err != nil {
		return err
	}
	step("5. callback       state checked, code exchanged with the PKCE verifier, token stored (expires in %s)", first.Expiry.Sub(clock.Now()).Round(time.Minute))

	n, err := employees(browser, base)
	if err != nil {
		return err
	}
	step("6. API call       GET /v2/employees with the access token: %d employees", n)

	clock.Advance(16 * time.Minute)
	n, err = employees(browser, base)
	if err != nil {
		return err
	}
	second, err := store.Load(context.Background())
	if err != nil {
		return err
	}
	if second.RefreshToken == first.RefreshToken {
		return fmt.Errorf("the refresh token was not rotated")
	}
	step("7. refresh        16 minutes later the access token has expired: refreshed once (%d refresh request), %d employees", refreshes(pleo), n)
	step("8. rotation       Pleo rotated the refresh token; the new one is stored, the old one is void")

	// Pleo's rule, shown: the old refresh token is refused, and using it
	// revokes the whole authorisation.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
	req, _ := http.NewRequest(http.MethodPost, pleo.Endpoint().TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(creds.ClientID), url.QueryEscape(creds.ClientSecret.Reveal()))
	resp, err = pleo.Client().Do(req)
	if err != nil {
		return err
	}
	var refused struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&refused)
	resp.Body.Close()
	resp, err = browser.Get(base + app.EmployeesPath)
	if err != nil {
		return err
	}
	resp.Body.Close()
	step("9. reuse          the old refresh token is refused (%s) and Pleo revokes the authorisation: the backend now answers %d and asks to connect again", refused.Error, resp.StatusCode)
	return nil
}

func employees(browser *http.Client, base string) (int, error) {
	resp, err := browser.Get(base + app.EmployeesPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Employees []app.Employee
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

func refreshes(pleo *pleooauthtest.Server) int {
	n := 0
	for _, r := range pleo.Requests() {
		if r.Path == pleooauthtest.TokenPath && r.Params.Get("grant_type") == "refresh_token" {
			n++
		}
	}
	return n
}
