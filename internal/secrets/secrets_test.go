package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// A secret comes from its file (newlines trimmed) before the environment; an empty file is
// an error naming the flag and the file, never a value.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	if err := os.WriteFile(file, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SECRET", "from-env")
	if v, err := Read("catalog password", "--catalog-password-file", file, "TEST_SECRET"); v != "s3cret" || err != nil {
		t.Errorf("file: %q, %v", v, err)
	}
	if v, err := Read("catalog password", "--catalog-password-file", "", "UNSET_SECRET", "TEST_SECRET"); v != "from-env" || err != nil {
		t.Errorf("environment: %q, %v", v, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("catalog password", "--catalog-password-file", empty); err == nil || !strings.Contains(err.Error(), "--catalog-password-file catalog password: file "+empty+" is empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := RequirePassword("--kafka-sasl-mechanism PLAIN", "--kafka-password-file", "", "UNSET_SECRET"); err == nil ||
		err.Error() != "--kafka-sasl-mechanism PLAIN: no password: set UNSET_SECRET or --kafka-password-file" {
		t.Errorf("missing password: %v", err)
	}
}

func TestClientTLS(t *testing.T) {
	pki := testinfra.NewPKI(t)
	cfg, err := ClientTLS("kafka", pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile, false)
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify {
		t.Fatalf("CA and client certificate: %+v, %v", cfg, err)
	}
	if _, err := ClientTLS("kafka", "", pki.ClientCertFile, "", false); err == nil || !strings.Contains(err.Error(), "--kafka-cert-file and --kafka-key-file go together") {
		t.Errorf("certificate without key: %v", err)
	}
	if _, err := ClientTLS("catalog", pki.ClientKeyFile, "", "", false); err == nil || !strings.Contains(err.Error(), "no PEM certificate in it") {
		t.Errorf("a key as CA file: %v", err)
	}
}
