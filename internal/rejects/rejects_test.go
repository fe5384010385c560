package rejects

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestParsePosition(t *testing.T) {
	for in, want := range map[string]string{"tx/0/5": "tx 0 5", "a.b-c/12/0": "a.b-c 12 0"} {
		topic, p, o, err := ParsePosition(in)
		if err != nil || fmt.Sprintf("%s %d %d", topic, p, o) != want {
			t.Errorf("ParsePosition(%q) = %s %d %d %v", in, topic, p, o, err)
		}
	}
	for _, bad := range []string{"", "tx", "tx/0", "/0/1", "tx/x/1", "tx/0/-1", "tx/-1/0", "tx/0/1.5"} {
		if _, _, _, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) succeeded", bad)
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

// rejects --json: every field, even of an empty row.
func TestJSONEveryField(t *testing.T) {
	b, err := json.Marshal(&Row{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"transaction_id", "value_sha256", "kafka_timestamp", "rejected_at", "headers"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("rejects --json of an empty row lacks %q: %s", k, b)
		}
	}
}

// Missing names the positions no row is at, as the user typed them.
func TestMissing(t *testing.T) {
	var r Row
	r.SourceTopic, r.SourcePartition, r.SourceOffset = "tx", 1, 7
	keep, err := AtPositions([]string{"tx/1/7", "tx/1/8"})
	if err != nil {
		t.Fatal(err)
	}
	if !keep(&r.RejectRow) {
		t.Error("AtPositions does not keep tx/1/7")
	}
	if got := Missing([]string{"tx/1/7", "tx/01/8"}, []Row{r}); len(got) != 1 || got[0] != "tx/01/8" {
		t.Errorf("Missing = %q, want [tx/01/8]", got)
	}
}
