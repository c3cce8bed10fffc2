package pleooauthtest_test

import (
	"context"
	"fmt"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/pleooauthtest"
	"golang.org/x/oauth2"
)

// A partner's test runs its real OAuth flow against the fake server.
func Example() {
	// The registration the partner keeps in their repository.
	reg, err := pleooauth.ParseRegistration([]byte(`
client_name: Example Client
client_uri: https://client.example/
tos_uri: https://client.example/legal/tos.html
policy_uri: https://client.example/legal/privacy.pdf
contacts: [name.surname@example.io]
redirect_uris: [http://127.0.0.1:8080/oauth/callback]
scope: users:read
pkce_supported: true
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	creds, err := pleooauth.NewCredentials("test-client", "test-secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := pleooauthtest.NewServer(reg, creds)
	defer srv.Close()

	// The config your code builds, pointed at the fake server.
	cfg, err := reg.OAuth2Config(pleooauth.Staging, creds, pleooauth.WithEndpoints(srv.Endpoints()))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())

	// The user is sent to Pleo and approves; Pleo sends them back.
	pkce := pleooauth.NewPKCE()
	callback, err := srv.Authorize(cfg.AuthCodeURL("state-123", pkce.AuthCodeOption()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("back at", callback.Path, "with state", callback.Query().Get("state"))

	// The callback exchanges the code, with the PKCE verifier.
	tok, err := cfg.Exchange(ctx, callback.Query().Get("code"), pkce.ExchangeOption())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("token:", tok.TokenType, "expires in", tok.ExpiresIn, "s, scope", tok.Extra("scope"))

	// The token calls Pleo's API.
	resp, err := cfg.Client(ctx, tok).Get(srv.Endpoints().APIBaseURL + "/v2/employees")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("GET /v2/employees:", resp.Status)

	// What the server saw, secrets redacted.
	requests := srv.Requests()
	for _, r := range requests {
		fmt.Println(r.Method, r.Path, r.Status)
	}
	fmt.Println("code_verifier sent:", requests[1].Params.Get("code_verifier"))
	// Output:
	// back at /oauth/callback with state state-123
	// token: Bearer expires in 900 s, scope users:read
	// GET /v2/employees: 200 OK
	// GET /oauth/authorize 302
	// POST /oauth/token 200
	// GET /v2/employees 200
	// code_verifier sent: [REDACTED]
}
