package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// newTestCmd is a root with one subcommand, sub, whose flags are --count (range 1..10),
// --name and --wait; the root has the --config flag and a flag only it knows.
func newTestCmd(t *testing.T) (root, sub *cobra.Command) {
	t.Helper()
	root = &cobra.Command{Use: "root"}
	root.PersistentFlags().String("config", "", "")
	root.PersistentFlags().String("elsewhere", "", "")
	sub = &cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }}
	sub.Flags().Int("count", 5, "")
	sub.Flags().String("name", "default", "")
	sub.Flags().Duration("wait", time.Second, "")
	FlagRange(sub.Flags(), "count", "1", "10")
	FlagRange(sub.Flags(), "wait", "10ms", Unbounded)
	root.AddCommand(sub)
	return root, sub
}

// parse parses args for sub and applies the configuration layers.
func parse(t *testing.T, args ...string) (*cobra.Command, error) {
	t.Helper()
	_, sub := newTestCmd(t)
	if err := sub.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := ApplyConfig(sub); err != nil {
		return sub, err
	}
	return sub, CheckRanges(sub)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Precedence: flag, environment, file, default (docs/design.md §5).
func TestApplyConfigPrecedence(t *testing.T) {
	cfg := writeConfig(t, "count: 3\nname: from-file\nelsewhere: x\n")
	t.Setenv("LEDGERSTREAM_NAME", "from-env")
	sub, err := parse(t, "--config", cfg, "--count", "7")
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"count": "7", "name": "from-env", "wait": "1s"} {
		if got := sub.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	os.Unsetenv("LEDGERSTREAM_NAME") // t.Setenv restores it
	t.Setenv("LEDGERSTREAM_CONFIG", cfg)
	sub, err = parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.Flags().Lookup("count").Value.String() + "," + sub.Flags().Lookup("name").Value.String(); got != "3,from-file" {
		t.Errorf("from LEDGERSTREAM_CONFIG: count,name = %s, want 3,from-file", got)
	}
}

func TestApplyConfigErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"nosuch: 1\n", `unknown key "nosuch"`},
		{"name: {a: 1}\n", `key "name": nested values are not supported`},
		{"wait: soon\n", "invalid value for --wait from "},
		{"wait: soon\n", "want a duration"},
		{"count: 11\n", "--count 11: out of range, want from 1 to 10"},
	} {
		_, err := parse(t, "--config", writeConfig(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.body, err, c.want)
		}
	}
}

// A value that does not parse may be a secret under the wrong key: the error names the key
// and its source, never the value, whether it comes from the file or the environment.
func TestApplyConfigErrorHidesTheValue(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	_, err := parse(t, "--config", writeConfig(t, "wait: "+secret+"\n"))
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "--wait") {
		t.Errorf("from the file: err = %v, want one naming --wait without the value", err)
	}
	t.Setenv("LEDGERSTREAM_COUNT", secret)
	_, err = parse(t)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "LEDGERSTREAM_COUNT") {
		t.Errorf("from the environment: err = %v, want one naming LEDGERSTREAM_COUNT without the value", err)
	}
}

func TestCheckRanges(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "--count 0: out of range, want from 1 to 10"},
		{[]string{"--count", "10"}, ""},
		{[]string{"--wait", "1ms"}, "--wait 1ms: out of range, want at least 10ms"},
		{[]string{"--wait", "1h"}, ""},
	} {
		_, err := parse(t, c.args...)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%v: err = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	var s Seconds
	for in, want := range map[string]time.Duration{"2": 2 * time.Second, "0.5": 500 * time.Millisecond, "3m": 3 * time.Minute} {
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, time.Duration(s), err, want)
		}
	}
	if err := s.Set("soon"); err == nil {
		t.Error("Set(soon) took it")
	}
}
