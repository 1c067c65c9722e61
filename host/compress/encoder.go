package compress

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// coder is what the three libraries' writers have in common.
type coder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// encoder is a pooled coder. The coder writes into sink, whose target is
// set for one response and cleared when the encoder goes back to the
// pool, so that a pooled encoder holds no response alive.
type encoder struct {
	c    coder
	sink sink
	pool *encoderPool
}

type sink struct {
	w io.Writer
	n int64 // bytes written to w
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// encoderPool holds the idle encoders of one algorithm at one effective
// level.
type encoderPool struct {
	alg   Algorithm
	level int // the library's level
	pool  sync.Pool
}

// pools are shared by every Config, so encoders survive configuration
// changes. Index: algorithm, then the library's level (gzip 1–9, br 1–11,
// zstd's EncoderLevel 1–4).
var pools [numAlgorithms][12]encoderPool

func init() {
	for a := range pools {
		for l := range pools[a] {
			pools[a][l].alg, pools[a][l].level = Algorithm(a), l
		}
	}
}

// libraryLevel maps the configured level (1–11) to the algorithm's own.
func libraryLevel(a Algorithm, level int) int {
	switch a {
	case Gzip:
		return min(level, gzip.BestCompression)
	case Zstd:
		return int(zstd.EncoderLevelFromZstd(level))
	}
	return level
}

func poolFor(a Algorithm, level int) *encoderPool {
	return &pools[a][libraryLevel(a, level)]
}

// zstdWindow bounds the encoder's memory; see the package doc.
const zstdWindow = 1 << 20

// get returns an encoder writing to w.
func (p *encoderPool) get(w io.Writer) *encoder {
	if e, _ := p.pool.Get().(*encoder); e != nil {
		e.sink.w, e.sink.n = w, 0
		e.c.Reset(&e.sink)
		return e
	}
	e := &encoder{pool: p}
	e.sink.w = w
	switch p.alg {
	case Gzip:
		gz, err := gzip.NewWriterLevel(&e.sink, p.level)
		if err != nil {
			panic(err) // the level comes from libraryLevel: always valid
		}
		e.c = gz
	case Brotli:
		e.c = brotli.NewWriterLevel(&e.sink, p.level)
	case Zstd:
		z, err := zstd.NewWriter(&e.sink, zstd.WithEncoderLevel(zstd.EncoderLevel(p.level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
		if err != nil {
			panic(err) // fixed, valid options
		}
		e.c = z
	default:
		panic("compress: no encoder for " + p.alg.String())
	}
	return e
}

// put returns the encoder to its pool; its coder is reset on the next get.
func (e *encoder) put() {
	e.sink.w = nil
	e.pool.pool.Put(e)
}
