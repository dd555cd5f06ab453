package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	secretPerm = 0o600
	dirPerm    = 0o700
)

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a reader never sees half a file. It does not fsync: each
// operation ends with one syncFS, which makes its files and renames durable
// together (one flush instead of one per file).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if perm != secretPerm {
		panic("auth: every data dir file is a secret (0600)")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	// os.CreateTemp already makes the file 0600.
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// syncFS flushes the file system holding path: every file written and
// renamed so far, with the directory entries, reaches the disk.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("auth: sync %s: %w", path, err)
	}
	return nil
}

// syncAll flushes the file systems holding the given paths, each once.
func syncAll(paths ...string) error {
	var devices []uint64
	var errs []error
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil {
			if slices.Contains(devices, st.Dev) {
				continue
			}
			devices = append(devices, st.Dev)
		}
		errs = append(errs, syncFS(p))
	}
	return errors.Join(errs...)
}

// lockDataDir takes the data dir's exclusive lock so two commands never
// change it at once. It waits until ctx is done.
func lockDataDir(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, secretPerm)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w: another command holds %s: %w", ErrLocked, path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
