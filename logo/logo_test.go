package logo

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	_ "golang.org/x/image/bmp" // registers BMP, which Check must still refuse

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encodePNG(t testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))))
	return buf.Bytes()
}

// pngHeader is a PNG signature and IHDR chunk claiming w x h pixels, with
// no image data: what a decompression bomb looks like to a header reader.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// webpLossless is a minimal RIFF/WEBP container holding a VP8L header for
// w x h pixels (WebP Lossless Bitstream Specification, section 3).
func webpLossless(w, h uint32) []byte {
	var bits uint32 = (w - 1) | (h-1)<<14
	payload := []byte{0x2f}
	payload = binary.LittleEndian.AppendUint32(payload, bits)
	payload = append(payload, 0, 0, 0) // a little data after the header
	var b bytes.Buffer
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(4+8+len(payload)))
	b.WriteString("WEBPVP8L")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(payload)))
	b.Write(payload)
	return b.Bytes()
}

func TestCheck(t *testing.T) {
	t.Parallel()
	var jpg, gf bytes.Buffer
	require.NoError(t, jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 64, 64)), nil))
	require.NoError(t, gif.Encode(&gf, image.NewPaletted(image.Rect(0, 0, 32, 32), color.Palette{color.Black, color.White}), nil))
	var jpgWide bytes.Buffer
	require.NoError(t, jpeg.Encode(&jpgWide, image.NewRGBA(image.Rect(0, 0, 64, 32)), nil))

	tests := []struct {
		name string
		data []byte
		says string // "" means accepted
	}{
		{"square PNG", encodePNG(t, 256, 256), ""},
		{"wide PNG", encodePNG(t, 300, 200), "PNG image is 300x200 pixels; Pleo asks for a square"},
		{"square JPEG", jpg.Bytes(), ""},
		{"wide JPEG", jpgWide.Bytes(), "JPEG image is 64x32"},
		{"square GIF", gf.Bytes(), ""},
		{"square WebP", webpLossless(512, 512), ""},
		{"tall WebP", webpLossless(100, 200), "WebP image is 100x200"},
		{"huge PNG header", pngHeader(100000, 100000), "at most 8192 pixels a side"},
		{"zero PNG header", pngHeader(0, 0), "cannot be read"},
		{"truncated PNG", encodePNG(t, 10, 10)[:20], "PNG header cannot be read"},
		{"empty", nil, "it is empty"},
		{"text", []byte("hello, world"), "not a PNG, JPEG, GIF, WebP or SVG"},
		{"HTML", []byte("<!doctype html><html><body>logo</body></html>"), "not a PNG"},
		{"square SVG viewBox", []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect/></svg>`), ""},
		{"SVG with XML declaration and comment", []byte("<?xml version=\"1.0\"?>\n<!-- logo -->\n<!DOCTYPE svg>\n<svg viewBox=\"0,0,24,24\" width=\"48px\" height=\"48px\"/>"), ""},
		{"SVG width and height in mixed units", []byte(`<svg width="1in" height="96px"/>`), ""},
		{"SVG percentage size, square viewBox", []byte(`<svg width="100%" height="50%" viewBox="0 0 10 10"/>`), ""},
		{"SVG with prefix", []byte(`<s:svg xmlns:s="http://www.w3.org/2000/svg" viewBox="0 0 5 5"/>`), ""},
		{"wide SVG viewBox", []byte(`<svg viewBox="0 0 200 100"/>`), "viewBox is 200x100"},
		{"wide SVG size", []byte(`<svg width="200" height="100"/>`), "SVG is 200 by 100"},
		{"SVG square box, wide viewBox", []byte(`<svg width="100" height="100" viewBox="0 0 300 100"/>`), "viewBox is 300x100"},
		{"SVG without size", []byte(`<svg><rect/></svg>`), "ratio cannot be checked"},
		{"SVG bad viewBox", []byte(`<svg viewBox="0 0 10"/>`), "four numbers"},
		{"SVG negative viewBox", []byte(`<svg viewBox="0 0 -10 -10"/>`), "positive width and height"},
		{"SVG bad length", []byte(`<svg width="wide" height="10"/>`), "not a length"},
		{"SVG with a UTF-8 byte-order mark", []byte("\xef\xbb\xbf<svg viewBox=\"0 0 10 10\"/>"), ""},
		{"SVG lengths with exponents", []byte(`<svg width="1e2" height="100.0E0px"/>`), ""},
		{"SVG wide lengths with exponents", []byte(`<svg width="2e2" height="1E2"/>`), "SVG is 2e2 by 1E2"},
		{"SVG length with a bare exponent", []byte(`<svg width="1e" height="1"/>`), "not a length"},
		{"SVG in ISO-8859-1", []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- \xa9 Caf\xe9 -->\n<svg viewBox=\"0 0 10 10\"><title>Caf\xe9</title></svg>"), ""},
		{"SVG in windows-1252", []byte("<?xml version=\"1.0\" encoding=\"windows-1252\"?><svg width=\"4\" height=\"4\"/>"), ""},
		{"SVG in an unknown encoding", []byte("<?xml version=\"1.0\" encoding=\"x-unknown\"?><svg viewBox=\"0 0 1 1\"/>"), "not a PNG"},
		{"not an SVG root", []byte(`<html viewBox="0 0 1 1"/>`), "not a PNG"},
		{"broken XML", []byte(`<svg viewBox="0 0 1 1"`), "not a PNG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(bytes.NewReader(tt.data))
			if tt.says == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tt.says)
		})
	}
}

func TestCheckLogoBounds(t *testing.T) {
	t.Parallel()
	// Over the byte bound: refused without reading on.
	big := bytes.NewReader(append(encodePNG(t, 8, 8), make([]byte, MaxBytes)...))
	err := Check(big)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "larger than 5 MiB")

	// A bomb is judged from its header alone: there is no pixel data to
	// decode, and it is still refused for its size.
	err = Check(bytes.NewReader(pngHeader(8000, 4000)))
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "8000x4000 pixels")

	// A deeply nested SVG prologue is given up on early.
	err = Check(strings.NewReader(strings.Repeat("<!-- x -->", 100) + `<svg viewBox="0 0 1 1"/>`))
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestCheckRefusesOtherRegisteredFormats: a raster format that another
// package registers with the image package (here BMP, which this test
// imports) is not one Pleo's logo may be.
func TestCheckRefusesOtherRegisteredFormats(t *testing.T) {
	t.Parallel()
	err := Check(strings.NewReader("BM" + strings.Repeat("\x00", 64)))
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "not a PNG, JPEG, GIF, WebP or SVG image")
}
