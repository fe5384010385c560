package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// ApplyConfig fills every flag the user did not set on the command line from the
// environment (LEDGERSTREAM_<NAME>, the flag's name upper-cased with '-' as '_') or else
// from the YAML file named by --config (keys are flag names; '_' may stand for '-').
// Precedence: flag, environment, file, default (docs/design.md §5).
func ApplyConfig(cmd *cobra.Command) error {
	file := map[string]string{}
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("LEDGERSTREAM_CONFIG")
	}
	if path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return err
		}
	}
	var firstErr error
	used := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "help" {
			return
		}
		used[f.Name] = true
		if f.Changed || firstErr != nil {
			return
		}
		env := "LEDGERSTREAM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		source, value, ok := env, "", false
		if value, ok = os.LookupEnv(env); !ok {
			source = path + ": " + f.Name
			value, ok = file[f.Name]
		}
		if !ok {
			return
		}
		if err := f.Value.Set(value); err != nil {
			// The value itself may be a secret (a password pasted under the wrong key): name
			// the source and the type wanted, never the value, which the parsers' errors quote.
			firstErr = fmt.Errorf("invalid value for --%s from %s, want a %s (the value is not shown: it may be a secret): %w",
				f.Name, source, f.Value.Type(), redacted{err: err, value: value})
		}
	})
	if firstErr != nil {
		return firstErr
	}
	for key := range file {
		if !used[key] && !KnownElsewhere(cmd.Root(), key) {
			return fmt.Errorf("%s: unknown key %q", path, key)
		}
	}
	return nil
}

// readConfigFile reads a flat YAML mapping of flag names to values.
func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		key := strings.ReplaceAll(k, "_", "-")
		switch v := v.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				parts[i] = fmt.Sprint(e)
			}
			out[key] = strings.Join(parts, ",")
		case map[string]any:
			return nil, fmt.Errorf("config %s: key %q: nested values are not supported", path, k)
		default:
			out[key] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// KnownElsewhere reports whether key names a flag of some other subcommand, so that one
// config file can serve every command.
func KnownElsewhere(root *cobra.Command, key string) bool {
	var found bool
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup(key) != nil || c.PersistentFlags().Lookup(key) != nil {
			found = true
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return found
}

// redacted is an error whose text does not quote value: what a flag's parser said about a
// value from the environment or a config file, which may be a secret.
type redacted struct {
	err   error
	value string
}

func (r redacted) Error() string {
	if r.value == "" {
		return r.err.Error()
	}
	return strings.ReplaceAll(r.err.Error(), r.value, "…")
}

func (r redacted) Unwrap() error { return r.err }
