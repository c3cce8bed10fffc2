package connect

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Keys are a backend's keys, read by [ParseKeys] from one setting that
// every instance shares: the token keys for [WithKeys] and the flow key for
// [NewFlow], each derived from the setting's keys for its own purpose.
// Printing a Keys shows no key. The zero Keys holds none: [NewManager] and
// [NewFlow] refuse it.
type Keys struct {
	p *derivedKeys // behind a pointer, so that fmt prints an address
}

type derivedKeys struct {
	token [][]byte // one per key given, in order: the first seals
	flow  []byte   // from the first key given
}

// The HKDF info strings that keep the purposes apart (RFC 5869 section
// 3.2: "info" binds the derived key to its application).
const (
	tokenKeyInfo = "pleooauth token key"
	flowKeyInfo  = "pleooauth flow key"
)

// derivedKeySize is the size of every derived key: AES-256.
const derivedKeySize = 32

// ParseKeys reads a comma-separated list of keys, as kept in an
// environment variable (PLEO_KEYS, say): each the base64 (standard or URL
// alphabet, padded or not; spaces around it ignored) of 16, 24 or 32
// random bytes, such as `openssl rand -base64 32` prints.
//
// The first key seals, every key opens: to rotate, put a new key first
// ("new,old"), and drop the old one once every connection has been saved
// again (each refresh re-seals). A flow started under the old first key
// does not finish after the switch; flows last minutes ([DefaultFlowTTL]),
// so at worst a user connecting at that moment starts again.
//
// The keys given are not used as they are. Each purpose gets its own key,
// derived with HKDF-SHA256 (RFC 5869) with the purpose in its info, so
// that one setting serves both and the flow key can never be a token key,
// which two settings kept apart by hand cannot promise. Keys that a
// backend used before directly with [WithKeys] therefore do not open what
// the derived ones seal, nor the reverse: to move to ParseKeys, pass the
// old keys after [Keys.Token]'s in WithKeys until every connection has
// been saved again.
//
// ParseKeys refuses an empty list or entry, an entry that is not base64 or
// not 16, 24 or 32 bytes, a key that is a single byte repeated (all zero
// bytes, say: never filled from crypto/rand), and a key given twice. Its
// errors name a key by its position, from 1, and never show one.
func ParseKeys(s string) (Keys, error) {
	if strings.TrimSpace(s) == "" {
		return Keys{}, errors.New("connect: ParseKeys: no keys")
	}
	entries := strings.Split(s, ",")
	secrets := make([][]byte, len(entries))
	for i, e := range entries {
		n := i + 1
		k, err := decodeKey(strings.TrimSpace(e))
		if err != nil {
			return Keys{}, fmt.Errorf("connect: ParseKeys: key %d %w", n, err)
		}
		if len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return Keys{}, fmt.Errorf("connect: ParseKeys: key %d is %d bytes; want 16, 24 or 32", n, len(k))
		}
		if err := checkKey(k, secrets[:i]); err != nil {
			return Keys{}, fmt.Errorf("connect: ParseKeys: key %d %w", n, err)
		}
		secrets[i] = k
	}
	d := &derivedKeys{token: make([][]byte, len(secrets))}
	var err error
	for i, k := range secrets {
		if d.token[i], err = hkdf.Key(sha256.New, k, nil, tokenKeyInfo, derivedKeySize); err != nil {
			return Keys{}, fmt.Errorf("connect: ParseKeys: deriving token key %d: %w", i+1, err)
		}
	}
	if d.flow, err = hkdf.Key(sha256.New, secrets[0], nil, flowKeyInfo, derivedKeySize); err != nil {
		return Keys{}, fmt.Errorf("connect: ParseKeys: deriving the flow key: %w", err)
	}
	return Keys{p: d}, nil
}

// Token returns the keys that seal tokens at rest, the first sealing, for
// [WithKeys]: connect.WithKeys(keys.Token()...). Each call returns a new
// copy.
func (k Keys) Token() [][]byte {
	if k.p == nil {
		return nil
	}
	out := make([][]byte, len(k.p.token))
	for i, t := range k.p.token {
		out[i] = bytes.Clone(t)
	}
	return out
}

// Flow returns the key that seals started flows, for [NewFlow]. It is
// derived from the first key given, and differs from every token key.
// Each call returns a new copy.
func (k Keys) Flow() []byte {
	if k.p == nil {
		return nil
	}
	return bytes.Clone(k.p.flow)
}

// decodeKey decodes one entry: base64 in either alphabet, padded or not,
// with nothing else in it (the decoders would skip newlines). Its errors
// never show the entry.
func decodeKey(e string) ([]byte, error) {
	if e == "" {
		return nil, errors.New("is empty")
	}
	for _, r := range e {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("+/-_=", r)) {
			return nil, errors.New("is not base64")
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.Strict().DecodeString(e); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("is not base64")
}
