package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/connect"
	"golang.org/x/oauth2"
)

func runLogin(c *cli, args []string) int {
	l, status, carryOn := parseLogin(c, args)
	if !carryOn {
		return status
	}
	err := l.configure()
	var tok *oauth2.Token
	if err == nil {
		tok, err = l.authorize()
	}
	if err == nil {
		err = l.save(tok)
	}
	var e *exitError
	if errors.As(err, &e) {
		if e.msg != "" {
			fmt.Fprintf(c.stderr, "pleo-oauth login: %s\n", e.msg)
		}
		return e.status
	}
	return exitOK
}

// exitError ends a command with its status, after printing msg (when not
// empty) to standard error.
type exitError struct {
	status int
	msg    string
}

func (e *exitError) Error() string { return e.msg }

func exitf(status int, format string, args ...any) error {
	return &exitError{status, fmt.Sprintf(format, args...)}
}

// login is one run of the login command: what its flags and the
// registration set up, and the config built from them.
type login struct {
	c           *cli
	env         pleooauth.Environment
	regFile     string
	out         string
	timeout     time.Duration
	noBrowser   bool
	reg         *pleooauth.Registration
	rawRedirect string   // the registered redirect URI, as written
	redirect    *url.URL // the same, parsed
	cfg         *oauth2.Config
}

// parseLogin reads the flags. It returns carryOn false with the status to
// stop with, having printed why.
func parseLogin(c *cli, args []string) (l *login, status int, carryOn bool) {
	fs := newFlagSet(c, "login", `Login runs the authorization code flow with PKCE from this machine against
Pleo's Staging environment (RFC 8252, native apps): it listens on the
registration's loopback redirect URI, prints (and on a desktop opens) the
authorization URL, waits for Pleo to send the browser back, exchanges the
code, and writes the tokens to a file readable by you only (0600). It prints
their expiry and scopes, never the tokens. The credentials come from
PLEO_CLIENT_ID and PLEO_CLIENT_SECRET or PLEO_CLIENT_SECRET_FILE.`)
	envName := fs.String("env", "staging", "environment: staging (loopback redirect URIs exist only there)")
	l = &login{c: c}
	fs.StringVar(&l.regFile, "registration", "", "the registration manifest (required)")
	fs.StringVar(&l.out, "out", "pleo-tokens.json", "file to write the tokens to")
	fs.DurationVar(&l.timeout, "timeout", 5*time.Minute, "how long to wait for the browser to come back")
	fs.BoolVar(&l.noBrowser, "no-browser", false, "only print the URL; do not open a browser")
	args, status, carryOn = parseFlags(c, fs, args)
	if !carryOn {
		return nil, status, false
	}
	var err error
	if l.env, err = pleooauth.ParseEnvironment(*envName); err != nil {
		return nil, usageError(c, fs, "--env %q: use staging", *envName), false
	}
	if l.env != pleooauth.Staging {
		return nil, usageError(c, fs, "login needs a loopback redirect URI, which Pleo allows in Staging only"), false
	}
	if l.regFile == "" || len(args) != 0 {
		return nil, usageError(c, fs, "give --registration FILE and no other arguments"), false
	}
	return l, exitOK, true
}

// configure reads and checks the registration, finds its loopback redirect
// URI, reads the credentials and builds the config.
func (l *login) configure() error {
	res := validateFile(l.c, l.regFile, l.env, false)
	if res.status != exitOK {
		writeText(l.c.stderr, false, res, false)
		return &exitError{status: res.status}
	}
	l.reg = res.reg
	l.rawRedirect, l.redirect = loopbackRedirect(l.reg)
	if l.redirect == nil {
		return exitf(exitUsage, "the registration has no loopback redirect URI (http://localhost, 127.0.0.1 or [::1] with a port) to listen on")
	}
	creds, err := pleooauth.CredentialsFromEnv()
	if err != nil {
		return exitf(exitUsage, "%v", err)
	}
	// The registered string itself, not a re-serialised URL: Pleo matches
	// redirect URIs exactly.
	opts := []pleooauth.ConfigOption{pleooauth.WithRedirectURL(l.rawRedirect)}
	if l.c.loginEndpoint != nil {
		opts = append(opts, pleooauth.WithEndpoints(*l.c.loginEndpoint))
	}
	if l.cfg, err = l.reg.OAuth2Config(l.env, creds, opts...); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	return nil
}

// authorize starts the flow, listens on the redirect URI, shows the
// authorization URL and waits for the browser to come back with a code,
// which it exchanges for tokens.
func (l *login) authorize() (*oauth2.Token, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	flow, err := connect.NewFlow(l.cfg, key, connect.WithFlowTTL(l.timeout))
	if err != nil {
		return nil, exitf(exitUsage, "%v", err)
	}
	authURL, sealed := flow.Start("pleo-oauth login")
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if l.c.loginHTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, l.c.loginHTTPClient)
	}
	cb, err := listenForCallback(ctx, l.redirect, flow, sealed)
	if err != nil {
		return nil, exitf(exitUsage, "listening on the redirect URI's address: %v", err)
	}
	defer cb.close()

	fmt.Fprintf(l.c.stdout, "Open this URL in a browser and authorise %s:\n\n  %s\n\nWaiting for Pleo to send the browser back to %s (at most %s)...\n",
		l.reg.ClientName, authURL, l.rawRedirect, l.timeout)
	if !l.noBrowser {
		openBrowser(authURL)
	}
	var got callbackResult
	select {
	case got = <-cb.done:
	case <-ctx.Done():
		return nil, exitf(exitFindings, "no answer from the browser within %s", l.timeout)
	}
	switch {
	case errors.Is(got.err, connect.ErrAccessDenied):
		return nil, exitf(exitFindings, "access was denied in the browser")
	case got.err != nil:
		return nil, exitf(exitFindings, "%s", shortError(got.err))
	}
	return got.tok, nil
}

// save writes the tokens to the file and says what they are, never what
// they hold.
func (l *login) save(tok *oauth2.Token) error {
	if err := writeTokenFile(l.out, tok); err != nil {
		return exitf(exitFindings, "writing the tokens: %v", err)
	}
	scope, _ := tok.Extra("scope").(string)
	if scope == "" {
		scope = strings.Join(l.cfg.Scopes, " ")
	}
	fmt.Fprintf(l.c.stdout, "Authorised. Tokens written to %s (mode 0600).\n  access token expires %s (in %s)\n  scopes: %s\n",
		l.out, tok.Expiry.Format(time.RFC3339), time.Until(tok.Expiry).Round(time.Second), scope)
	return nil
}

// callbackResult is what the browser's return to the redirect URI gave.
type callbackResult struct {
	tok *oauth2.Token
	err error
}

// callbackServer listens on the redirect URI for the one callback that
// finishes this login.
type callbackServer struct {
	srv  *http.Server
	done chan callbackResult
}

// listenForCallback listens on every loopback address the redirect URI's
// host names (localhost is 127.0.0.1 and ::1: a browser may use either) and
// serves its path. A callback whose state is not this login's (any page the
// user visits can make the browser call the URI) is answered and ignored;
// the first one that is this login's, approved or denied, is the result.
func listenForCallback(ctx context.Context, redirect *url.URL, flow *connect.Flow, sealed string) (*callbackServer, error) {
	var lns []net.Listener
	var firstErr error
	for _, addr := range listenAddrs(redirect) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return nil, firstErr
	}
	paths := callbackPaths(redirect)
	cb := &callbackServer{done: make(chan callbackResult, 1)}
	var once sync.Once
	cb.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !slices.Contains(paths, r.URL.EscapedPath()) {
			http.NotFound(w, r)
			return
		}
		tok, _, err := flow.Finish(ctx, r, sealed)
		switch {
		case errors.Is(err, connect.ErrStateMismatch) || errors.Is(err, connect.ErrFlowInvalid):
			http.Error(w, "This is not the answer to the login waiting in your terminal; it is still waiting.", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "Authorisation did not complete: "+shortError(err)+". You can close this window.", http.StatusBadRequest)
		default:
			fmt.Fprintln(w, "Authorised. You can close this window and return to the terminal.")
		}
		// The page is written; login stops the server with Shutdown, which
		// lets this response finish before it closes the connection.
		once.Do(func() { cb.done <- callbackResult{tok, err} })
	})}
	for _, ln := range lns {
		go func() { _ = cb.srv.Serve(ln) }()
	}
	return cb, nil
}

// close stops the server once the responses in flight are written.
func (cb *callbackServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cb.srv.Shutdown(ctx) != nil {
		_ = cb.srv.Close()
	}
}

// loopbackRedirect returns the first redirect URI that is http on a
// loopback host spelled as Pleo lists them: the registered string, and the
// URL parsed from it.
func loopbackRedirect(r *pleooauth.Registration) (string, *url.URL) {
	for _, raw := range r.RedirectURIs {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" {
			continue
		}
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return raw, u
		}
	}
	return "", nil
}

// listenAddrs are the addresses to listen on for a loopback redirect URI.
func listenAddrs(u *url.URL) []string {
	port := cmp.Or(u.Port(), "80")
	if u.Hostname() == "localhost" {
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	return []string{net.JoinHostPort(u.Hostname(), port)}
}

// callbackPaths are the request paths the callback may arrive on: the
// registered path as written (a client that sends it unchanged), and with
// its dot segments removed and "/" for none (as a browser sends it).
func callbackPaths(u *url.URL) []string {
	ref := &url.URL{Path: u.Path, RawPath: u.RawPath}
	resolved := (&url.URL{Scheme: "http", Host: "localhost", Path: "/"}).ResolveReference(ref)
	return []string{cmp.Or(u.EscapedPath(), "/"), resolved.EscapedPath()}
}

// shortError is an error's message without its package's prefix; no
// error here contains a token, code or verifier.
func shortError(err error) string {
	msg := err.Error()
	for _, prefix := range []string{"pleooauth: ", "connect: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
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

// tokenFile is what login writes: the fields of the token a developer
// needs to call Pleo's API from their machine.
type tokenFile struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
}

// writeTokenFile writes tok to path readable by its owner only (0600):
// a temporary file beside it, synced and renamed into place, so that a
// crash never leaves half a token file.
func writeTokenFile(path string, tok *oauth2.Token) error {
	tf := tokenFile{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	tf.Scope, _ = tok.Extra("scope").(string)
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
