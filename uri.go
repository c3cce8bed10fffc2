package pleooauth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// uri checks one URI field and returns the host a browser would connect
// to, or "" when the URI is empty or broken. Redirect URIs get the stricter
// rules of RFC 6749 section 3.1.2 and Pleo's "must match exactly".
func (c *checker) uri(f, raw string, redirect bool) string {
	if raw == "" {
		return "" // structRules or recommended reports it
	}
	// RFC 3986 section 2: white space and control characters never appear
	// in a URI; url.Parse lets some through.
	if hasSpaceControlOrBadUTF8(raw) {
		c.add(f, RuleWhitespace, "contains white space or control characters; percent-encode them or remove them")
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		reason := err.Error()
		var uerr *url.Error
		if errors.As(err, &uerr) {
			reason = uerr.Err.Error()
		}
		c.add(f, RuleInvalidURI, "is not a valid URL: %s", reason)
		return ""
	}
	// url.Parse accepts "javascript:alert(1)" and "/callback" alike; Pleo
	// asks for https links ("Must be HTTPS in production"), so only http
	// and https are accepted, and only with a host.
	if u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http" {
		c.add(f, RuleUnsupportedScheme, "uses the scheme %q; Pleo needs an https URL (http only for loopback hosts in Staging)", u.Scheme)
		return ""
	}
	hostname := u.Hostname()
	if u.Scheme == "" || u.Opaque != "" || hostname == "" {
		c.add(f, RuleNotAbsolute, "must be an absolute URL with a scheme and a host, such as https://client.example/callback")
		return ""
	}
	// Browsers read the host by the WHATWG URL standard: UTS #46 mapping,
	// and IPv4 in short, decimal, octal and hex forms. The rules below apply
	// to the host a browser would reach, not to its spelling.
	host, ip, err := browserHost(hostname)
	if err != nil {
		c.add(f, RuleInvalidURI, "has a host that is %s", strings.TrimPrefix(err.Error(), errBrowserHost.Error()+": "))
		return ""
	}
	ok := true
	// Invisible characters hide what a link is: "pl\u00adeo.io" reads, and
	// resolves, as pleo.io. The decoded host is searched too.
	if r, found := formatCharacter(raw); found {
		c.add(f, RuleFormatCharacters, "contains the invisible formatting character %U (zero-width, soft hyphen, bidi control or similar); remove it", r)
		ok = false
	} else if r, found := formatCharacter(hostname); found {
		c.add(f, RuleFormatCharacters, "has a host holding the invisible formatting character %U (percent-encoded); remove it", r)
		ok = false
	}
	// RFC 6749 section 3.1.2: "The endpoint URI MUST NOT include a fragment
	// component." The raw string is searched: url.Parse drops a bare
	// trailing "#" without a trace.
	if redirect && strings.Contains(raw, "#") {
		c.add(f, RuleFragment, "must not contain a fragment (#...); RFC 6749 section 3.1.2 forbids one in a redirect URI")
		ok = false
	}
	// RFC 9700 section 4.1 and RFC 3986 section 3.2.1: credentials in a URI
	// are deprecated and leak; a redirect URI is public.
	if u.User != nil {
		c.add(f, RuleUserinfo, "must not contain a user name or password before the host")
		ok = false
	}
	// Pleo: redirect URIs "Must match exactly (aliases or wildcards are not
	// supported)". A "*" anywhere in a redirect URI, or in any host, is
	// refused rather than guessed at.
	if redirect && strings.Contains(raw, "*") || strings.Contains(u.Host, "*") {
		c.add(f, RuleWildcard, "must not contain a wildcard (*); Pleo matches redirect URIs exactly and supports no wildcards")
		ok = false
	}
	// url.Parse accepts any run of digits as a port, 0 and 99999 included,
	// and an empty port after the colon.
	if strings.HasSuffix(u.Host, ":") {
		c.add(f, RuleInvalidPort, "has a colon but no port after the host; remove the colon or give a port")
		ok = false
	} else if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			c.add(f, RuleInvalidPort, "has port %s; a port must be between 1 and 65535", p)
			ok = false
		}
	}
	// Seed: "Do not use Pleo branding or claim your app is a Pleo client."
	// A link of the partner's pointing at Pleo's own site does both.
	if isPleoHost(host) {
		c.add(f, RulePleoDomain, "points at Pleo's own domain %s; give a page of your own application", host)
		ok = false
	}
	switch {
	case c.env == Production && isLocalHost(host, ip):
		// Seed: loopback URIs are "For local development". A Production
		// client's users cannot reach the partner's own machine, so no
		// loopback host is accepted there, over https either; nor the
		// unspecified addresses 0.0.0.0 and [::], which browsers send to
		// the machine they run on.
		shown := hostname
		switch {
		case ip.IsValid() && !ip.Unmap().IsLoopback():
			shown = fmt.Sprintf("the unspecified address %s, which browsers send to the machine they run on", hostname)
		case host != strings.TrimSuffix(strings.ToLower(hostname), "."):
			shown = fmt.Sprintf("%s, which a browser reads as %s", hostname, host)
		}
		c.add(f, RuleLoopbackInProduction, "points at a loopback host (%s); loopback URIs are for local development in Staging only", shown)
		ok = false
	case u.Scheme == "http" && c.env == Production:
		// Seed: "Must be HTTPS in production."
		c.add(f, RuleHTTPSRequired, "must use https in Production")
		ok = false
	case u.Scheme == "http" && !isExactLoopback(u):
		// Seed: "For local development, loopback redirect URIs (localhost,
		// 127.0.0.1, [::1]) may use HTTP." Only those three spellings: a name
		// like localhost.evil.example or 127.0.0.1.nip.io resolves wherever
		// its owner likes, and 127.000.000.001 or [::ffff:127.0.0.1] is not
		// what Pleo lists.
		c.add(f, RuleHTTPSRequired, "must use https; http is allowed only in Staging and only for a loopback host written exactly localhost, 127.0.0.1 or [::1]")
		ok = false
	}
	if !ok {
		return ""
	}
	return host
}

// hasSpaceControlOrBadUTF8 reports white space, control characters or
// invalid UTF-8 in s, looking at ASCII bytes directly.
func hasSpaceControlOrBadUTF8(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
		i += size
	}
	return false
}

// isExactLoopback reports whether u's host is spelled exactly as one of the
// loopback hosts Pleo lists: localhost, 127.0.0.1 or [::1], with any port.
func isExactLoopback(u *url.URL) bool {
	host := u.Host
	if p := u.Port(); p != "" {
		host = strings.TrimSuffix(host, ":"+p)
	}
	switch host {
	case "localhost", "127.0.0.1", "[::1]":
		return true
	}
	return false
}

// sameSite warns when a link shown to users lives off the client's own site.
// RFC 7591 section 5 asks the server to check that logo_uri, tos_uri and
// policy_uri are on the client's host, since a rogue client could point
// them anywhere. A subdomain of client_uri's host is the same site, and a
// leading "www." on client_uri's host is ignored.
func (c *checker) sameSite(f, host, client string) {
	if host == "" || client == "" || c.errorsOnly {
		return
	}
	site := strings.TrimPrefix(client, "www.")
	if host == site || strings.HasSuffix(host, "."+site) {
		return
	}
	c.add(f, RuleDifferentHost, "is on %s, not on client_uri's site %s; Pleo shows this link to users, so host it on your own site (RFC 7591 section 5)", host, site)
}
