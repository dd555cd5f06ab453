package security

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Settings are a system's chosen level and environment: in the data dir
// for the admin commands (SettingsFile), in the config for an
// orchestrator.
type Settings struct {
	Level       Level       `json:"level" yaml:"level"`
	Environment Environment `json:"environment" yaml:"environment"`
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
