package connect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"golang.org/x/oauth2"
)

// A customer connects their Pleo company, and the backend calls Pleo's
// API as that company. Against Pleo, the Manager needs only WithKeys (and
// a real store): its other URLs follow the config's endpoint. Here a fake
// Pleo stands in.
func Example() {
	reg, err := pleooauth.ParseRegistration([]byte(`{
		"client_name": "Example Client", "client_uri": "https://client.example/",
		"tos_uri": "https://client.example/legal/tos.html", "policy_uri": "https://client.example/legal/privacy.pdf",
		"contacts": ["name.surname@example.io"], "redirect_uris": ["https://client.example/oauth/callback"],
		"scope": "users:read", "pkce_supported": true}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	creds, _ := pleooauth.NewCredentials("example-client", "example-secret-0123456789")
	pleo := pleooauthtest.NewServer(reg, creds)
	defer pleo.Close()
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(pleo.Endpoints()))
	if err != nil {
		fmt.Println(err)
		return
	}

	// The keys: one setting, shared by every instance and kept in a secret
	// store (PLEO_KEYS=$(openssl rand -base64 32)). ParseKeys derives the
	// token keys and the flow key from it, never the same key for both.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys, err := connect.ParseKeys(base64.StdEncoding.EncodeToString(secret)) // in a backend: os.Getenv("PLEO_KEYS")
	if err != nil {
		fmt.Println(err)
		return
	}
	mgr, err := connect.NewManager(cfg, connect.NewMemoryStore(), connect.WithKeys(keys.Token()...),
		connect.WithHTTPClient(pleo.Client()), connect.WithEndpoints(pleo.Endpoints()))
	if err != nil {
		fmt.Println(err)
		return
	}
	flow, err := connect.NewFlow(cfg, keys.Flow())
	if err != nil {
		fmt.Println(err)
		return
	}

	// The customer "tenant-42" of the partner's app starts connecting; the
	// user picks their company at Pleo and comes back.
	authURL, sealed := flow.Start("tenant-42")
	callback, err := pleo.AuthorizeAs(authURL, "urn:pleo:company:00000000-0000-4000-8000-000000000042")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, pleo.Client())
	tok, account, err := flow.Finish(ctx, httptest.NewRequest(http.MethodGet, callback.String(), nil), sealed)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := mgr.Complete(ctx, tok, account)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.ID, c.Account, c.Status)

	// Later, from any instance sharing the store: Pleo's API as that company.
	resp, err := mgr.Client(ctx, c.ID).Get(mgr.Endpoints().APIBaseURL + "/v2/employees")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// urn:pleo:company:00000000-0000-4000-8000-000000000042 tenant-42 active
	// 200 OK
}
