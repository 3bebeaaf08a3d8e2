package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// configKeys are the settings `qrctl config set` keeps, each the name of a flag.
var configKeys = []string{"url", "iam-url", "apikey", "crn", "api-version", "output"}

// configFile is the defaults kept in the user's config directory.
type configFile map[string]string

func defaultConfigPath(getenv func(string) string) string {
	if p := getenv("QRCTL_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "qrctl", "config.yaml")
}

func loadConfig(path string) (configFile, error) {
	cf := configFile{}
	if path == "" {
		return cf, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cf, nil
}

func (cf configFile) save(path string) error {
	if path == "" {
		return errors.New("no config directory: set QRCTL_CONFIG or --config")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := yaml.Marshal(map[string]string(cf))
	if err != nil {
		return err
	}
	// The file may hold an API key: only its owner reads it.
	return os.WriteFile(path, b, 0o600)
}

func validConfigKey(k string) bool {
	for _, c := range configKeys {
		if c == k {
			return true
		}
	}
	return false
}

func (cf configFile) keys() []string {
	ks := make([]string, 0, len(cf))
	for k := range cf {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// shown masks secrets.
func shown(key, value string) string {
	if key == "apikey" && value != "" {
		if len(value) > 4 {
			return strings.Repeat("*", 8) + value[len(value)-4:]
		}
		return strings.Repeat("*", 8)
	}
	return value
}
