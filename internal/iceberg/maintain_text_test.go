package iceberg

import (
	"fmt"
	"strings"
	"testing"
)

// maintain's text: a dry run says what it would do and lists the orphans (ten, then how
// many more); a real run says what it did and lists none.
func TestMaintainResultWriteText(t *testing.T) {
	r := &MaintainResult{Table: "demo.ledger", DryRun: true, PropertiesSet: map[string]string{"b": "2", "a": "1"}}
	r.Manifests.Before, r.Manifests.After = 12, 1
	r.Compaction.Groups, r.Compaction.InputFiles, r.Compaction.OutputFiles = 2, 40, 2
	r.Compaction.InputBytes, r.Compaction.OutputBytes, r.Compaction.SkippedFiles = 3<<20, 5<<30, 1
	r.Expiry.SnapshotsBefore, r.Expiry.Expired, r.Expiry.Retained = 9, []int64{1, 2}, 7
	r.Expiry.Protected = map[string]int64{"p2": 8, "p1": 9}
	for i := range 12 {
		r.Orphans.Files = append(r.Orphans.Files, fmt.Sprintf("data/orphan-%02d.parquet", i))
	}
	r.Orphans.Bytes = 1536
	var b strings.Builder
	r.WriteText(&b)
	want := `Dry run on demo.ledger (nothing changed)
  properties  would set a=1, b=2
  manifests   12 in the head's manifest list, merged into 1
  compaction  would rewrite 40 files (3.0 MiB) into 2 (5.0 GiB) in 2 groups; 1 files left as they are
  expiry      9 snapshots, would expire 2, 7 kept; newest of each pipeline kept: p1@9, p2@8
  orphans     12 files (1.5 KiB) would be deleted
`
	for i := range 10 {
		want += fmt.Sprintf("              data/orphan-%02d.parquet\n", i)
	}
	want += "              … and 2 more\n"
	if b.String() != want {
		t.Errorf("dry run:\n%s\nwant:\n%s", b.String(), want)
	}
	r.DryRun, r.Orphans.Deleted = false, 12
	b.Reset()
	r.WriteText(&b)
	if !strings.HasPrefix(b.String(), "Maintained demo.ledger\n") || !strings.Contains(b.String(), "orphans     12 files (1.5 KiB) found, 12 deleted\n") ||
		strings.Contains(b.String(), "orphan-00") {
		t.Errorf("real run:\n%s", b.String())
	}
}
