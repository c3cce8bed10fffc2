package pleooauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"golang.org/x/text/unicode/norm"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// Seed corpora live in testdata/fuzz/<FuzzName>; the f.Add calls below add
// the shipped examples. Run one target with, for example:
//
//	go test -run '^$' -fuzz '^FuzzParseRegistration$' -fuzztime 30s .

func addFiles(f *testing.F, names ...string) {
	for _, name := range names {
		data, err := readTestdata(name)
		require.NoError(f, err)
		f.Add(data)
	}
}

func FuzzParseRegistration(f *testing.F) {
	addFiles(f, "seed-example.yaml", "seed-example.json")
	f.Add([]byte("client_name: [1\n"))
	f.Add([]byte(`{"client_name": 1, "x": {"y": [1, 2]}}`))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	for _, h := range hostileYAML() {
		f.Add([]byte(h.doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRegistration(data)
		var serr *SyntaxError
		if errors.As(err, &serr) {
			if r != nil {
				t.Fatal("a syntax error returns no registration")
			}
			if errors.Is(err, ErrInvalidRegistration) || !strings.HasPrefix(err.Error(), "pleooauth: registration is not valid JSON or YAML") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad syntax error: %q", err)
			}
			return
		}
		if r == nil {
			t.Fatalf("no registration and no syntax error: %v", err)
		}
		if err != nil {
			var verrs ValidationErrors
			if !errors.As(err, &verrs) || !errors.Is(err, ErrInvalidRegistration) {
				t.Fatalf("content findings must be ValidationErrors: %T %v", err, err)
			}
			checkFindings(t, verrs)
		}
		for _, env := range environments {
			report := r.Check(env)
			checkFindings(t, report.Errors)
			checkFindings(t, report.Warnings)
		}
		if err == nil {
			// What parses cleanly marshals and parses back to the same.
			out, merr := json.Marshal(r)
			if merr != nil {
				t.Fatal(merr)
			}
			back, berr := ParseRegistration(out)
			if berr != nil {
				t.Fatalf("round trip: %v", berr)
			}
			if again, _ := json.Marshal(back); !bytes.Equal(out, again) {
				t.Fatalf("round trip changed the registration:\n%s\n%s", out, again)
			}
		}
	})
}

// checkFindings asserts what every finding promises: a known-shaped rule,
// a message, form order.
func checkFindings(t *testing.T, findings []FieldError) {
	t.Helper()
	prevRank, prevIdx := -1, -1
	for _, f := range findings {
		if rule := string(f.Rule); rule == "" || strings.ToLower(rule) != rule || strings.ContainsFunc(rule, func(r rune) bool { return r != '_' && !unicode.IsLower(r) }) {
			t.Fatalf("rule %q is not lower_snake", f.Rule)
		}
		if f.Message == "" {
			t.Fatalf("empty message for %s", f.Rule)
		}
		rank, idx := fieldRank(f.Field)
		if rank < prevRank || rank == prevRank && idx < prevIdx && rank < len(fields) {
			t.Fatalf("findings out of form order at %q: %v", f.Field, rules(findings))
		}
		prevRank, prevIdx = rank, idx
	}
}

// FuzzSecretNeverEchoed puts a marked secret in a registration file, in
// several shapes, and checks that no finding or error ever shows it.
func FuzzSecretNeverEchoed(f *testing.F) {
	f.Add("12345a6bcd789ef012abcd34ef5a6b", uint8(0))
	f.Add("\"unterminated", uint8(1))
	f.Add("[broken", uint8(2))
	f.Add("x\n  - y", uint8(3))
	f.Fuzz(func(t *testing.T, value string, shape uint8) {
		const marker = "QZXSECRETQZX"
		secret := marker + value
		var doc string
		switch shape % 5 {
		case 0:
			doc = "client_name: Example Client\nclient_secret: " + secret + "\n"
		case 1:
			doc = "client_secret: \"" + secret + "\"\nscope: users:read\n"
		case 2:
			doc = `{"client_secret": "` + secret + `", "scope": "users:read"}`
		case 3:
			doc = "client_name: Example\npassword: '" + secret + "'\n"
		case 4:
			doc = `{"client_secret": ` + secret + `}`
		}
		r, err := ParseRegistration([]byte(doc))
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("error echoes the secret: %q", err)
		}
		if r == nil {
			return
		}
		if out, _ := json.Marshal(r); bytes.Contains(out, []byte(marker)) {
			t.Fatalf("the secret was decoded into the registration: %s", out)
		}
	})
}

func FuzzRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://client.example/callback", "http://localhost:8080/cb", "http://[::1]/cb", "http://127.0.0.1:1/cb",
		"https://client.example/cb#", "javascript:alert(1)", "https://u@h/", "https://h:99999/", "/cb",
		"http://[::ffff:127.0.0.1]/cb", "https://*.h/", "https://h:/", "HTTP://LOCALHOST/",
		"https://127.1/cb", "https://2130706433/cb", "https://0x7f.1/cb", "https://ｌｏｃａｌｈｏｓｔ/cb",
		"https://pleo。io/", "https://ｐｌｅｏ.io/", "https://pl\u00adeo.io/", "https://0.0.0.0/cb", "https://[::]/cb",
		"https://bücher.example/cb", "https://0177.0.0.1/cb", "https://pl%C2%ADeo.io/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, env := range environments {
			r := complete()
			r.RedirectURIs = []string{raw}
			report := r.Check(env)
			checkFindings(t, report.Errors)
			accepted := true
			for _, e := range report.Errors {
				if e.Field == "redirect_uris[0]" {
					accepted = false
				}
				if e.Field != "redirect_uris[0]" {
					t.Fatalf("a redirect URI caused a finding on %s: %v", e.Field, e)
				}
			}
			if !accepted {
				continue
			}
			// Whatever is accepted keeps every promise of the rules.
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("accepted %q, which does not parse: %v", raw, err)
			}
			switch {
			case strings.ContainsAny(raw, "#*"):
				t.Fatalf("accepted %q with a fragment or wildcard", raw)
			case u.User != nil:
				t.Fatalf("accepted %q with userinfo", raw)
			case u.Hostname() == "" || !u.IsAbs():
				t.Fatalf("accepted %q without a host", raw)
			case strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
				t.Fatalf("accepted %q with white space", raw)
			case u.Scheme != "https" && u.Scheme != "http":
				t.Fatalf("accepted scheme %q", u.Scheme)
			case env == Production && u.Scheme != "https":
				t.Fatalf("accepted %q in Production", raw)
			case env == Production && reachesThisMachine(u.Hostname()):
				t.Fatalf("accepted loopback %q in Production", raw)
			case reachesPleo(u.Hostname()):
				t.Fatalf("accepted %q, which a browser sends to Pleo", raw)
			case strings.ContainsFunc(raw, isFormatCharacter):
				t.Fatalf("accepted %q with an invisible formatting character", raw)
			case u.Scheme == "http" && !isExactLoopback(u):
				t.Fatalf("accepted http %q for a host that is not spelled as loopback", raw)
			}
		}
	})
}

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"users:read users:write", "users.read", "  a:b  ", "a:b:c", "test:test", "Users:Read", "a:b\tc:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, err := ParseScopes(s)
		if err != nil && !errors.Is(err, ErrInvalidScope) {
			t.Fatalf("unexpected error type: %v", err)
		}
		seen := map[Scope]bool{}
		for _, sc := range scopes {
			if !wellFormedScope(string(sc)) || seen[sc] {
				t.Fatalf("returned malformed or repeated scope %q", sc)
			}
			seen[sc] = true
		}
		if err == nil {
			for tok := range strings.SplitSeq(s, " ") {
				if tok != "" && !seen[Scope(tok)] {
					t.Fatalf("dropped %q without an error", tok)
				}
			}
		}
		joined := make([]string, len(scopes))
		for i, sc := range scopes {
			joined[i] = string(sc)
		}
		again, err := ParseScopes(strings.Join(joined, " "))
		if err != nil || len(again) != len(scopes) {
			t.Fatalf("well-formed scopes do not parse back: %v %v", again, err)
		}
	})
}

// seenByBrowser is an oracle for the host checks, written apart from
// browserHost: NFKC folding, invisible characters and the dot look-alikes
// removed, lower case.
func seenByBrowser(hostname string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(hostname) {
		switch {
		case isFormatCharacter(r):
		case r == '\u3002' || r == '\uff0e' || r == '\uff61':
			b.WriteByte('.')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return strings.TrimSuffix(b.String(), ".")
}

// reachesThisMachine is an oracle: does a browser send hostname to this
// machine? IPv4 numbers are read with strconv's base prefixes, as
// inet_aton (and so WHATWG) reads them.
func reachesThisMachine(hostname string) bool {
	h := seenByBrowser(hostname)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.Is6() {
		ip = ip.Unmap()
		return ip.IsLoopback() || ip.IsUnspecified() || ip.Is4() && ip.As4()[0] == 0
	}
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return false
	}
	var v uint64
	for i, p := range parts {
		if p == "" || strings.ContainsAny(p, "_+-oObB") && !strings.HasPrefix(strings.ToLower(p), "0x") {
			return false
		}
		n, err := strconv.ParseUint(p, 0, 64)
		if strings.EqualFold(p, "0x") {
			n, err = 0, nil
		}
		if err != nil {
			return false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return false
			}
			v = v<<8 | n
			continue
		}
		rest := uint(8 * (5 - len(parts)))
		if n >= 1<<rest {
			return false
		}
		v = v<<rest | n
	}
	first := v >> 24
	return first == 127 || first == 0
}

func reachesPleo(hostname string) bool {
	h := seenByBrowser(hostname)
	return h == "pleo.io" || strings.HasSuffix(h, ".pleo.io")
}

func FuzzClientName(f *testing.F) {
	for _, s := range []string{
		"Example Client", "Ple\u200bo Sync", "P\u00adleo Sync", "Ｐｌｅｏ Sync", "Sync \u202eoelP",
		"Sync\u200eApp", "Sync\u061cApp", "Café Compta", "\u0420leo", "Pléo",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		r := complete()
		r.ClientName = name
		report := r.Check(Production)
		checkFindings(t, report.Errors)
		if len(report.Errors) > 0 {
			return
		}
		// An accepted name holds no invisible character, and does not read
		// as Pleo once compatibility forms are folded (an oracle written
		// apart from brandSkeleton, and weaker than it).
		if strings.ContainsFunc(name, isFormatCharacter) {
			t.Fatalf("accepted %+q with an invisible formatting character", name)
		}
		if strings.Contains(strings.ToLower(norm.NFKC.String(name)), "pleo") {
			t.Fatalf("accepted %+q, which reads as Pleo", name)
		}
	})
}
