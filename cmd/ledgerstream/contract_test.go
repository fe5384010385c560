package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgerstream/ledgerstream/internal/cli"
)

func TestContractCheck(t *testing.T) {
	root := newRoot(&cli.Globals{})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"contract", "check", "../../examples/payments-contract.yaml"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"valid, a custom contract",
		"row hash: sha256(payment_id | payer | payee | amount | currency)",
		"    4  amount               decimal(18, 2)   required  message amount.value (> 0)",
		"   10  extras               string           optional  unknown keys, as a JSON object",
		"  1000  event_timestamp_day      day(event_timestamp)",
		"  1001  currency                 identity(currency)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("contract check does not print %q:\n%s", want, out.String())
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("key: id\nhash: [id]\nfields:\n  - {name: id, type: strin, required: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root = newRoot(&cli.Globals{})
	root.SetArgs([]string{"contract", "check", bad})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), `unknown type "strin"`) || !strings.Contains(err.Error(), "report is missing") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("a bad contract: %v", err)
	}
}
