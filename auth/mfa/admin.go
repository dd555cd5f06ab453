package mfa

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/equilateral-agents/equilateral/protocol"
)

// The TOTP parameters every admin gets: what authenticator apps take.
const (
	Issuer     = "Equilateral"
	Period     = 30 // seconds per step
	Digits     = 6
	secretSize = 20 // bytes: 160 bits, as RFC 4226 recommends for SHA1
	// defaultOperator names the data dir in an admin's account when its
	// operator JWT cannot be read.
	defaultOperator = "equilateral"
)

// Enrollment is a new admin: what to hand to an authenticator app. Secret
// and URI hold the secret; show them to the admin once.
type Enrollment struct {
	Name    string
	Account string // <name>@<operator>, as the app shows it
	Secret  string // base32, for apps without a camera
	URI     string // otpauth://totp/...: the QR code's content
}

// Admin is an enrolled admin, without its secret.
type Admin struct {
	Name       string    `json:"name"`
	Account    string    `json:"account"`
	EnrolledAt time.Time `json:"enrolled_at"`
	// LastUsedAt is the start of the step of the last accepted code, zero
	// if none was.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// record is DIR/admins/<name>.json.
type record struct {
	Name       string    `json:"name"`
	Account    string    `json:"account"`
	Secret     string    `json:"secret"` // base32, no padding
	EnrolledAt time.Time `json:"enrolled_at"`
	// LastStep is the step (unix time / Period) of the last accepted code;
	// a code of this step or before is refused.
	LastStep uint64 `json:"last_step"`
}

func (r record) admin() Admin {
	a := Admin{Name: r.Name, Account: r.Account, EnrolledAt: r.EnrolledAt}
	if r.LastStep != 0 {
		a.LastUsedAt = time.Unix(int64(r.LastStep*Period), 0).UTC()
	}
	return a
}

// key is the secret as bytes (for the session HMAC).
func (r record) key() ([]byte, error) {
	return base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(r.Secret))
}

// ValidateName checks an admin name: [a-z0-9][a-z0-9_-]{0,63}, as every
// principal's, and not "session".
func ValidateName(name string) error {
	if err := protocol.ValidateName("admin", name); err != nil {
		return err
	}
	if name == sessionName {
		return fmt.Errorf("%w: %q", ErrReservedName, name)
	}
	return nil
}

// Enroll makes admin name in the data dir with a fresh secret. It refuses
// a name that is enrolled (ErrAdminExists). It does not ask for a code:
// whether one is needed to enroll is the caller's rule.
func Enroll(dataDir, name string) (Enrollment, error) {
	if err := ValidateName(name); err != nil {
		return Enrollment{}, err
	}
	unlock, err := lock(dataDir)
	if err != nil {
		return Enrollment{}, err
	}
	defer unlock()
	if _, err := os.Stat(adminPath(dataDir, name)); err == nil {
		return Enrollment{}, fmt.Errorf("%w: %s", ErrAdminExists, name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Enrollment{}, fmt.Errorf("mfa: %w", err)
	}
	account := name + "@" + operatorName(dataDir)
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      Issuer,
		AccountName: account,
		Period:      Period,
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: new secret: %w", err)
	}
	rec := record{Name: name, Account: account, Secret: key.Secret(), EnrolledAt: time.Now().UTC().Truncate(time.Second)}
	if err := writeRecord(dataDir, rec); err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Name: name, Account: account, Secret: key.Secret(), URI: key.URL()}, nil
}

// operatorName is the data dir's operator as its JWT names it.
func operatorName(dataDir string) string {
	raw, err := os.ReadFile(operatorJWTPath(dataDir))
	if err != nil {
		return defaultOperator
	}
	claims, err := jwt.DecodeOperatorClaims(strings.TrimSpace(string(raw)))
	if err != nil || protocol.ValidateName("operator", claims.Name) != nil {
		return defaultOperator
	}
	return claims.Name
}

// Enrolled lists the enrolled admins' names, sorted.
func Enrolled(dataDir string) ([]string, error) {
	admins, err := Admins(dataDir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(admins))
	for i, a := range admins {
		names[i] = a.Name
	}
	return names, nil
}

// Admins lists the enrolled admins, sorted by name.
func Admins(dataDir string) ([]Admin, error) {
	recs, err := readRecords(dataDir)
	if err != nil {
		return nil, err
	}
	admins := make([]Admin, len(recs))
	for i, r := range recs {
		admins[i] = r.admin()
	}
	return admins, nil
}

// Remove unenrolls admin name, and ends the session if it was theirs.
// Removing the last admin turns MFA off.
func Remove(dataDir, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock, err := lock(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(adminPath(dataDir, name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrUnknownAdmin, name)
	} else if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	if s, err := readSession(dataDir); err == nil && s.Admin == name {
		if err := os.Remove(sessionPath(dataDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mfa: end %s's session: %w", name, err)
		}
	}
	return syncDir(adminsPath(dataDir))
}

// readRecords reads every admin (none when DIR/admins does not exist).
func readRecords(dataDir string) ([]record, error) {
	entries, err := os.ReadDir(adminsPath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	var recs []record
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !e.Type().IsRegular() || ValidateName(name) != nil {
			continue // the session, the lock, temporary files
		}
		r, err := readRecord(dataDir, name)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	return recs, nil
}

func readRecord(dataDir, name string) (record, error) {
	raw, err := os.ReadFile(adminPath(dataDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return record{}, fmt.Errorf("%w: %s", ErrUnknownAdmin, name)
	}
	if err != nil {
		return record{}, fmt.Errorf("mfa: %w", err)
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return record{}, fmt.Errorf("mfa: %s: %w", adminPath(dataDir, name), err)
	}
	if r.Name != name {
		return record{}, fmt.Errorf("mfa: %s holds admin %q", adminPath(dataDir, name), r.Name)
	}
	if k, err := r.key(); err != nil || len(k) < 10 {
		return record{}, fmt.Errorf("mfa: %s: no usable secret", adminPath(dataDir, name))
	}
	return r, nil
}

func writeRecord(dataDir string, r record) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("mfa: %w", err)
	}
	return writeFileAtomic(adminPath(dataDir, r.Name), append(raw, '\n'))
}
