package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/partnerkit/pleooauth"
	"github.com/partnerkit/pleooauth/pleooauthtest"
)

// fakeCompanies are the Pleo companies the fake's consent page offers.
var fakeCompanies = []pleooauthtest.Company{
	{Subject: demoCompany1, Name: "Acme ApS"},
	{Subject: demoCompany2, Name: "Globex A/S"},
}

// The environment variables fake prints, for an app to point at it.
const (
	envAuthorizeURL     = "PLEO_AUTHORIZE_URL"
	envTokenURL         = "PLEO_TOKEN_URL"
	envIntrospectionURL = "PLEO_INTROSPECTION_URL"
	envAPIBaseURL       = "PLEO_API_BASE_URL"
	// envFakeURL is the fake's URL alone: an app in Go gets all four
	// endpoints from it with pleooauthtest.EndpointsAt.
	envFakeURL = "PLEO_FAKE_URL"
)

func runFake(c *cli, args []string) int {
	fs := newFlagSet(c, "fake", `Fake serves a fake Pleo (package pleooauthtest) for the registration until
interrupted (Ctrl-C or SIGTERM), with a consent page to pick a company on, so
that an app on this machine runs its real OAuth flow against it. The
registration must be valid for Staging (loopback http redirect URIs are
fine). Like Pleo, the fake accepts only its redirect URIs, matched exactly,
port included.

It makes up a client ID and secret on each run and prints what the app needs
on standard output, as NAME=value lines for an env file or a shell
(pleo-oauth fake --registration FILE > pleo.env &, then set -a; . ./pleo.env;
set +a): PLEO_CLIENT_ID, PLEO_CLIENT_SECRET (none for a public client),
PLEO_AUTHORIZE_URL, PLEO_TOKEN_URL, PLEO_INTROSPECTION_URL,
PLEO_API_BASE_URL, and PLEO_FAKE_URL, the fake's URL (an app in Go gets the
four from it with pleooauthtest.EndpointsAt). Printing the secret is the
point: it is the fake's own, works nowhere else and ends with it. What it serves (address, redirect URIs,
scopes, companies) goes to standard error.

For a test whose app is an httptest server on a random port: make the app's
listener first (httptest.NewUnstartedServer, or net.Listen("tcp",
"127.0.0.1:0")), register http://127.0.0.1:PORT/your/callback with that
port (in the Registration, or in the file the test writes), start the fake
(pleooauthtest.NewServer in the test, or this command on that file), and the
app last. A redirect URI registered with another port does not match.

It exits 0 when interrupted, 1 when the registration has errors for Staging,
and 2 on a usage error, an unreadable file, input that is not JSON or YAML,
or an address it cannot listen on.`)
	regFile := fs.String("registration", "", "the registration manifest (required)")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on; port 0 picks a free one")
	args, status, carryOn := parseFlags(c, fs, args)
	if !carryOn {
		return status
	}
	if *regFile == "" || len(args) != 0 {
		return usageError(c, fs, "give --registration FILE and no other arguments")
	}
	res := validateFile(c, *regFile, pleooauth.Staging, false)
	if res.status != exitOK {
		writeText(c.stderr, false, res, false)
		return res.status
	}
	reg := res.reg
	secret := ""
	if !reg.IsPublic() {
		secret = newFakeSecret()
	}
	creds, err := pleooauth.NewCredentials(newFakeClientID(), secret)
	if err != nil {
		fmt.Fprintf(c.stderr, "pleo-oauth fake: %v\n", err)
		return exitFindings
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(c.stderr, "pleo-oauth fake: --addr %q: %v\n", *addr, err)
		return exitUsage
	}

	parent := c.fakeContext
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := pleooauthtest.NewServer(reg, creds, pleooauthtest.WithListener(ln), pleooauthtest.WithConsentPage(fakeCompanies...))
	base := "http://" + reachable(ln.Addr())

	companies := make([]string, len(fakeCompanies))
	for i, co := range fakeCompanies {
		companies[i] = fmt.Sprintf("%s (%s)", co.Name, co.Subject)
	}
	fmt.Fprintf(c.stderr, "pleo-oauth fake: a fake Pleo for %s at %s, for tests only\n  redirect URIs, matched exactly: %s\n  scopes: %s\n  companies on the consent page: %s\nServing until interrupted (Ctrl-C).\n",
		reg.ClientName, base, strings.Join(reg.RedirectURIs, " "), reg.Scope, strings.Join(companies, ", "))
	fmt.Fprintf(c.stdout, "%s=%s\n", pleooauth.EnvClientID, creds.ClientID)
	if creds.HasSecret() {
		// The fake's own made-up secret: showing it is what this command is for.
		fmt.Fprintf(c.stdout, "%s=%s\n", pleooauth.EnvClientSecret, creds.ClientSecret.Reveal())
	}
	e := pleooauthtest.EndpointsAt(base)
	fmt.Fprintf(c.stdout, "%s=%s\n%s=%s\n%s=%s\n%s=%s\n%s=%s\n",
		envAuthorizeURL, e.AuthURL, envTokenURL, e.TokenURL,
		envIntrospectionURL, e.IntrospectionURL, envAPIBaseURL, e.APIBaseURL, envFakeURL, base)

	<-ctx.Done()
	srv.Close() // waits for the requests in flight
	fmt.Fprintln(c.stderr, "pleo-oauth fake: stopped")
	return exitOK
}

// reachable is the address to print for a listener's: a wildcard one
// (--addr :9090) is reached on the loopback address.
func reachable(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	return a.String()
}

// newFakeClientID makes a client ID shaped as Pleo's are: a random UUID
// (version 4).
func newFakeClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newFakeSecret makes a client secret shaped as Pleo's example is: hex,
// here of 16 random bytes.
func newFakeSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
