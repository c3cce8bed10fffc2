package pleooauth

import (
	"encoding/json"
	"testing"

	"golang.org/x/oauth2"
)

// Validation must cost less than decoding the same manifest. Compare:
//
//	go test -run '^$' -bench 'Validate|JSONUnmarshal' -benchmem .
func BenchmarkValidate(b *testing.B) {
	r := seedExample()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Validate(Production); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONUnmarshal is the baseline for BenchmarkValidate: decoding the
// seed example with encoding/json.
func BenchmarkJSONUnmarshal(b *testing.B) {
	benchFile(b, "seed-example.json", func(data []byte) error {
		var r Registration
		return json.Unmarshal(data, &r)
	})
}

func BenchmarkParseRegistrationYAML(b *testing.B) {
	benchFile(b, "seed-example.yaml", func(data []byte) error {
		_, err := ParseRegistration(data)
		return err
	})
}

// benchFile runs op on a testdata file's contents in the benchmark loop.
func benchFile(b *testing.B, name string, op func(data []byte) error) {
	data, err := readTestdata(name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := op(data); err != nil {
			b.Fatal(err)
		}
	}
}

// A PKCE pair must cost within 10% of x/oauth2's own calls. Compare:
//
//	go test -run '^$' -bench 'PKCE' -benchmem .
func BenchmarkPKCE(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p := NewPKCE()
		if len(p.Challenge) != 43 {
			b.Fatal(p.Challenge)
		}
	}
}

// BenchmarkPKCEXOAuth2 is the baseline for BenchmarkPKCE.
func BenchmarkPKCEXOAuth2(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v := oauth2.GenerateVerifier()
		if c := oauth2.S256ChallengeFromVerifier(v); len(c) != 43 {
			b.Fatal(c)
		}
	}
}
