package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/equilateral-agents/equilateral/protocol"
)

// The key journal, DIR/keys.journal, is how a change that takes trust away
// from a key reaches every process that caches keys (the orchestrators'
// signature verifiers) before the command that made it returns. Revoke,
// Rotate and DeleteTenant append one line after they have recorded the
// change and before they return:
//
//	<tenant>/<name>   one principal's keys changed (revoked or rotated)
//	<tenant>          the whole tenant is gone
//
// The file is only ever appended to, so its size grows with every change:
// a reader keeps it open and learns "nothing changed" from one fstat
// (KeyJournal.End) on every lookup, and reads the new lines when the size
// moved. Lines are single subject tokens, so they hold no '/' or
// newline of their own. Creations are not journalled: a new key is found
// by the reader's lookup on a cache miss.

// ErrJournalReset says the key journal was replaced, truncated or holds a
// line no command wrote: a reader must reload every key it caches.
var ErrJournalReset = errors.New("auth: key journal was replaced")

// KeyChange is one entry of the key journal.
type KeyChange struct {
	Tenant string
	Name   string // empty: every principal of Tenant
}

// journalKeyChange appends a change to the key journal. Callers hold the
// data dir lock and have recorded the change itself first: a reader that
// sees the line reads the principal's new record.
func (s *Store) journalKeyChange(c KeyChange) error {
	line := c.Tenant
	if c.Name != "" {
		line += "/" + c.Name
	}
	f, err := os.OpenFile(s.layout.keyJournal(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, secretPerm)
	if err != nil {
		return fmt.Errorf("auth: key journal: %w", err)
	}
	// One write of a short line: appends never interleave.
	_, err = f.Write([]byte(line + "\n"))
	return errors.Join(err, f.Close())
}

// KeyJournal follows the data dir's key journal for one process. Its
// methods are safe for concurrent use.
//
// A reader keeps the position up to which what it caches reflects the
// journal, and compares it with End on every lookup: equal positions mean
// nothing changed since. A position is advanced only once its changes are
// applied, so no lookup ever sees "nothing changed" while a change is
// still being applied.
type KeyJournal struct {
	path string
	mu   sync.Mutex // reopening
	cur  atomic.Pointer[journalFile]
}

// journalFile is one open journal. A replaced file is left to the garbage
// collector to close: closing it here could let a concurrent End fstat a
// descriptor number that was reused.
type journalFile struct {
	f  *os.File
	fd int
}

// JournalPosition is a place in the key journal, comparable with ==.
// The zero value is the start of a journal that does not exist yet.
type JournalPosition struct {
	file *journalFile
	off  int64
}

// KeyJournal returns a reader of the data dir's key journal.
func (d *Directory) KeyJournal() *KeyJournal {
	return &KeyJournal{path: d.layout.keyJournal()}
}

// End is where the journal ends now. It costs one fstat (one stat and an
// open only if the journal was replaced or does not exist yet). On an
// error a caller should assume everything changed.
func (j *KeyJournal) End() (JournalPosition, error) {
	jf := j.cur.Load()
	if jf != nil {
		var sb unix.Stat_t
		err := unix.Fstat(jf.fd, &sb)
		runtime.KeepAlive(jf.f)
		if err != nil {
			return JournalPosition{}, fmt.Errorf("auth: key journal: %w", err)
		}
		if sb.Nlink > 0 {
			return JournalPosition{file: jf, off: sb.Size}, nil
		}
	}
	// Not opened yet, or unlinked (replaced): open what the path holds now.
	jf, err := j.reopen(jf)
	if err != nil || jf == nil {
		return JournalPosition{}, err
	}
	var sb unix.Stat_t
	if err := unix.Fstat(jf.fd, &sb); err != nil {
		return JournalPosition{}, fmt.Errorf("auth: key journal: %w", err)
	}
	return JournalPosition{file: jf, off: sb.Size}, nil
}

// ReadFrom returns the changes journalled after from, and the position
// after the last complete line (a line still being written is left for
// the next call). It returns ErrJournalReset if the journal was replaced
// or truncated since from, or holds a line no command wrote: the caller
// must then reload everything, from a position taken with End before it
// reads.
func (j *KeyJournal) ReadFrom(from JournalPosition) ([]KeyChange, JournalPosition, error) {
	end, err := j.End()
	if err != nil {
		return nil, from, err
	}
	if from.file != end.file {
		if from.file != nil || from.off != 0 {
			return nil, from, ErrJournalReset
		}
		// The journal appeared after from was taken: all of it is news.
		from.file = end.file
	}
	switch {
	case end.off < from.off:
		return nil, from, ErrJournalReset
	case end.off == from.off:
		return nil, from, nil
	}
	buf := make([]byte, end.off-from.off)
	n, err := from.file.f.ReadAt(buf, from.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, from, fmt.Errorf("auth: read key journal: %w", err)
	}
	buf = buf[:n]
	complete := bytes.LastIndexByte(buf, '\n') + 1
	var changes []KeyChange
	for _, line := range strings.Split(string(buf[:complete]), "\n") {
		if line == "" {
			continue
		}
		c, ok := parseKeyChange(line)
		if !ok {
			return nil, from, ErrJournalReset
		}
		changes = append(changes, c)
	}
	return changes, JournalPosition{file: from.file, off: from.off + int64(complete)}, nil
}

// reopen replaces stale (nil: none yet) with what the path holds now,
// creating an empty journal if there is none (a data dir from before the
// journal) and the reader may. It returns nil if there is no journal.
func (j *KeyJournal) reopen(stale *journalFile) (*journalFile, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if cur := j.cur.Load(); cur != stale {
		return cur, nil // another caller reopened it meanwhile
	}
	f, err := os.OpenFile(j.path, os.O_RDONLY|os.O_CREATE, secretPerm)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.Open(j.path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		j.cur.Store(nil)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: key journal: %w", err)
	}
	jf := &journalFile{f: f, fd: int(f.Fd())}
	j.cur.Store(jf)
	return jf, nil
}

func parseKeyChange(line string) (KeyChange, bool) {
	tenant, name, hasName := strings.Cut(line, "/")
	if protocol.ValidateName("tenant", tenant) != nil {
		return KeyChange{}, false
	}
	if hasName && protocol.ValidateName("principal", name) != nil {
		return KeyChange{}, false
	}
	return KeyChange{Tenant: tenant, Name: name}, true
}
