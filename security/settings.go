package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Settings are a system's chosen level and environment: in the data dir
// for the admin commands (SettingsFile), in the config for an
// orchestrator.
type Settings struct {
	Level       Level       `json:"level" yaml:"level"`
	Environment Environment `json:"environment" yaml:"environment"`
	// MaxCredentialAge, from advanced up, is how long creds issued now
	// stay valid (their JWT expiry); 0 means DefaultMaxCredentialAge.
	MaxCredentialAge Duration `json:"max_credential_age,omitempty" yaml:"max_credential_age,omitempty"`
}

// DefaultMaxCredentialAge is the credential maximum age when none is set.
const DefaultMaxCredentialAge = 30 * 24 * time.Hour

// CredentialLifetime is how long creds issued under s stay valid: 0 (no
// expiry) below advanced.
func (s Settings) CredentialLifetime() time.Duration {
	if !s.Level.Has(CredentialMaxAge) {
		return 0
	}
	if s.MaxCredentialAge > 0 {
		return time.Duration(s.MaxCredentialAge)
	}
	return DefaultMaxCredentialAge
}

// Duration is a time.Duration written as text ("720h") in JSON and YAML.
type Duration time.Duration

// MarshalText writes d as time.Duration does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "720h", "30m" and the like.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %s: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

// Default is what a new data dir and `dev` run at: enhanced, development.
func Default() Settings { return Settings{Level: Enhanced, Environment: Development} }

// SettingsFile is where a data dir keeps its settings.
func SettingsFile(dataDir string) string { return filepath.Join(dataDir, "security.json") }

// ReadSettings reads a data dir's settings; a data dir without the file
// (made before levels existed) runs at Default.
func ReadSettings(dataDir string) (Settings, error) {
	raw, err := os.ReadFile(SettingsFile(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Settings{}, err
	}
	var s Settings
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", SettingsFile(dataDir), err)
	}
	if !s.Level.Valid() || !s.Environment.Valid() {
		return Settings{}, fmt.Errorf("%s: want a level and an environment", SettingsFile(dataDir))
	}
	return s, nil
}

// WriteSettings writes a data dir's settings (0600, replaced atomically).
func WriteSettings(dataDir string, s Settings) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dataDir, ".security-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), SettingsFile(dataDir))
}
