// Package suggest finds the likely intended spelling of a mistyped name,
// for "did you mean" hints in pleooauth's findings and in the pleo-oauth
// command.
package suggest

import (
	"strings"
	"unicode"
)

// Closest returns the candidate closest to s, for a "did you mean" hint, or
// "" when none is close enough to be a likely typo. Comparison ignores case
// and treats "-", "." and camelCase humps as "_", so "redirectURIs",
// "Client-Name" and "users.read" find their intended spelling.
func Closest(s string, candidates []string) string {
	if s == "" || len(s) > 64 {
		return ""
	}
	ns := Normalize(s)
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == s {
			continue
		}
		d := editDistance(ns, Normalize(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	// A third of the length, and at least 1, at most 3 edits: close enough
	// to be a slip of the keyboard, far enough not to suggest nonsense.
	limit := min(max(len(ns)/3, 1), 3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// Normalize lowers s and turns "-", ".", " " and camelCase humps into "_",
// so that "redirectURIs", "Client-Name" and "users.read" compare with the
// names they meant.
func Normalize(s string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range s {
		switch {
		case r == '-' || r == '.' || r == ' ':
			b.WriteByte('_')
			prevLower = false
		case unicode.IsUpper(r):
			if prevLower {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			prevLower = false
		default:
			b.WriteRune(r)
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		}
	}
	return b.String()
}

// Distance is the number of edits between a and b as [Closest] counts
// them: the Levenshtein distance, by bytes, between [Normalize] of each.
// An edit inserts, deletes or replaces one byte, so two neighbours swapped
// ("raed" for "read") are two edits.
func Distance(a, b string) int {
	return editDistance(Normalize(a), Normalize(b))
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// DidYouMean formats Closest's answer as the end of a message, such as
// `; did you mean "scope"?`, or "".
func DidYouMean(s string, candidates []string) string {
	if c := Closest(s, candidates); c != "" {
		return `; did you mean "` + c + `"?`
	}
	return ""
}
