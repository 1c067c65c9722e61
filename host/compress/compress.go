// Package compress encodes responses on their way to the client: gzip and
// zstd with klauspost/compress, br with andybalholm/brotli.
//
// A gateway's spec.compression becomes a Config (New). For each request,
// Config.Wrap returns a Writer that stands between the handler and the
// client: it picks a coding from the request's Accept-Encoding
// (Negotiate) and decides, when the status and headers are written,
// whether this response is compressed.
//
// # What is compressed
//
// A response is compressed when every one of these holds:
//
//   - the client accepts one of the configured algorithms (q > 0, and not
//     below the q it gives identity; ties go to the configured order);
//   - the request is not HEAD and has no Range header;
//   - the status is a final one other than 204, 206 and 304, and there is
//     no Content-Range;
//   - the response is not already encoded (Content-Encoding unset or
//     "identity") and Cache-Control has no no-transform;
//   - its Content-Type is compressible (see Compressible): text/* (SSE
//     included), JSON, JavaScript, XML, YAML, TOML, form data, wasm,
//     image/svg+xml, uncompressed bitmaps and icons (bmp, ico), fonts
//     ttf/otf/eot. Not compressed: other images, audio, video, archives
//     and compressed data (zip, gzip, zstd, …), woff/woff2,
//     application/octet-stream, any unknown or missing type;
//   - it is long enough: a Content-Length of at least minSize; without a
//     Content-Length, the body is held until minSize bytes are written —
//     if it ends first it goes out as is, with its exact length. A Flush
//     before then marks a stream, whose length cannot be known: it is
//     compressed from there on (as Envoy and nginx compress chunked
//     responses). A response announcing trailers is a stream too.
//
// Every response of a compressible type and status gets Vary:
// Accept-Encoding, whether or not this one was compressed (another
// client, or this one with another Accept-Encoding, may get it encoded).
// A compressed response loses Content-Length and Accept-Ranges, its
// strong ETag becomes weak (W/"…": the bytes differ, the meaning does
// not), and each Flush flushes the encoder, so a stream (Server-Sent
// Events) still arrives event by event.
//
// The client's Accept-Encoding still reaches the backend: a body the
// backend encodes itself passes untouched (and response policies see it
// encoded).
//
// # Levels
//
// spec.compression.level (1–11) serves every algorithm:
//
//	gzip  the level, at most 9 (6 is zlib's default)
//	br    the quality as is (1–11)
//	zstd  the zstd level mapped as klauspost/compress does
//	      (EncoderLevelFromZstd): 1–2 fastest, 3–5 default,
//	      6–9 better, 10–11 best
//
// BenchmarkCompress prints the speed and ratio of each on 100 KB of
// JSON: at the default 6, gzip and zstd encode at ~200 MB/s per core
// (ratios 5.4 and 5.8), br at 20–45 MB/s (6.0); br 10–11 falls below
// 1 MB/s and suits only static content.
//
// Encoders are pooled per algorithm and level across requests and
// configuration changes; zstd uses a 1 MiB window (HTTP clients accept at
// most 8 MiB; a larger window only helps bodies larger than it).
package compress

import (
	"fmt"
	"net/http"

	"github.com/novaedge/novaedge/configs"
)

// Algorithm is a content coding.
type Algorithm uint8

// The codings. Identity means no compression.
const (
	Identity Algorithm = iota
	Gzip
	Brotli
	Zstd
	numAlgorithms
)

var tokens = [numAlgorithms]string{"identity", "gzip", "br", "zstd"}

// String returns the coding's token, as in Content-Encoding.
func (a Algorithm) String() string {
	if a < numAlgorithms {
		return tokens[a]
	}
	return fmt.Sprintf("Algorithm(%d)", a)
}

// ParseAlgorithm returns the algorithm of a configuration name (gzip, br,
// zstd).
func ParseAlgorithm(s string) (Algorithm, error) {
	for a := Gzip; a < numAlgorithms; a++ {
		if s == tokens[a] {
			return a, nil
		}
	}
	return Identity, fmt.Errorf("unknown compression algorithm %q (want gzip, br or zstd)", s)
}

// Config is a gateway's compression, compiled. It is immutable and safe
// for concurrent use.
type Config struct {
	offered []Algorithm // in the server's order of preference
	minSize int64
	level   int
	pools   [numAlgorithms]*encoderPool
	onDone  func(alg Algorithm, in, out int64)
}

// OnDone sets a function called when a compressed response ends, with its
// encoding and the bytes before and after compression (for metrics). Set
// it before the Config serves.
func (c *Config) OnDone(f func(alg Algorithm, in, out int64)) { c.onDone = f }

// DefaultMinSize is the smallest body compressed when the configuration
// does not say (configs applies it as the default of minSize): below
// about a kilobyte the coding's framing and the CPU cost outweigh the
// bytes saved.
const DefaultMinSize = 1024

// New compiles a gateway's compression settings; it returns nil (no
// compression) when c is nil or not enabled. c has been validated and
// defaulted by configs; New still refuses what it cannot serve.
func New(c *configs.Compression) (*Config, error) {
	if c == nil || !c.Enabled {
		return nil, nil
	}
	if c.Level < 1 || c.Level > 11 {
		return nil, fmt.Errorf("level %d is out of range 1–11", c.Level)
	}
	cfg := &Config{level: c.Level, minSize: DefaultMinSize}
	if c.MinSize != nil {
		cfg.minSize = c.MinSize.Bytes
	}
	if cfg.minSize < 0 {
		return nil, fmt.Errorf("minSize %d is negative", cfg.minSize)
	}
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = []string{"gzip"}
	}
	for _, s := range algs {
		a, err := ParseAlgorithm(s)
		if err != nil {
			return nil, err
		}
		if cfg.pools[a] != nil {
			return nil, fmt.Errorf("algorithm %q listed twice", s)
		}
		cfg.offered = append(cfg.offered, a)
		cfg.pools[a] = poolFor(a, c.Level)
	}
	return cfg, nil
}

// Algorithms returns the configured algorithms in order of preference.
func (c *Config) Algorithms() []Algorithm { return append([]Algorithm(nil), c.offered...) }

// MinSize returns the smallest body that is compressed.
func (c *Config) MinSize() int64 { return c.minSize }

// Wrap returns the writer through which the response to r goes to w.
// The caller must Close it when the handler is done (before returning
// from ServeHTTP), or Abort it when the response is being broken off.
func (c *Config) Wrap(w http.ResponseWriter, r *http.Request) *Writer {
	cw := writerPool.Get().(*Writer)
	cw.rw, cw.cfg = w, c
	cw.alg = Negotiate(r.Header["Accept-Encoding"], c.offered)
	cw.asIs = r.Method == http.MethodHead
	if _, ok := r.Header["Range"]; ok {
		cw.asIs = true
	}
	return cw
}
