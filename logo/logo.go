// Package logo checks the image a Pleo OAuth 2.0 client registration links
// to as its logo: Pleo asks for a "Square image (1:1 ratio) representing
// your application."
//
// It is a package of its own so that a program importing pleooauth for its
// registration and config does not link image decoders it never calls.
package logo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // registers GIF with image.DecodeConfig
	_ "image/jpeg" // registers JPEG
	_ "image/png"  // registers PNG
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	_ "golang.org/x/image/webp" // registers WebP
	"golang.org/x/text/encoding/htmlindex"
)

// ErrInvalid is matched by every error [Check] returns.
var ErrInvalid = errors.New("logo: invalid logo")

// Bounds [Check] applies. Pleo states none beyond "Square image (1:1
// ratio)" and "high-resolution"; these are generous for a logo and keep a
// huge or hostile file from costing more than a moment.
const (
	// MaxBytes is the largest logo file Check reads: a caller that
	// downloads the logo first can stop there too.
	MaxBytes = 5 << 20
	// maxSide is the most pixels a side of a raster image may have.
	maxSide = 8192
)

// Check reads a logo image and checks what Pleo asks of it: a "Square
// image (1:1 ratio) representing your application." It accepts PNG, JPEG,
// GIF, WebP and SVG, of at most [MaxBytes] and, for a raster image, 8192
// pixels a side. Raster images are checked from their header alone,
// never decoded in full; an SVG is checked from its root element's viewBox
// and its width and height, each of which, when given, must be square.
//
// Every error matches [ErrInvalid] and says what is wrong.
func Check(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return fmt.Errorf("%w: reading it: %w", ErrInvalid, err)
	}
	if len(data) > MaxBytes {
		return fmt.Errorf("%w: it is larger than %d MiB", ErrInvalid, MaxBytes>>20)
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: it is empty", ErrInvalid)
	}
	// image.DecodeConfig recognises the format by its magic number and
	// reads the header alone.
	cfg, name, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) {
		return checkSVG(data)
	}
	format, accepted := rasterFormats[name]
	switch {
	case !accepted:
		// A format another package of the program registered (BMP, TIFF).
		return errNotAnImage
	case err != nil:
		return fmt.Errorf("%w: its %s header cannot be read: %w", ErrInvalid, format, err)
	}
	switch {
	case cfg.Width <= 0 || cfg.Height <= 0:
		return fmt.Errorf("%w: the %s image is %dx%d pixels; it has no area", ErrInvalid, format, cfg.Width, cfg.Height)
	case cfg.Width > maxSide || cfg.Height > maxSide:
		return fmt.Errorf("%w: the %s image is %dx%d pixels; at most %d pixels a side are accepted", ErrInvalid, format, cfg.Width, cfg.Height, maxSide)
	case cfg.Width != cfg.Height:
		return fmt.Errorf("%w: the %s image is %dx%d pixels; Pleo asks for a square (1:1) image", ErrInvalid, format, cfg.Width, cfg.Height)
	}
	return nil
}

// rasterFormats are the raster formats accepted, by the name the image
// package registers them under (their packages' imports register them),
// with the name messages use.
var rasterFormats = map[string]string{"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WebP"}

var errNotAnImage = fmt.Errorf("%w: it is not a PNG, JPEG, GIF, WebP or SVG image", ErrInvalid)

// checkSVG finds the root <svg> element and checks that its viewBox, and
// its width and height when both are absolute lengths, are square.
func checkSVG(data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a UTF-8 byte order mark
	dec := xml.NewDecoder(bytes.NewReader(data))
	// An XML declaration may name another encoding (ISO-8859-1 is common in
	// files from older tools); read it by its WHATWG label.
	dec.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(label)
		if err != nil {
			return nil, err
		}
		return enc.NewDecoder().Reader(input), nil
	}
	var root *xml.StartElement
	// The root element comes after at most an XML declaration, a doctype
	// and some comments; give up early on anything else.
	for i := 0; i < 64 && root == nil; i++ {
		tok, err := dec.RawToken()
		if err != nil {
			return errNotAnImage
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root = &t
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return errNotAnImage
			}
		}
	}
	if root == nil || root.Name.Local != "svg" {
		return errNotAnImage
	}
	var width, height, viewBox string
	for _, a := range root.Attr {
		switch a.Name.Local {
		case "width":
			width = a.Value
		case "height":
			height = a.Value
		case "viewBox":
			viewBox = a.Value
		}
	}
	checked := false
	if viewBox != "" {
		f := strings.FieldsFunc(viewBox, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
		if len(f) != 4 {
			return fmt.Errorf("%w: the SVG viewBox %q does not have four numbers", ErrInvalid, viewBox)
		}
		w, werr := strconv.ParseFloat(f[2], 64)
		h, herr := strconv.ParseFloat(f[3], 64)
		if werr != nil || herr != nil || !(w > 0) || !(h > 0) || math.IsInf(w, 0) || math.IsInf(h, 0) {
			return fmt.Errorf("%w: the SVG viewBox %q needs a positive width and height", ErrInvalid, viewBox)
		}
		if !square(w, h) {
			return fmt.Errorf("%w: the SVG viewBox is %gx%g; Pleo asks for a square (1:1) image", ErrInvalid, w, h)
		}
		checked = true
	}
	w, werr := svgLength(width)
	h, herr := svgLength(height)
	if werr == nil && herr == nil {
		if !square(w, h) {
			return fmt.Errorf("%w: the SVG is %s by %s; Pleo asks for a square (1:1) image", ErrInvalid, width, height)
		}
		checked = true
	} else if werr != nil && !errors.Is(werr, errRelative) || herr != nil && !errors.Is(herr, errRelative) {
		return fmt.Errorf("%w: the SVG width %q or height %q is not a length", ErrInvalid, width, height)
	}
	if !checked {
		return fmt.Errorf("%w: the SVG has no viewBox and no absolute width and height, so its ratio cannot be checked; add a square viewBox", ErrInvalid)
	}
	return nil
}

var errRelative = errors.New("relative or missing length")

// svgUnits are CSS absolute units in pixels (CSS Values 4, section 6.2).
var svgUnits = map[string]float64{"": 1, "px": 1, "pt": 96.0 / 72, "pc": 16, "in": 96, "cm": 96 / 2.54, "mm": 96 / 25.4, "q": 96 / 101.6}

// cssLength is a CSS number (CSS Syntax 3, section 4.3.12: a sign, digits
// with an optional fraction, an optional exponent) and its unit.
var cssLength = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$`)

// svgLength converts an absolute SVG length to pixels. A missing length, a
// percentage or a font-relative one (em, ex) returns errRelative: it says
// nothing about the image's own ratio.
func svgLength(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, "%") || strings.HasSuffix(s, "em") || strings.HasSuffix(s, "ex") {
		return 0, errRelative
	}
	m := cssLength.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("not a length")
	}
	num, unit := m[1], strings.ToLower(m[2])
	scale, ok := svgUnits[unit]
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, errors.New("not a length")
	}
	return v * scale, nil
}

func square(w, h float64) bool {
	return math.Abs(w-h) <= 1e-9*math.Max(w, h)
}
