package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/novaedge/novaedge/configs"
)

// moduleFiles returns the files of the Wasm modules snap's policies name
// by path (not the bundled ones), resolved as the policy builder does.
func moduleFiles(snap *configs.Snapshot, bundled map[string][]byte) []string {
	var out []string
	for _, p := range snap.Policies {
		w := p.Spec.Wasm
		if w == nil || w.Module == "" {
			continue
		}
		if _, ok := bundled[w.Module]; ok {
			continue
		}
		path := w.Module
		if !filepath.IsAbs(path) && p.Source.File != "" {
			path = filepath.Join(filepath.Dir(p.Source.File), path)
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}

// withModules folds the content of the modules snap names by path into its
// hash, so that replacing a module file is a change: a reload swaps the
// module, and an unchanged one costs nothing. A module that cannot be read
// is left to the policy builder, which reports it.
func withModules(snap *configs.Snapshot, bundled map[string][]byte) *configs.Snapshot {
	files := moduleFiles(snap, bundled)
	if len(files) == 0 {
		return snap
	}
	h := sha256.New()
	h.Write([]byte(snap.Hash))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		h.Write([]byte(f + "\x00"))
		h.Write(sum[:])
	}
	snap.Hash = hex.EncodeToString(h.Sum(nil))
	return snap
}

// watchDelay is how long the watcher waits after the last change before
// it reloads: an editor's save, a `kubectl apply` of a ConfigMap (whose
// files are swapped through a symlink) or a copy of several files is one
// change.
const watchDelay = 300 * time.Millisecond

// watch reloads when a resource file or a module file changes, until ctx
// ends. It watches directories, not files, so that atomic renames and
// symlink swaps are seen; the set follows the configuration (a policy
// that starts naming a module in another directory adds it).
func watch(ctx context.Context, paths []string, modules func() []string, reload func(), logger *slog.Logger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	watched := map[string]bool{}
	update := func() {
		want := map[string]bool{}
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				want[filepath.Clean(p)] = true
			} else {
				want[filepath.Dir(filepath.Clean(p))] = true
			}
		}
		for _, m := range modules() {
			want[filepath.Dir(filepath.Clean(m))] = true
		}
		for d := range want {
			if !watched[d] {
				if err := w.Add(d); err != nil {
					logger.Warn("cannot watch for changes", "dir", d, "error", err)
					continue
				}
				watched[d] = true
			}
		}
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
	}
	update()
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				timer.Reset(watchDelay)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn("watching for changes", "error", err)
			case <-timer.C:
				reload()
				update()
			}
		}
	}()
	return nil
}
