package pleooauth_test

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/partnerkit/pleooauth"
)

// A partner backend reads its registration manifest, checks it, and builds
// the *oauth2.Config it reuses for every authorization.
func Example() {
	manifest := []byte(`
client_name: Example Client
client_uri: https://client.example/
tos_uri: https://client.example/legal/tos.html
policy_uri: https://client.example/legal/privacy.pdf
contacts: [name.surname@example.io]
redirect_uris: [https://client.example/callback]
scope: users:read users:write
pkce_supported: true
`)
	reg, err := pleooauth.ParseRegistration(manifest)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range reg.Check(pleooauth.Staging).Warnings {
		fmt.Println("warning:", w.Rule, w.Field)
	}

	// In a backend: creds, err := pleooauth.CredentialsFromEnv()
	creds, err := pleooauth.NewCredentials("12a3b456-78c9-0d12-34e5-f678ab9bcd0e", "12345a6bcd789ef012abcd34ef5a6b")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Per authorization: a fresh PKCE pair and state, kept until the callback.
	pkce := pleooauth.NewPKCE()
	authURL := cfg.AuthCodeURL("state-from-crypto-rand", pkce.AuthCodeOption())

	u, _ := url.Parse(authURL)
	params := slices.Sorted(maps.Keys(u.Query()))
	fmt.Println("authorize at:", u.Scheme+"://"+u.Host+u.Path)
	fmt.Println("with:", strings.Join(params, " "))
	fmt.Println("scope:", u.Query().Get("scope"))
	fmt.Println("redirect_uri:", u.Query().Get("redirect_uri"))
	fmt.Println("token endpoint:", cfg.Endpoint.TokenURL)
	// Output:
	// warning: missing_recommended logo_uri
	// warning: missing_recommended initiation_uri
	// warning: missing_recommended settings_uri
	// authorize at: https://auth.staging.pleo.io/oauth/authorize
	// with: client_id code_challenge code_challenge_method redirect_uri response_type scope state
	// scope: users:read users:write
	// redirect_uri: https://client.example/callback
	// token endpoint: https://auth.staging.pleo.io/oauth/token
}

// Check reports every problem at once, each naming its field and rule.
func ExampleRegistration_Check() {
	reg := &pleooauth.Registration{
		HumanReadable: pleooauth.HumanReadable{
			ClientName: "Example Client for Pleo",
			ClientURI:  "https://client.example/",
			TOSURI:     "https://client.example/legal/tos.html",
			PolicyURI:  "https://client.example/legal/privacy.pdf",
			Contacts:   []string{"Name Surname <name.surname@example.io>"},
		},
		Technical: pleooauth.Technical{
			RedirectURIs:  []string{"http://localhost:8080/callback", "https://client.example/callback#top"},
			Scope:         "users.read",
			PKCESupported: true,
		},
	}
	report := reg.Check(pleooauth.Production)
	for _, e := range report.Errors {
		fmt.Printf("%-18s %s\n", e.Field, e.Rule)
	}
	fmt.Println(len(report.Warnings), "warnings")
	// Output:
	// client_name        pleo_branding
	// contacts[0]        not_bare_email
	// redirect_uris[0]   loopback_in_production
	// redirect_uris[1]   fragment
	// scope              malformed_scope
	// 3 warnings
}

// ParseRegistration keeps going past mistakes in the content, so every one
// of them is reported in one pass; a secret's value is never echoed.
func ExampleParseRegistration() {
	reg, err := pleooauth.ParseRegistration([]byte(`
client_name: Example Client
redirect_uri: https://client.example/callback
client_secret: 12345a6bcd789ef012abcd34ef5a6b
pkce_supported: "yes"
`))
	fmt.Println("decoded client_name:", reg.ClientName)
	var findings pleooauth.ValidationErrors
	errors.As(err, &findings)
	for _, f := range findings {
		fmt.Println(f.Rule+":", f.Message)
	}
	// Output:
	// decoded client_name: Example Client
	// wrong_type: pkce_supported must be true or false, not a string
	// unknown_field: redirect_uri is not a registration field; did you mean "redirect_uris"?
	// secret_in_registration: client_secret looks like a secret and does not belong in a registration file: Pleo issues the client secret after registration; keep it in a secret store and load it with CredentialsFromEnv (PLEO_CLIENT_SECRET or PLEO_CLIENT_SECRET_FILE). Its value was not read
}

// A Secret shows [REDACTED] wherever it ends up; Reveal is the one way out.
func ExampleSecret() {
	creds, _ := pleooauth.NewCredentials("12a3b456-78c9-0d12-34e5-f678ab9bcd0e", "12345a6bcd789ef012abcd34ef5a6b")
	fmt.Printf("%v\n", creds)
	fmt.Printf("%x\n", creds.ClientSecret)

	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("loaded credentials", "creds", creds)
	// Output:
	// {12a3b456-78c9-0d12-34e5-f678ab9bcd0e [REDACTED]}
	// [REDACTED]
	// {"level":"INFO","msg":"loaded credentials","creds":{"client_id":"12a3b456-78c9-0d12-34e5-f678ab9bcd0e","client_secret":"[REDACTED]"}}
}

func ExampleLookupScope() {
	info, ok := pleooauth.LookupScope(pleooauth.ScopeUsersRead)
	fmt.Println(ok, info.API, "-", info.Grants)
	_, ok = pleooauth.LookupScope("user:read")
	fmt.Println(ok)
	// Output:
	// true Employees API - Search employees, get an employee by ID
	// false
}
