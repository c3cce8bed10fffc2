package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/partnerkit/pleooauth"
	"golang.org/x/oauth2"
)

// loginEndpoint, when set, replaces Pleo's Staging endpoint; tests point it
// at a pleooauthtest server. loginHTTPClient is the client for its token
// endpoint.
var (
	loginEndpoint   *oauth2.Endpoint
	loginHTTPClient *http.Client
)

func runLogin(c *cli, args []string) int {
	fs := newFlagSet(c, "login", `Login runs the authorization code flow with PKCE from this machine against
Pleo's Staging environment (RFC 8252, native apps): it listens on the
registration's loopback redirect URI, prints (and on a desktop opens) the
authorization URL, waits for Pleo to send the browser back, exchanges the
code, and writes the tokens to a file readable by you only (0600). It prints
their expiry and scopes, never the tokens. The credentials come from
PLEO_CLIENT_ID and PLEO_CLIENT_SECRET or PLEO_CLIENT_SECRET_FILE.`)
	envName := fs.String("env", "staging", "environment: staging (loopback redirect URIs exist only there)")
	regFile := fs.String("registration", "", "the registration manifest (required)")
	out := fs.String("out", "pleo-tokens.json", "file to write the tokens to")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser to come back")
	noBrowser := fs.Bool("no-browser", false, "only print the URL; do not open a browser")
	if status := parseFlags(c, fs, args); status >= 0 {
		return status
	}
	env, err := pleooauth.ParseEnvironment(*envName)
	if err != nil {
		return usageError(c, fs, "--env %q: use staging", *envName)
	}
	if env != pleooauth.Staging {
		return usageError(c, fs, "login needs a loopback redirect URI, which Pleo allows in Staging only")
	}
	if *regFile == "" || fs.NArg() != 0 {
		return usageError(c, fs, "give --registration FILE and no other arguments")
	}
	fail := func(status int, format string, args ...any) int {
		fmt.Fprintf(c.stderr, "pleo-oauth login: "+format+"\n", args...)
		return status
	}

	res := validateFile(c, *regFile, env, false)
	if res.status != exitOK {
		writeText(&cli{stdout: c.stderr}, res, false)
		return res.status
	}
	redirect := loopbackRedirect(res.reg)
	if redirect == nil {
		return fail(exitUsage, "the registration has no loopback redirect URI (http://localhost, 127.0.0.1 or [::1] with a port) to listen on")
	}
	creds, err := pleooauth.CredentialsFromEnv()
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	opts := []pleooauth.ConfigOption{pleooauth.WithRedirectURL(redirect.String())}
	if loginEndpoint != nil {
		opts = append(opts, pleooauth.WithEndpoint(*loginEndpoint))
	}
	cfg, err := res.reg.OAuth2Config(env, creds, opts...)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	flow, err := pleooauth.NewFlow(cfg, key, pleooauth.WithFlowTTL(*timeout))
	if err != nil {
		return fail(exitUsage, "%v", err)
	}

	ln, err := net.Listen("tcp", listenAddr(redirect))
	if err != nil {
		return fail(exitUsage, "listening on the redirect URI's address: %v", err)
	}
	authURL, sealed := flow.Start()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if loginHTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, loginHTTPClient)
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+redirect.Path, func(w http.ResponseWriter, r *http.Request) {
		tok, err := flow.Finish(ctx, r, sealed)
		if err != nil {
			http.Error(w, "Authorisation did not complete: "+shortError(err)+". You can close this window.", http.StatusBadRequest)
		} else {
			fmt.Fprintln(w, "Authorised. You can close this window and return to the terminal.")
		}
		select {
		case done <- result{tok, err}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	fmt.Fprintf(c.stdout, "Open this URL in a browser and authorise %s:\n\n  %s\n\nWaiting for Pleo to send the browser back to %s (at most %s)...\n",
		res.reg.ClientName, authURL, redirect, *timeout)
	if !*noBrowser {
		openBrowser(authURL)
	}

	var got result
	select {
	case got = <-done:
	case <-ctx.Done():
		return fail(exitFindings, "no answer from the browser within %s", *timeout)
	}
	if got.err != nil {
		if errors.Is(got.err, pleooauth.ErrAccessDenied) {
			return fail(exitFindings, "access was denied in the browser")
		}
		return fail(exitFindings, "%s", shortError(got.err))
	}
	store := &pleooauth.FileStore{Path: *out}
	if err := store.Save(ctx, got.tok); err != nil {
		return fail(exitFindings, "%v", err)
	}
	scope, _ := got.tok.Extra("scope").(string)
	if scope == "" {
		scope = strings.Join(cfg.Scopes, " ")
	}
	fmt.Fprintf(c.stdout, "Authorised. Tokens written to %s (mode 0600).\n  access token expires %s (in %s)\n  scopes: %s\n",
		*out, got.tok.Expiry.Format(time.RFC3339), time.Until(got.tok.Expiry).Round(time.Second), scope)
	return exitOK
}

// loopbackRedirect returns the first redirect URI that is http on a
// loopback host spelled as Pleo lists them.
func loopbackRedirect(r *pleooauth.Registration) *url.URL {
	for _, raw := range r.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" {
			continue
		}
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return u
		}
	}
	return nil
}

func listenAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// shortError is an error's message without this package's prefix; no
// error here contains a token, code or verifier.
func shortError(err error) string {
	return strings.TrimPrefix(err.Error(), "pleooauth: ")
}

// openBrowser opens url on a desktop, and does nothing elsewhere (a server,
// a container, CI): the URL is printed either way.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	_ = cmd.Start()
}
