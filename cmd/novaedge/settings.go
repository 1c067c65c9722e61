package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// settings are the bootstrap settings: where the admin API listens and who
// may use it, where resources, secrets and state live, and how to log. They come, in order of
// precedence, from flags, NOVAEDGE_* environment variables (NOVAEDGE_ADMIN,
// NOVAEDGE_LOG_LEVEL, …) and a settings file (--settings, YAML).
type settings struct {
	Admin string `mapstructure:"admin"`
	// AdminTokens is the admin API's tokens file (host/admin.ParseTokens).
	AdminTokens string `mapstructure:"admin-tokens"`
	// AdminTLSCert and AdminTLSKey serve the admin API over HTTPS;
	// AdminClientCA verifies client certificates (mutual TLS).
	AdminTLSCert  string `mapstructure:"admin-tls-cert"`
	AdminTLSKey   string `mapstructure:"admin-tls-key"`
	AdminClientCA string `mapstructure:"admin-client-ca"`
	// AdminHostnames are more names the admin API answers to (Host).
	AdminHostnames []string `mapstructure:"admin-hostnames"`

	Resources     []string      `mapstructure:"resources"`
	SecretsDir    string        `mapstructure:"secrets-dir"`
	StateDir      string        `mapstructure:"state-dir"`
	LogLevel      string        `mapstructure:"log-level"`
	LogFormat     string        `mapstructure:"log-format"`
	ShutdownGrace time.Duration `mapstructure:"shutdown-grace"`
	Watch         bool          `mapstructure:"watch"`
}

const defaultAdmin = "127.0.0.1:9901"

// defaultSecretsDir is where HTTPS listeners' secrets are read
// (--secrets-dir, NOVAEDGE_SECRETS_DIR): tls.secretRef {namespace, name}
// is <dir>/<namespace>/<name>/tls.crt and tls.key.
const defaultSecretsDir = "/var/lib/novaedge/secrets"

// addSettingsFlags declares the bootstrap flags of a serving command.
func addSettingsFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("settings", "", "settings file (YAML) with the keys below")
	f.String("admin", defaultAdmin, "admin API address (off loopback only with --admin-tokens or --admin-client-ca)")
	f.String("admin-tokens", "", "admin API bearer tokens file (\"sha256:<hex> ROLE NAME\" lines; `novaedge admin token` makes one); re-read on SIGHUP and when it changes")
	f.String("admin-tls-cert", "", "admin API TLS certificate (PEM): serve it over HTTPS")
	f.String("admin-tls-key", "", "admin API TLS key (PEM)")
	f.String("admin-client-ca", "", "admin API client CA (PEM): client certificates it verifies authenticate (role: the subject's OU, write or read; else read)")
	f.StringSlice("admin-hostnames", nil, "more names the admin API answers to in Host (besides its address, localhost, 127.0.0.1, [::1])")
	f.StringSliceP("resources", "c", nil, "resource files or directories (repeatable)")
	f.String("secrets-dir", defaultSecretsDir, "directory of TLS secrets (<namespace>/<name>/tls.crt, tls.key), as Kubernetes mounts them; watched for changes")
	f.String("state-dir", "/var/lib/novaedge/state", "directory for caches that survive restarts")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.String("log-format", "text", "log format: text or json")
	f.Duration("shutdown-grace", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	f.Bool("watch", true, "reload when a resource file or a policy's module file changes")
}

// loadSettings merges flags, environment and the settings file.
func loadSettings(cmd *cobra.Command) (*settings, error) {
	v := viper.New()
	v.SetEnvPrefix("NOVAEDGE")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return nil, err
	}
	if file := v.GetString("settings"); file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("settings file %s: %w", file, err)
		}
	}
	var s settings
	if err := v.Unmarshal(&s); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	// A comma-separated NOVAEDGE_RESOURCES arrives as one string.
	if len(s.Resources) == 1 && strings.Contains(s.Resources[0], ",") {
		s.Resources = strings.Split(s.Resources[0], ",")
	}
	if len(s.AdminHostnames) == 1 && strings.Contains(s.AdminHostnames[0], ",") {
		s.AdminHostnames = strings.Split(s.AdminHostnames[0], ",")
	}
	return &s, nil
}

// newLogger builds the process logger from the settings.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
