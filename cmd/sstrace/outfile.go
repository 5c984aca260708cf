package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// outFile is a file sstrace writes (-D, --record, --pprof, --perfetto):
// created beside its destination as a temporary file with mode 0600 and
// renamed into place only when complete, so a failure or Ctrl-C leaves
// nothing half-written, and a symlink at the destination is replaced, not
// followed. An existing destination is kept unless force is set.
type outFile struct {
	*os.File
	dest string
	done bool
}

func createOutFile(dest string, force bool) (*outFile, error) {
	if fi, err := os.Lstat(dest); err == nil {
		if !force {
			return nil, fmt.Errorf("writing %s: the file exists (use --force to replace it)", dest)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("writing %s: is a directory", dest)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("writing %s: %w", dest, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", dest, err)
	}
	// CreateTemp makes it 0600 already; say so for umask-proof clarity.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("writing %s: %w", dest, err)
	}
	return &outFile{File: f, dest: dest}, nil
}

// Commit flushes the file to disk and renames it into place.
func (o *outFile) Commit() error {
	if err := o.Sync(); err != nil {
		o.Abort()
		return fmt.Errorf("writing %s: %w", o.dest, err)
	}
	if err := o.Close(); err != nil {
		o.Abort()
		return fmt.Errorf("writing %s: %w", o.dest, err)
	}
	if err := os.Rename(o.Name(), o.dest); err != nil {
		os.Remove(o.Name())
		return fmt.Errorf("writing %s: %w", o.dest, err)
	}
	o.done = true
	return nil
}

// Abort removes the temporary file; it is a no-op after Commit.
func (o *outFile) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.Close()
	os.Remove(o.Name())
}
