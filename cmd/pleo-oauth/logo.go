package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/partnerkit/pleooauth/logo"
)

// Bounds on fetching a logo by URL: how many redirects it follows, and how
// long it may take.
const (
	logoRedirects = 3
	logoTimeout   = 10 * time.Second
)

// newLogoClient is the client that fetches logos: it follows at most
// logoRedirects redirects, and only to https.
func newLogoClient() *http.Client {
	return &http.Client{CheckRedirect: checkLogoRedirect}
}

func checkLogoRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= logoRedirects {
		return fmt.Errorf("stopped after %d redirects (the redirect bound)", logoRedirects)
	}
	if req.URL.Scheme != "https" {
		return errors.New("redirected to a URL that is not https")
	}
	return nil
}

func runLogo(c *cli, args []string) int {
	fs := newFlagSet(c, "logo", fmt.Sprintf(`Logo checks that a logo image is square (1:1 ratio), as Pleo asks. It reads
PNG, JPEG, GIF, WebP and SVG, from a file or an https URL, at most %d MiB, and
gives up on a URL after %d seconds. It exits 0 for a square image, 1 for one
that is not square or not an image, and 2 when the file or URL cannot be read.`, logo.MaxBytes>>20, int(logoTimeout/time.Second)))
	args, status, carryOn := parseFlags(c, fs, args)
	if !carryOn {
		return status
	}
	if len(args) != 1 {
		return usageError(c, fs, "give exactly one FILE or URL")
	}
	src := args[0]
	var (
		data []byte
		err  error
	)
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		data, err = fetchLogo(c.logoClient, c.logoTimeout, src)
	} else {
		data, err = readFile(src, "an image", logo.MaxBytes+1)
	}
	// Reading stops one byte past the size bound, so that logo.Check can
	// refuse an image that is too large, naming the bound.
	if err != nil {
		// The message may hold what a server sent (its status line): print
		// it with control characters escaped.
		fmt.Fprintf(c.stderr, "pleo-oauth logo: %s\n", printable(err.Error()))
		if errors.Is(err, logo.ErrInvalid) {
			return exitFindings
		}
		return exitUsage
	}
	if err := logo.Check(bytes.NewReader(data)); err != nil {
		fmt.Fprintf(c.stdout, "%s: %s\n", src, strings.TrimPrefix(err.Error(), "logo: "))
		return exitFindings
	}
	fmt.Fprintf(c.stdout, "%s: square, as Pleo asks\n", src)
	return exitOK
}

// fetchLogo gets an https URL within the time, size and redirect bounds,
// and says which bound stopped it.
func fetchLogo(client *http.Client, timeout time.Duration, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%s: only https URLs are fetched", raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("%s: gave up after %s (the time bound)", raw, timeout)
		}
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: the server answered %s", raw, resp.Status)
	}
	if resp.ContentLength > logo.MaxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d MiB size bound", logo.ErrInvalid, raw, resp.ContentLength, logo.MaxBytes>>20)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, logo.MaxBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("%s: gave up after %s (the time bound)", raw, timeout)
		}
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	return data, nil
}

// printable escapes the characters of s that would not show as themselves
// on a terminal (control characters, whose escape sequences can rewrite the
// screen; invalid UTF-8; invisible formatting characters), the way Go
// quotes strings, without the quotes.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
