package reload

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Delay is how long the watcher waits after the last change before
// it reloads: an editor's save, a `kubectl apply` of a ConfigMap (whose
// files are swapped through a symlink) or a copy of several files is one
// change.
const Delay = 300 * time.Millisecond

// Watch calls reload when a file under paths (resource files or
// directories) or one of the files external returns (the module and keys
// files the running configuration names) changes, Delay after the last
// event, until ctx ends. It watches directories, not files, so that
// editors' atomic renames and Kubernetes ConfigMap symlink swaps are seen;
// the set follows the configuration (a policy that starts naming a module
// in another directory adds it).
func Watch(ctx context.Context, paths []string, external func() []string, reload func(), logger *slog.Logger) error {
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
		for _, m := range external() {
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
				timer.Reset(Delay)
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
