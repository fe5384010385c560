package pipeline

import "testing"

func TestMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	if got := MemoryLimit(0, 100_000); got != 128<<20+100_000*2<<10 {
		t.Errorf("default for 100,000 records: %d", got)
	}
	if got := MemoryLimit(300, 100_000); got != 300<<20 {
		t.Errorf("300 MiB: %d", got)
	}
	if got := MemoryLimit(-1, 100_000); got != -1 {
		t.Errorf("-1 (none): %d", got)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got := MemoryLimit(300, 100_000); got != -1 {
		t.Errorf("GOMEMLIMIT set: %d, want -1 (the runtime's wins)", got)
	}
}
