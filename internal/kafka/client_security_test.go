package kafka

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SASL settings go together, and their errors name the flags to fix.
func TestSecurityApply(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPassword, "")
	for _, c := range []struct {
		s    Security
		want string
	}{
		{Security{Username: "u"}, "--kafka-username/--kafka-password-file need --kafka-sasl-mechanism"},
		{Security{SASLMechanism: "PLAIN", PasswordFile: pw}, "--kafka-sasl-mechanism PLAIN: --kafka-username is required"},
		{Security{SASLMechanism: "PLAIN", Username: "u"}, "no password"},
		{Security{SASLMechanism: "NOPE", Username: "u", PasswordFile: pw}, `SASL mechanism "NOPE"`},
	} {
		var cfg ClientConfig
		if err := c.s.Apply(&cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.s, err, c.want)
		}
	}
	var cfg ClientConfig
	if err := (Security{SASLMechanism: "scram-sha-512", Username: "u", PasswordFile: pw}).Apply(&cfg); err != nil || cfg.SASL == nil || cfg.SASL.Name() != SASLScramSHA512 || cfg.TLS != nil {
		t.Errorf("SCRAM without TLS: %v, SASL %v, TLS %v", err, cfg.SASL, cfg.TLS)
	}
	cfg = ClientConfig{}
	if err := (Security{InsecureSkipVerify: true, ServerName: "kafka.internal"}).Apply(&cfg); err != nil || cfg.TLS == nil || cfg.TLS.ServerName != "kafka.internal" {
		t.Errorf("TLS implied by its settings: %v, %+v", err, cfg.TLS)
	}
}
