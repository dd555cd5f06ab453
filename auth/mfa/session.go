package mfa

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// Session lengths.
const (
	DefaultSessionTTL = 15 * time.Minute
	MaxSessionTTL     = 12 * time.Hour
	// sessionSkew is how far in the future a session may say it was
	// opened (clocks of two hosts sharing a data dir).
	sessionSkew = time.Minute
)

// Session is an open session: whose, and until when.
type Session struct {
	Admin     string    `json:"admin"`
	OpenedAt  time.Time `json:"opened_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// sessionFile is DIR/admins/session.json: the session and its MAC.
type sessionFile struct {
	Session
	MAC string `json:"mac"` // hex HMAC-SHA256, keyed by the admin's secret, of sessionMessage
}

// sessionMessage is what the MAC covers: every field, in a fixed form,
// under a label no other MAC keyed by the same secret uses.
func sessionMessage(s Session) []byte {
	return []byte("equilateral admin session v1\n" + s.Admin + "\n" +
		strconv.FormatInt(s.OpenedAt.Unix(), 10) + "\n" + strconv.FormatInt(s.ExpiresAt.Unix(), 10) + "\n")
}

func sessionMAC(key []byte, s Session) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(sessionMessage(s))
	return m.Sum(nil)
}

// OpenSession spends code (as Verify does) and opens a session of its
// admin for ttl (DefaultSessionTTL when 0; at most MaxSessionTTL) from
// now, replacing any session open before.
func OpenSession(dataDir, code string, now time.Time, ttl time.Duration) (Session, error) {
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	if ttl < 0 || ttl > MaxSessionTTL {
		return Session{}, fmt.Errorf("%w: %s is not within (0, %s]", ErrSessionTTL, ttl, MaxSessionTTL)
	}
	unlock, err := lock(dataDir)
	if err != nil {
		return Session{}, err
	}
	defer unlock()
	admin, err := verifyLocked(dataDir, code, now)
	if err != nil {
		return Session{}, err
	}
	rec, err := readRecord(dataDir, admin)
	if err != nil {
		return Session{}, err
	}
	key, err := rec.key()
	if err != nil {
		return Session{}, fmt.Errorf("mfa: %w", err)
	}
	// Whole seconds: what the MAC covers is exactly what the file says.
	opened := now.UTC().Truncate(time.Second)
	s := Session{Admin: admin, OpenedAt: opened, ExpiresAt: opened.Add(ttl)}
	raw, err := json.MarshalIndent(sessionFile{Session: s, MAC: hex.EncodeToString(sessionMAC(key, s))}, "", "  ")
	if err != nil {
		return Session{}, fmt.Errorf("mfa: %w", err)
	}
	if err := writeFileAtomic(sessionPath(dataDir), append(raw, '\n')); err != nil {
		return Session{}, err
	}
	return s, nil
}

// SessionAdmin returns the admin of the session open at now: ErrNoSession
// when there is none, ErrSessionExpired when it ran out, ErrSessionInvalid
// when the file is not one OpenSession wrote for an enrolled admin.
func SessionAdmin(dataDir string, now time.Time) (string, error) {
	s, err := CurrentSession(dataDir, now)
	return s.Admin, err
}

// CurrentSession is SessionAdmin with the session's times.
func CurrentSession(dataDir string, now time.Time) (Session, error) {
	f, err := readSession(dataDir)
	if err != nil {
		return Session{}, err
	}
	s := f.Session
	rec, err := readRecord(dataDir, s.Admin)
	if errors.Is(err, ErrUnknownAdmin) {
		return Session{}, fmt.Errorf("%w: admin %q is not enrolled", ErrSessionInvalid, s.Admin)
	}
	if err != nil {
		return Session{}, err
	}
	key, err := rec.key()
	if err != nil {
		return Session{}, fmt.Errorf("mfa: %w", err)
	}
	got, err := hex.DecodeString(f.MAC)
	if err != nil || !hmac.Equal(got, sessionMAC(key, s)) {
		return Session{}, fmt.Errorf("%w: its MAC does not match", ErrSessionInvalid)
	}
	// A MAC that matches was made with the admin's secret, which the data
	// dir's reader holds too; the bounds below hold for any session.
	if length := s.ExpiresAt.Sub(s.OpenedAt); length <= 0 || length > MaxSessionTTL {
		return Session{}, fmt.Errorf("%w: it lasts %s", ErrSessionInvalid, length)
	}
	if s.OpenedAt.After(now.Add(sessionSkew)) {
		return Session{}, fmt.Errorf("%w: opened in the future (%s)", ErrSessionInvalid, s.OpenedAt.Format(time.RFC3339))
	}
	if !now.Before(s.ExpiresAt) {
		return Session{}, fmt.Errorf("%w at %s", ErrSessionExpired, s.ExpiresAt.Format(time.RFC3339))
	}
	return s, nil
}

// EndSession closes the open session, if any.
func EndSession(dataDir string) error {
	err := os.Remove(sessionPath(dataDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mfa: %w", err)
	}
	return nil
}

// readSession reads DIR/admins/session.json strictly.
func readSession(dataDir string) (sessionFile, error) {
	raw, err := os.ReadFile(sessionPath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return sessionFile{}, ErrNoSession
	}
	if err != nil {
		return sessionFile{}, fmt.Errorf("mfa: %w", err)
	}
	return parseSession(raw)
}

func parseSession(raw []byte) (sessionFile, error) {
	var f sessionFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return sessionFile{}, fmt.Errorf("%w: %w", ErrSessionInvalid, err)
	}
	if dec.More() {
		return sessionFile{}, fmt.Errorf("%w: trailing data", ErrSessionInvalid)
	}
	if err := ValidateName(f.Admin); err != nil {
		return sessionFile{}, fmt.Errorf("%w: %w", ErrSessionInvalid, err)
	}
	return f, nil
}
