// Package tlsconf holds the TLS side of the listeners: certificates read
// from secret directories (as Kubernetes mounts a TLS secret:
// <dir>/tls.crt and <dir>/tls.key) and kept current when their files
// change, OCSP stapling, and the choice of a certificate and TLS settings
// by SNI for a port that several HTTPS listeners share.
package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/crypto/ocsp"
)

// SecretDir is the directory of a TLS secret under secretsDir.
func SecretDir(secretsDir, namespace, name string) string {
	return filepath.Join(secretsDir, namespace, name)
}

// Options tune a Cert.
type Options struct {
	Logger *slog.Logger
	// Poll is how often the files are read again in case a change
	// escaped the watch (the directory replaced, a network file system);
	// 0 means a minute.
	Poll time.Duration
	// Debounce is how long after a file event the files are read, so
	// that a certificate and key written one after the other load as a
	// pair; 0 means 100ms.
	Debounce time.Duration
	// OCSPClient fetches OCSP responses (default: a client with a
	// 10-second timeout).
	OCSPClient *http.Client
	// MinOCSPRefresh is the shortest wait before an OCSP response is
	// fetched again; 0 means a minute.
	MinOCSPRefresh time.Duration
}

// Cert is the certificate of one secret directory. Current returns the
// latest good pair read from the directory; a change to the files is
// read when it happens, and a pair that does not load (unreadable, the
// key not matching the certificate) is refused with a logged error while
// the previous one keeps serving. If the certificate names an OCSP
// responder, a fresh response is stapled to it in the background.
type Cert struct {
	dir      string
	opts     Options
	log      *slog.Logger
	cur      atomic.Pointer[tls.Certificate]
	reloads  atomic.Int64
	staples  atomic.Int64
	watcher  *fsnotify.Watcher
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeOne sync.Once

	// Owned by the run goroutine.
	certPEM, keyPEM []byte
	gen             int // bumped at each loaded pair: OCSP results of an older one are dropped
}

// Load reads the secret in dir and keeps it current until Close. A
// missing or bad pair is an error.
func Load(dir string, opts Options) (*Cert, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Minute
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.OCSPClient == nil {
		opts.OCSPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.MinOCSPRefresh <= 0 {
		opts.MinOCSPRefresh = time.Minute
	}
	c := &Cert{dir: dir, opts: opts, log: opts.Logger.With("secret", dir)}
	certPEM, keyPEM, pair, err := readPair(dir)
	if err != nil {
		return nil, err
	}
	c.certPEM, c.keyPEM = certPEM, keyPEM
	c.cur.Store(pair)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		c.log.Warn("not watching the secret; it is read again every poll interval", "error", err, "interval", opts.Poll)
	} else if err := w.Add(dir); err != nil {
		w.Close()
		c.log.Warn("not watching the secret; it is read again every poll interval", "error", err, "interval", opts.Poll)
	} else {
		c.watcher = w
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go c.run(ctx)
	return c, nil
}

// Dir is the secret directory.
func (c *Cert) Dir() string { return c.dir }

// Current is the certificate to serve: never nil.
func (c *Cert) Current() *tls.Certificate { return c.cur.Load() }

// Close stops watching the files and refreshing the OCSP staple. Current
// keeps returning the last pair.
func (c *Cert) Close() {
	c.closeOne.Do(func() {
		c.cancel()
		if c.watcher != nil {
			c.watcher.Close()
		}
		c.wg.Wait()
	})
}

// readPair reads and checks dir/tls.crt and dir/tls.key.
func readPair(dir string) (certPEM, keyPEM []byte, pair *tls.Certificate, err error) {
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if certPEM, err = os.ReadFile(certFile); err != nil {
		return nil, nil, nil, err
	}
	if keyPEM, err = os.ReadFile(keyFile); err != nil {
		return nil, nil, nil, err
	}
	p, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return certPEM, keyPEM, &p, nil
}

// ocspResult is what a fetch brings back to the run loop.
type ocspResult struct {
	gen    int
	staple []byte
	resp   *ocsp.Response
	err    error
}

// run serves the file events, the poll and the OCSP refreshes until ctx
// ends. It owns certPEM, keyPEM and gen.
func (c *Cert) run(ctx context.Context) {
	defer c.wg.Done()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if c.watcher != nil {
		events, errs = c.watcher.Events, c.watcher.Errors
	}
	poll := time.NewTicker(c.opts.Poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	ocspTimer := time.NewTimer(0) // the first fetch at once
	results := make(chan ocspResult, 1)
	fetching := false
	backoff := time.Duration(0)
	var stapleUntil time.Time // the current staple's nextUpdate
	for {
		select {
		case <-ctx.Done():
			debounce.Stop()
			ocspTimer.Stop()
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			// Any change in the directory: a file written, or the
			// ..data symlink of a Kubernetes mount swapped.
			debounce.Reset(c.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			c.log.Warn("watching the secret", "error", err)
		case <-debounce.C:
			if c.reload() {
				stapleUntil, backoff = time.Time{}, 0
				if !fetching {
					ocspTimer.Reset(0)
				}
			}
		case <-poll.C:
			if c.reload() {
				stapleUntil, backoff = time.Time{}, 0
				if !fetching {
					ocspTimer.Reset(0)
				}
			}
			if !stapleUntil.IsZero() && time.Now().After(stapleUntil) {
				c.setStaple(nil)
				stapleUntil = time.Time{}
				c.log.Warn("OCSP staple expired and not renewed: serving without it")
			}
		case <-ocspTimer.C:
			leaf, issuer := ocspSubject(c.Current())
			if leaf == nil || fetching {
				continue
			}
			fetching = true
			gen := c.gen
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				staple, resp, err := fetchOCSP(ctx, c.opts.OCSPClient, leaf, issuer)
				select {
				case results <- ocspResult{gen: gen, staple: staple, resp: resp, err: err}:
				case <-ctx.Done():
				}
			}()
		case res := <-results:
			fetching = false
			if res.gen != c.gen {
				ocspTimer.Reset(0) // the pair changed meanwhile: fetch for the new one
				continue
			}
			if res.err != nil {
				backoff = min(max(2*backoff, c.opts.MinOCSPRefresh), time.Hour)
				c.log.Warn("OCSP staple not refreshed; retrying", "error", res.err, "in", backoff)
				ocspTimer.Reset(backoff)
				continue
			}
			backoff = 0
			c.setStaple(res.staple)
			stapleUntil = res.resp.NextUpdate
			ocspTimer.Reset(max(time.Until(refreshAt(res.resp)), c.opts.MinOCSPRefresh))
		}
	}
}

// reload reads the files again; it reports whether a new pair is now
// served. A bad pair is logged and refused.
func (c *Cert) reload() bool {
	certPEM, keyPEM, pair, err := readPair(c.dir)
	if err != nil {
		if c.certPEM != nil && errors.Is(err, os.ErrNotExist) {
			c.log.Error("TLS secret files are gone: the previous certificate keeps serving", "error", err)
		} else {
			c.log.Error("new TLS certificate refused: the previous one keeps serving", "error", err)
		}
		return false
	}
	if bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return false
	}
	c.certPEM, c.keyPEM = certPEM, keyPEM
	c.gen++
	c.cur.Store(pair)
	c.reloads.Add(1)
	c.log.Info("TLS certificate reloaded", "subject", pair.Leaf.Subject.String(), "not_after", pair.Leaf.NotAfter)
	return true
}

// setStaple publishes the current pair with staple (nil: none).
func (c *Cert) setStaple(staple []byte) {
	cur := c.Current()
	next := *cur
	next.OCSPStaple = staple
	c.cur.Store(&next)
	if staple != nil {
		c.staples.Add(1)
	}
}

// ocspSubject returns the leaf and its issuer if the leaf names an OCSP
// responder and its issuer is in the chain; nil otherwise.
func ocspSubject(pair *tls.Certificate) (leaf, issuer *x509.Certificate) {
	if pair.Leaf == nil || len(pair.Leaf.OCSPServer) == 0 || len(pair.Certificate) < 2 {
		return nil, nil
	}
	issuer, err := x509.ParseCertificate(pair.Certificate[1])
	if err != nil {
		return nil, nil
	}
	return pair.Leaf, issuer
}
