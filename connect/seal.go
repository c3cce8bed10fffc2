package connect

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// keyring seals tokens at rest with AES-GCM: the first key seals, every
// key opens, so keys rotate without downtime (add the new key first,
// re-seal by use, drop the old one later).
type keyring struct {
	keys []sealKey
}

type sealKey struct {
	id   [4]byte // the first bytes of the key's SHA-256: which key sealed
	aead cipher.AEAD
}

// newKeyring makes the keyring of keys, the first sealing. It refuses a
// key of the wrong size, one that is a single byte repeated (all zero
// bytes, say: a key never filled from crypto/rand), and a key given twice.
// Its errors name a key by its position, from 1, and never show one.
func newKeyring(keys [][]byte) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("connect: NewManager needs WithKeys: tokens are encrypted at rest")
	}
	kr := &keyring{}
	for i, k := range keys {
		aead, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("connect: key %d %w", i+1, err)
		}
		if err := checkKey(k, keys[:i]); err != nil {
			return nil, fmt.Errorf("connect: key %d %w", i+1, err)
		}
		sum := sha256.Sum256(k)
		kr.keys = append(kr.keys, sealKey{id: [4]byte(sum[:4]), aead: aead})
	}
	return kr, nil
}

// repeated reports whether every byte of k is its first one, in time that
// depends on len(k) only.
func repeated(k []byte) bool {
	var diff byte
	for _, b := range k {
		diff |= b ^ k[0]
	}
	return diff == 0
}

// sealedTokens is the plaintext: the fields of oauth2.Token that matter.
type sealedTokens struct {
	AccessToken  string `json:"a"`
	RefreshToken string `json:"r,omitempty"`
	TokenType    string `json:"t,omitempty"`
	Expiry       int64  `json:"e,omitempty"` // Unix nanoseconds
}

const sealFormat = 1

// additionalData binds a sealed value to its connection: a value copied
// onto another company's row does not open.
func additionalData(id string) []byte {
	return []byte("pleooauth connect tokens v1\x00" + id)
}

// seal encrypts tok for the connection id with the first key. The
// layout: format (1 byte), key ID (4), nonce (12), ciphertext.
func (kr *keyring) seal(id string, tok *oauth2.Token) []byte {
	st := sealedTokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType}
	if !tok.Expiry.IsZero() {
		st.Expiry = tok.Expiry.UnixNano()
	}
	plain, _ := json.Marshal(st) // strings and an int always marshal
	k := kr.keys[0]
	return sealAEAD(k.aead, append([]byte{sealFormat}, k.id[:]...), plain, additionalData(id))
}

// open decrypts a sealed value of the connection id with whichever key
// sealed it. Every key whose ID matches the value's is tried, as two keys'
// 4-byte IDs may collide: AES-GCM's authentication tells the right one.
func (kr *keyring) open(id string, sealed []byte) (*oauth2.Token, error) {
	if len(sealed) < 5 || sealed[0] != sealFormat {
		return nil, errors.New("connect: the stored tokens are not in a format this version reads")
	}
	var (
		plain         []byte
		known, opened bool // some key has the value's ID; one opened it
	)
	for _, k := range kr.keys {
		if [4]byte(sealed[1:5]) != k.id {
			continue
		}
		known = true
		var err error
		if plain, err = openAEAD(k.aead, sealed, 5, additionalData(id)); err == nil {
			opened = true
			break
		}
	}
	switch {
	case !known:
		return nil, fmt.Errorf("connect: the stored tokens were sealed with a key this manager does not have (key ID %x); add it to WithKeys", binary.BigEndian.Uint32(sealed[1:5]))
	case !opened:
		return nil, errors.New("connect: the stored tokens do not open: tampered with, or sealed for another connection")
	}
	var st sealedTokens
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, errors.New("connect: the stored tokens are malformed")
	}
	tok := &oauth2.Token{AccessToken: st.AccessToken, RefreshToken: st.RefreshToken, TokenType: st.TokenType}
	if st.Expiry != 0 {
		tok.Expiry = time.Unix(0, st.Expiry)
	}
	return tok, nil
}

// newAEAD makes AES-GCM with key, or says why the key does not fit.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("must be 16, 24 or 32 bytes, not %d", len(key))
	}
	return cipher.NewGCM(block)
}

// sealAEAD returns header, a fresh random nonce, and plain sealed under
// that nonce with additional data ad.
func sealAEAD(aead cipher.AEAD, header, plain, ad []byte) []byte {
	ns := aead.NonceSize()
	out := make([]byte, len(header)+ns, len(header)+ns+len(plain)+aead.Overhead())
	copy(out, header)
	_, _ = rand.Read(out[len(header):]) // crypto/rand.Read never fails
	return aead.Seal(out, out[len(header):], plain, ad)
}

// openAEAD opens what sealAEAD made with a header of headerLen bytes.
func openAEAD(aead cipher.AEAD, sealed []byte, headerLen int, ad []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < headerLen+ns {
		return nil, errors.New("too short")
	}
	return aead.Open(nil, sealed[headerLen:headerLen+ns], sealed[headerLen+ns:], ad)
}

// checkKey refuses a key no crypto/rand would give (all zero bytes, or one
// byte repeated) and one that repeats an earlier key, saying which by
// position, never showing a key. The error reads after "key N".
func checkKey(k []byte, earlier [][]byte) error {
	switch {
	case repeated(k) && k[0] == 0:
		return errors.New("is all zero bytes")
	case repeated(k):
		return errors.New("is one byte repeated")
	}
	for j, e := range earlier {
		if subtle.ConstantTimeCompare(k, e) == 1 {
			return fmt.Errorf("repeats key %d", j+1)
		}
	}
	return nil
}
