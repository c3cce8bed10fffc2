package pleooauth

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// browserIDNA maps a host the way a browser does before it looks it up:
// the WHATWG URL standard's "domain to ASCII", which is UTS #46 processing
// with CheckBidi and CheckJoiners on, Transitional_Processing,
// UseSTD3ASCIIRules and CheckHyphens off. It folds case and width, maps
// the ideographic full stop to a dot, and drops soft hyphens and
// zero-width characters, so "ｐｌｅｏ。io" and "pl\u00adeo.io" both become
// "pleo.io". Options later in the list override earlier ones.
var browserIDNA = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// errBrowserHost is wrapped by the reasons browserHost refuses a host.
var errBrowserHost = errors.New("not a host a browser can reach")

// browserHost returns the host a browser would connect to for hostname
// (as url.URL.Hostname returns it: brackets removed, escapes decoded): the
// ASCII domain name after UTS #46 mapping, or the IP address. IPv4 is read
// as the WHATWG URL standard reads it, so 127.1, 2130706433, 0x7f.1 and
// 0177.0.0.1 are all 127.0.0.1. A host a browser would refuse is an error.
func browserHost(hostname string) (host string, ip netip.Addr, err error) {
	if strings.Contains(hostname, ":") {
		// An IPv6 literal. Browsers accept no zone (%eth0).
		ip, err := netip.ParseAddr(hostname)
		if err != nil || ip.Zone() != "" || !ip.Is6() {
			return "", netip.Addr{}, fmt.Errorf("%w: %q is not an IPv6 address", errBrowserHost, hostname)
		}
		return ip.String(), ip, nil
	}
	ascii := strings.ToLower(hostname)
	if !plainASCIIHost(hostname) {
		ascii, err = browserIDNA.ToASCII(hostname)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("%w: it fails internationalised domain name (UTS #46) mapping", errBrowserHost)
		}
		ascii = strings.ToLower(ascii)
	}
	if i := strings.IndexFunc(ascii, forbiddenDomainRune); i >= 0 {
		return "", netip.Addr{}, fmt.Errorf("%w: it holds the character %q, which no host may", errBrowserHost, ascii[i])
	}
	if endsInNumber(ascii) {
		ip, err := parseWHATWGIPv4(ascii)
		if err != nil {
			return "", netip.Addr{}, err
		}
		return ip.String(), ip, nil
	}
	return strings.TrimSuffix(ascii, "."), netip.Addr{}, nil
}

// plainASCIIHost reports whether hostname is ASCII letters, digits,
// hyphens, underscores and dots in non-empty labels, none of them an
// A-label ("xn--"): the host of nearly every registration. UTS #46 with
// browserIDNA's options maps such a name to its lowercase form and has
// nothing in it to refuse, so browserHost skips the mapping for it; a test
// checks that the two agree.
func plainASCIIHost(hostname string) bool {
	label := 0 // length of the label so far
	for i := 0; i < len(hostname); i++ {
		switch c := hostname[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case label == 0 && (c == 'x' || c == 'X') && len(hostname) >= i+4 && strings.EqualFold(hostname[i:i+4], "xn--"):
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
	}
	return label > 0
}

// forbiddenDomainRune reports the WHATWG URL standard's forbidden domain
// code points that can remain after mapping.
func forbiddenDomainRune(r rune) bool {
	return r <= 0x20 || r == 0x7f || strings.ContainsRune("#%/:<>?@[\\]^|", r)
}

// endsInNumber is the WHATWG URL standard's "ends in a number checker": a
// host whose last label (a trailing empty one aside) is a number is an IPv4
// address, or no host at all.
func endsInNumber(host string) bool {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" {
		if len(parts) == 1 {
			return false
		}
		parts = parts[:len(parts)-1]
	}
	last := parts[len(parts)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, err := parseIPv4Number(last)
	return err == nil
}

// parseWHATWGIPv4 is the WHATWG URL standard's IPv4 parser: one to four
// dot-separated numbers, each decimal, octal (leading 0) or hexadecimal
// (leading 0x); the last fills the bytes that are left.
func parseWHATWGIPv4(host string) (netip.Addr, error) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	bad := fmt.Errorf("%w: %q ends in a number but is not an IPv4 address", errBrowserHost, host)
	if len(parts) > 4 {
		return netip.Addr{}, bad
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := parseIPv4Number(p)
		if err != nil {
			return netip.Addr{}, bad
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, bad
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, bad
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		v += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// parseIPv4Number reads one part of an IPv4 address as WHATWG does.
func parseIPv4Number(s string) (uint64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, nil
	}
	if strings.ContainsAny(s, "+-_") {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		// Out of range is as good as too large for an address.
		var nerr *strconv.NumError
		if errors.As(err, &nerr) && nerr.Err == strconv.ErrRange {
			return 1 << 40, nil
		}
		return 0, err
	}
	return min(n, 1<<40), nil
}

// isLocalHost reports whether a browser host (as browserHost returns it)
// names this machine or no machine: localhost and its subdomains (RFC 6761
// section 6.3), loopback addresses (127.0.0.0/8, ::1, and IPv4-mapped
// forms), and the unspecified addresses (0.0.0.0/8 and ::), which browsers
// send to this machine too.
func isLocalHost(host string, ip netip.Addr) bool {
	if ip.IsValid() {
		ip = ip.Unmap()
		return ip.IsLoopback() || ip.IsUnspecified() || ip.Is4() && ip.As4()[0] == 0
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// isPleoHost reports whether a browser host is Pleo's domain or under it.
func isPleoHost(host string) bool {
	return host == "pleo.io" || strings.HasSuffix(host, ".pleo.io")
}

// formatCharacter returns the first invisible formatting character in s:
// Unicode category Cf (zero-width spaces and joiners, the soft hyphen, bidi
// marks, overrides and isolates, the byte-order mark, tag characters) or a
// default-ignorable code point (the Hangul fillers, the combining grapheme
// joiner). Such a character changes how a text reads, or reads as nothing.
func formatCharacter(s string) (rune, bool) {
	// ASCII holds no format character: skip to the first byte that is not
	// ASCII, as nearly every URI and name has none.
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	for _, r := range s[i:] {
		if isFormatCharacter(r) {
			return r, true
		}
	}
	return 0, false
}

func isFormatCharacter(r rune) bool {
	return r >= 0x80 && (unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r))
}

// lookalikes maps letters that read as p, l, e or o in common fonts (from
// Unicode's confusables list: Cyrillic, Greek, Armenian and Coptic letters,
// and the ASCII characters that stand in for l and o) to them. NFKD has
// already folded width, font and circled forms.
var lookalikes = strings.NewReplacer(
	// p
	"\u0440", "p", "\u0420", "p", "\u03c1", "p", "\u03a1", "p", "\u2ca3", "p", "\u2ca2", "p",
	// l
	"I", "l", "1", "l", "|", "l", "\u04cf", "l", "\u04c0", "l", "\u0406", "l", "\u0399", "l", "\u01c0", "l", "\u05c0", "l", "\u2c92", "l",
	// e
	"\u0435", "e", "\u0415", "e", "\u0395", "e", "\u04bd", "e", "\u212e", "e", "\u2c88", "e",
	// o
	"0", "o", "\u043e", "o", "\u041e", "o", "\u03bf", "o", "\u039f", "o", "\u0585", "o", "\u1d0f", "o", "\u2c9f", "o", "\u2c9e", "o",
)

// brandSkeleton is name as a reader sees it, for the Pleo branding rule:
// compatibility forms folded (NFKD: full-width, mathematical and circled
// letters), accents and invisible characters removed, look-alike letters
// mapped to the Latin ones, and lower case.
func brandSkeleton(name string) string {
	// NFKD leaves ASCII as it is, and ASCII has no accents or invisible
	// characters to remove.
	if strings.IndexFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		var b strings.Builder
		for _, r := range norm.NFKD.String(name) {
			if unicode.Is(unicode.Mn, r) || isFormatCharacter(r) {
				continue
			}
			b.WriteRune(r)
		}
		name = b.String()
	}
	return strings.ToLower(lookalikes.Replace(name))
}
