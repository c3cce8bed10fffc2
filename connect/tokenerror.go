package connect

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// tokenEndpointError is a request the token endpoint answered with an
// error. x/oauth2's *oauth2.RetrieveError keeps the whole response body
// and prints it, and a proxy's error page may echo the request: the client
// secret, the refresh token, the code and the PKCE verifier. This error
// keeps the status and the OAuth error code, and unwraps to a copy of the
// RetrieveError without the body, so that errors.As still finds one.
type tokenEndpointError struct {
	re *oauth2.RetrieveError
}

func (e *tokenEndpointError) Error() string {
	var b strings.Builder
	b.WriteString("connect: token endpoint")
	if e.re.Response != nil {
		b.WriteString(" answered ")
		b.WriteString(e.re.Response.Status)
	}
	if e.re.ErrorCode != "" {
		fmt.Fprintf(&b, ": %s", e.re.ErrorCode)
	}
	return b.String()
}

// Unwrap returns the scrubbed *oauth2.RetrieveError.
func (e *tokenEndpointError) Unwrap() error { return e.re }

// scrubTokenError returns err with any *oauth2.RetrieveError in it replaced
// by a tokenEndpointError that keeps only the status and the OAuth error
// code: the body, the error description and the error URI are dropped, and
// the response reduced to its status (with the standard status text) and a
// Retry-After header given in seconds. A description or a URI is the
// server's free text, and a proxy in front of it may put the request
// there, in any encoding (form-escaped, base64 in a Basic header, HTML); no
// scrubbing of known values can be sure to catch them all. An error code that is not a plain RFC 6749 code (lower-case
// letters and underscores) is dropped too. Other errors (the network's)
// carry no part of the request body and are returned as they are.
func scrubTokenError(err error) error {
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	clean := &oauth2.RetrieveError{}
	if isErrorCode(re.ErrorCode) {
		clean.ErrorCode = re.ErrorCode
	}
	if re.Response != nil {
		clean.Response = &http.Response{
			Status:     strconv.Itoa(re.Response.StatusCode) + " " + http.StatusText(re.Response.StatusCode),
			StatusCode: re.Response.StatusCode,
			Proto:      re.Response.Proto,
			ProtoMajor: re.Response.ProtoMajor,
			ProtoMinor: re.Response.ProtoMinor,
			Header:     http.Header{},
		}
		if v := re.Response.Header.Get("Retry-After"); v != "" && strings.Trim(v, "0123456789") == "" {
			clean.Response.Header.Set("Retry-After", v)
		}
	}
	return &tokenEndpointError{re: clean}
}

// isErrorCode reports whether s looks like an OAuth error code, such as
// invalid_grant or Pleo's invalid_refresh_token.
func isErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}
