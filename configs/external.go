package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
)

var unencodable atomic.Int64

// ExternalFile is a file a resource names (a policy's module, a KeyAuth
// keys file), read once when the snapshot is loaded so that everything
// built from the snapshot sees the same bytes, and a change of the file
// is a change of the configuration.
type ExternalFile struct {
	Path   string // resolved against the declaring file's directory
	Data   []byte // nil when the file could not be read (Err says why)
	SHA256 string // hex, of Data
	Err    error
}

// ResolvePath resolves a path a resource names relative to the directory
// of the file that declares it.
func (src Source) ResolvePath(name string) string {
	switch {
	case filepath.IsAbs(name):
		return name
	case src.Dir != "":
		return filepath.Join(src.Dir, name)
	case src.File != "":
		return filepath.Join(filepath.Dir(src.File), name)
	}
	return name
}

// externalNames lists the file names a policy's spec refers to (as
// written). isBundled reports module names the binary ships, which are
// not files.
func (p *Policy) externalNames(isBundled func(string) bool) []string {
	var out []string
	if w := p.Spec.Wasm; w != nil && w.Module != "" && (isBundled == nil || !isBundled(w.Module)) {
		out = append(out, w.Module)
	}
	if k := p.Spec.KeyAuth; k != nil && k.KeysFile != "" {
		out = append(out, k.KeysFile)
	}
	return out
}

// File returns the content of a file the policy names (as written in its
// spec), as read by ReadExternal; ok is false when the snapshot was not
// given the file (then the caller reads it itself).
func (p *Policy) File(name string) (f *ExternalFile, ok bool) {
	f, ok = p.external[name]
	return f, ok
}

// ReadExternal reads the files the snapshot's resources name — module
// files of Wasm policies (except the names isBundled reports) and KeyAuth
// keys files — attaches them to their policies, and folds their content
// into the snapshot's hash: replacing a module file on disk is then a new
// configuration, and an untouched one costs nothing. A file that cannot be
// read is attached with its error, for the policy's builder to report.
//
// The hash takes each file as its policy names it (as written, with the
// SHA-256 of its content), never its resolved path: the same files give the
// same hash wherever they are and however their directory was named on the
// command line (`novaedge validate conf` and `novaedge run -c /srv/conf`).
func (s *Snapshot) ReadExternal(isBundled func(string) bool) {
	h := sha256.New()
	h.Write([]byte(s.Hash))
	folded := false
	cache := map[string]*ExternalFile{}
	for _, p := range s.Policies { // sorted by namespace and name
		for _, name := range p.externalNames(isBundled) {
			path := p.Source.ResolvePath(name)
			f := cache[path]
			if f == nil {
				f = &ExternalFile{Path: path}
				if f.Data, f.Err = os.ReadFile(path); f.Err == nil {
					sum := sha256.Sum256(f.Data)
					f.SHA256 = hex.EncodeToString(sum[:])
				}
				cache[path] = f
			}
			if p.external == nil {
				p.external = map[string]*ExternalFile{}
			}
			p.external[name] = f
			h.Write([]byte(p.Metadata.Namespace + "/" + p.Metadata.Name + "\x00" + name + "\x00" + f.SHA256 + "\x00"))
			folded = true
		}
	}
	if folded {
		s.Hash = hex.EncodeToString(h.Sum(nil))
	}
}

// ExternalPaths returns the resolved paths of the files the snapshot's
// resources name (after ReadExternal), sorted: what a watcher watches.
func (s *Snapshot) ExternalPaths() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range s.Policies {
		for _, f := range p.external {
			if !seen[f.Path] {
				seen[f.Path] = true
				out = append(out, f.Path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Fingerprint identifies what a policy's plugin is built from: its name,
// its spec and the content of the files it names. Two generations whose
// policy has the same fingerprint can share one running plugin.
func (p *Policy) Fingerprint() string {
	return fingerprint(p.Metadata.Namespace+"/"+p.Metadata.Name, p.Spec, p.external)
}

// Fingerprint identifies a backend's configuration: generations whose
// backend has the same fingerprint share one running backend (its
// connection pools, health and outlier state).
func (b *Backend) Fingerprint() string {
	return fingerprint(b.Metadata.Namespace+"/"+b.Metadata.Name, b.Spec, nil)
}

// Fingerprint identifies a route's configuration: the response cache
// keys entries by it, so a changed route does not serve what it cached.
func (r *Route) Fingerprint() string {
	return fingerprint(r.Metadata.Namespace+"/"+r.Metadata.Name, r.Spec, nil)
}

func fingerprint(name string, spec any, files map[string]*ExternalFile) string {
	h := sha256.New()
	h.Write([]byte(name + "\x00"))
	b, err := encodeJSON(spec, "")
	if err != nil {
		// Specs are plain data and always encode; if one did not, it
		// must match no other fingerprint.
		b = fmt.Appendf(nil, "unencodable %d: %v", unencodable.Add(1), err)
	}
	h.Write(b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h.Write([]byte("\x00" + n + "\x00" + files[n].SHA256))
	}
	return hex.EncodeToString(h.Sum(nil))
}
