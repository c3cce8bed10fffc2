package connect

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/partnerkit/pleooauth/internal/pkceverify"
)

// FuzzFlowVerify feeds arbitrary sealed values and callback queries to a
// flow: it never panics, and it gives a code only for the value it sealed
// with the state it sent.
func FuzzFlowVerify(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	fl, err := NewFlow(benchConfig(), key)
	if err != nil {
		f.Fatal(err)
	}
	authURL, sealed := fl.Start("account-1")
	u, _ := url.Parse(authURL)
	state := u.Query().Get("state")
	f.Add(sealed, "code=c&state="+state)
	f.Add(sealed, "error=access_denied&state="+state)
	f.Add(sealed[:len(sealed)-1]+"A", "code=c&state="+state)
	f.Add("AQ", "state=")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, sealed, query string) {
		// A fresh flow each time, so that a value is never "already used".
		fl, err := NewFlow(benchConfig(), key)
		if err != nil {
			t.Fatal(err)
		}
		req := &http.Request{URL: &url.URL{RawQuery: query}}
		code, o, err := fl.verify(req, sealed)
		var aerr *authorizationError
		switch {
		case err == nil:
			if code == "" || pkceverify.Verifier(o.verifier) != nil || o.account != "account-1" {
				t.Fatalf("verified without a code, with a bad verifier or with another account")
			}
		case errors.Is(err, ErrFlowInvalid), errors.Is(err, ErrFlowExpired), errors.Is(err, ErrStateMismatch), errors.As(err, &aerr):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
