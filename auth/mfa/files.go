package mfa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

const (
	secretPerm = 0o600
	dirPerm    = 0o700

	adminsDir   = "admins"
	sessionName = "session" // DIR/admins/session.json; no admin may be called so
	lockName    = ".lock"

	// lockWait bounds how long a command waits for another's lock.
	lockWait = 10 * time.Second
)

func adminsPath(dataDir string) string      { return filepath.Join(dataDir, adminsDir) }
func adminPath(dataDir, name string) string { return filepath.Join(dataDir, adminsDir, name+".json") }
func sessionPath(dataDir string) string     { return adminPath(dataDir, sessionName) }
func lockPath(dataDir string) string        { return filepath.Join(dataDir, adminsDir, lockName) }
func operatorJWTPath(dataDir string) string {
	return filepath.Join(dataDir, "operator", "operator.jwt")
}

// ensureAdminsDir makes DIR/admins (0700) in an existing data dir; it
// never makes the data dir itself.
func ensureAdminsDir(dataDir string) error {
	st, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("mfa: data dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mfa: data dir %s is not a directory", dataDir)
	}
	if err := os.Mkdir(adminsPath(dataDir), dirPerm); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mfa: %w", err)
	}
	return nil
}

// lock takes DIR/admins/.lock exclusively (flock), so checking a code and
// recording its step is one step for every process sharing the data dir.
// The lock goes with the process, so a command that dies holding it does
// not keep it.
func lock(dataDir string) (unlock func(), err error) {
	if err := ensureAdminsDir(dataDir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath(dataDir), os.O_RDWR|os.O_CREATE, secretPerm)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("mfa: lock %s: %w", lockPath(dataDir), err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: another command holds %s", ErrLocked, lockPath(dataDir))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeFileAtomic writes data to path (0600) through a temporary file in
// the same directory, synced before and after the rename: a reader never
// sees half a file, and an accepted code's step survives a crash.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(secretPerm); err != nil {
		tmp.Close()
		return fmt.Errorf("mfa: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("mfa: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("mfa: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("mfa: sync %s: %w", dir, err)
	}
	return nil
}
