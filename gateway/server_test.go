package gateway

import (
	"bytes"
	"errors"
	"testing"

	"github.com/valyala/fasthttp"
)

// zstdFrame builds a zstd frame by hand: raw blocks carry data, RLE blocks
// repeat one byte (a decompression bomb in a few bytes).
func zstdFrame(raw []byte, rleBlocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	b = append(b, 0x00, 0x58) // no single segment, no checksum; window 8 MiB
	block := func(typ, size int, last bool) {
		h := typ<<1 | size<<3
		if last {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
	}
	block(0, len(raw), rleBlocks == 0)
	b = append(b, raw...)
	for i := range rleBlocks {
		block(1, 128<<10, i == rleBlocks-1)
		b = append(b, ' ')
	}
	return b
}

func TestDecompress(t *testing.T) {
	ev := []byte(`{"a":1}` + "\n" + `{"b":2}`)
	for _, tc := range []struct {
		name, enc string
		body      []byte
		want      []byte
		err       error
	}{
		{"gzip", "gzip", fasthttp.AppendGzipBytes(nil, ev), ev, nil},
		{"deflate", "deflate", fasthttp.AppendDeflateBytes(nil, ev), ev, nil},
		{"br", "br", fasthttp.AppendBrotliBytes(nil, ev), ev, nil},
		{"zstd", "zstd", zstdFrame(ev, 0), ev, nil},
		{"gzip bomb", "gzip", fasthttp.AppendGzipBytes(nil, make([]byte, 8<<20)), nil, ErrBodyTooLarge},
		{"zstd bomb", "zstd", zstdFrame(ev, 64), nil, ErrBodyTooLarge},
		{"broken gzip", "gzip", []byte("not gzip"), nil, ErrInvalidJSON},
	} {
		got, err := decompress(tc.enc, tc.body, 1<<20)
		if !errors.Is(err, tc.err) || (err == nil && !bytes.Equal(got, tc.want)) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && tc.err == ErrBodyTooLarge && StatusOf(err) != 413 {
			t.Errorf("%s: status %d", tc.name, StatusOf(err))
		}
	}
}

func TestBodyKindOf(t *testing.T) {
	for ct, want := range map[string]bodyKind{
		"": kindSniff, "application/x-www-form-urlencoded": kindSniff, "text/plain; charset=utf-8": kindSniff,
		"application/json": kindJSON, "Application/JSON; charset=utf-8": kindJSON, "application/vnd.acme+json": kindJSON,
		"application/x-ndjson": kindNDJSON, "application/jsonl": kindNDJSON,
	} {
		if got, err := bodyKindOf([]byte(ct)); err != nil || got != want {
			t.Errorf("bodyKindOf(%q) = %v, %v; want %v", ct, got, err, want)
		}
	}
	for _, ct := range []string{"application/xml", "text/html", "multipart/form-data; boundary=x", "image/png"} {
		if _, err := bodyKindOf([]byte(ct)); !errors.Is(err, ErrUnsupportedMediaType) {
			t.Errorf("bodyKindOf(%q) = %v, want 415", ct, err)
		}
	}
}
