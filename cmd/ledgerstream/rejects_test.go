package main

import (
	"fmt"
	"testing"
)

func TestParsePosition(t *testing.T) {
	for in, want := range map[string]string{"tx/0/5": "tx 0 5", "a.b-c/12/0": "a.b-c 12 0"} {
		topic, p, o, err := parsePosition(in)
		if err != nil || fmt.Sprintf("%s %d %d", topic, p, o) != want {
			t.Errorf("parsePosition(%q) = %s %d %d %v", in, topic, p, o, err)
		}
	}
	for _, bad := range []string{"", "tx", "tx/0", "/0/1", "tx/x/1", "tx/0/-1", "tx/-1/0", "tx/0/1.5"} {
		if _, _, _, err := parsePosition(bad); err == nil {
			t.Errorf("parsePosition(%q) succeeded", bad)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": "é"}`:   `{"a": "é"}`,
		"line\nnext\t": "line\nnext\t",
		"\x00\x01":     "hex:0001",
		"\xff":         "hex:ff",
		"esc\x1b[2J":   "hex:6573631b5b324a",
	} {
		if got := showBytes([]byte(in)); got != want {
			t.Errorf("showBytes(%q) = %q, want %q", in, got, want)
		}
	}
	if showBytes(nil) != "(null)" || showBytes([]byte{}) != "" {
		t.Error("nil and empty must differ")
	}
}
