package pleooauth

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a [Secret] shows in place of its value, in every fmt
// verb, in JSON and text marshalling, and in log/slog output.
const Redacted = "[REDACTED]"

// Secret holds a confidential value, such as a client secret, so that it
// cannot leak by accident: it prints, marshals and logs as [Redacted], also
// when nested in other structs. The value comes out only through
// [Secret.Reveal], a call easy to find in review.
//
// The value is kept behind a pointer to a string. Where fmt prints a
// struct by reflection, bypassing Secret's methods (an unexported field of
// another struct), it shows the pointer's address, never the text; and
// reflect.DeepEqual, and so testify's assert.Equal, follows the pointer and
// compares the values, so two Secrets are equal exactly when their values
// are. The zero Secret is empty, and equal to NewSecret("").
type Secret struct {
	p *string
}

// NewSecret wraps value in a Secret.
func NewSecret(value string) Secret {
	if value == "" {
		return Secret{}
	}
	return Secret{p: &value}
}

// Reveal returns the raw value. Call it only where the value is sent to
// Pleo (the token endpoint) or compared; never log or print the result.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Equal reports whether s and other hold the same value, in time that does
// not depend on where they differ.
func (s Secret) Equal(other Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(other.Reveal())) == 1
}

// String returns [Redacted].
func (s Secret) String() string { return Redacted }

// GoString returns [Redacted], for %#v.
func (s Secret) GoString() string { return Redacted }

// Format writes [Redacted] for every verb, %x, %d and %q included.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalText returns [Redacted], which also covers JSON, slog's JSON
// handler and encoding/xml.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON returns the JSON string [Redacted].
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// LogValue returns [Redacted], for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Credentials are what Pleo sends back after registration, via 1Password:
// the Client ID, a "Public identifier used to request authorisation and
// identify your app", and the Client Secret, a "Confidential secret used to
// authenticate your app. Must be stored securely on a server and never
// exposed to end users." A public client has no secret.
//
// Credentials print, marshal and log with the secret as [Redacted].
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret Secret `json:"client_secret"`
}

// HasSecret reports whether the credentials hold a client secret.
func (c Credentials) HasSecret() bool { return !c.ClientSecret.IsZero() }

// NewCredentials checks and wraps a client ID and secret. Both are opaque:
// Pleo's examples are UUID-shaped IDs and hex secrets, but Pleo states no
// format, so any non-empty value without white space or control characters
// is accepted. An empty secret makes credentials for a public client.
func NewCredentials(clientID, clientSecret string) (Credentials, error) {
	c := Credentials{ClientID: clientID}
	if clientSecret != "" {
		c.ClientSecret = NewSecret(clientSecret)
	}
	if err := c.check(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// check refuses an empty client ID, and white space or control characters
// in either value. The secret is never part of an error, not even in part.
func (c Credentials) check() error {
	switch {
	case c.ClientID == "":
		return fmt.Errorf("%w: client ID is empty", ErrInvalidCredentials)
	case hasSpaceControlOrBadUTF8(c.ClientID):
		return fmt.Errorf("%w: client ID contains white space or control characters", ErrInvalidCredentials)
	case hasSpaceControlOrBadUTF8(c.ClientSecret.Reveal()):
		return fmt.Errorf("%w: client secret contains white space or control characters (value not shown)", ErrInvalidCredentials)
	}
	return nil
}

// The environment variables [CredentialsFromEnv] reads.
const (
	EnvClientID         = "PLEO_CLIENT_ID"
	EnvClientSecret     = "PLEO_CLIENT_SECRET"
	EnvClientSecretFile = "PLEO_CLIENT_SECRET_FILE"
)

// maxSecretFileBytes is the largest file [CredentialsFromEnv] reads a client
// secret from. A client secret is a few dozen characters; a larger file is
// the wrong file.
const maxSecretFileBytes = 4096

// readFileAtMost reads a file of at most limit bytes, and refuses a larger
// one without reading it all.
func readFileAtMost(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the file is larger than %d bytes", limit)
	}
	return data, nil
}

// CredentialsFromEnv reads credentials from the environment: the client ID
// from PLEO_CLIENT_ID, and the secret from PLEO_CLIENT_SECRET or from the
// file named by PLEO_CLIENT_SECRET_FILE (a mounted secret of at most 4 KiB;
// one trailing newline is removed). Setting both secret variables is an error, since it
// is unclear which one is meant. Setting neither gives credentials without a
// secret, as for a public client; [Registration.OAuth2Config] refuses them
// for a confidential one.
func CredentialsFromEnv() (Credentials, error) {
	id, ok := os.LookupEnv(EnvClientID)
	if !ok || id == "" {
		return Credentials{}, fmt.Errorf("%w: %s is not set", ErrInvalidCredentials, EnvClientID)
	}
	secret, hasSecret := os.LookupEnv(EnvClientSecret)
	file, hasFile := os.LookupEnv(EnvClientSecretFile)
	switch {
	case hasSecret && hasFile:
		return Credentials{}, fmt.Errorf("%w: both %s and %s are set; set one", ErrInvalidCredentials, EnvClientSecret, EnvClientSecretFile)
	case hasSecret && secret == "":
		return Credentials{}, fmt.Errorf("%w: %s is set but empty", ErrInvalidCredentials, EnvClientSecret)
	case hasFile:
		data, err := readFileAtMost(file, maxSecretFileBytes)
		if err != nil {
			// The path is not secret; the error names it and the cause only.
			return Credentials{}, fmt.Errorf("%w: reading %s: %w", ErrInvalidCredentials, EnvClientSecretFile, err)
		}
		secret = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if secret == "" {
			return Credentials{}, fmt.Errorf("%w: the file named by %s is empty", ErrInvalidCredentials, EnvClientSecretFile)
		}
	}
	return NewCredentials(id, secret)
}
