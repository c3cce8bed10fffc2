package logo

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzCheck(f *testing.F) {
	f.Add(encodePNG(f, 4, 4))
	f.Add(pngHeader(100000, 1))
	f.Add(webpLossless(16, 16))
	f.Add([]byte(`<svg viewBox="0 0 1 1"/>`))
	f.Add([]byte(`<svg width="1in" height="96"/>`))
	f.Add([]byte("GIF89a\x01\x00\x01\x00"))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(bytes.NewReader(data))
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not match ErrInvalid: %v", err)
		}
	})
}
