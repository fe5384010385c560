package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ice "github.com/apache/iceberg-go"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
)

// TestDamageNamed: files of the ledger damaged as an operator finds them (a data file
// deleted, 8 bytes of one flipped, a manifest cut short, the newest metadata.json cut
// short). verify and report name the file and what to do, go on where they can (verify
// counts the rows the file held as lost: exactly its manifest entry's record count), stay
// JSON with --json, and exit non-zero; run refuses to commit, naming the file, whether its
// local index is warm or rebuilt from scratch, and does not wait the damage out as an
// outage.
func TestDamageNamed(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	st := newStack(t, startBroker(t, 3))
	// Batches of 1,000 records at most: several data files and manifests.
	st.run(t, "produce", "--count", "3000")
	st.run(t, "run", "--available-now", "--trigger", "1s", "--max-batch-records", "1000")
	pristine := t.TempDir()
	copyTree(t, st.dataDir, pristine)
	files, manifests, metadata := ledgerFiles(t, st)
	if len(files) < 2 || len(manifests) < 2 {
		t.Fatalf("want several data files and manifests, have %d and %d", len(files), len(manifests))
	}
	var victim string // one of the data files, the same in every scenario
	for path := range files {
		if victim == "" || path > victim {
			victim = path
		}
	}

	type scenario struct {
		name   string
		damage func(t *testing.T)
		path   string // the file the messages must name
		lost   int64  // rows verify must count as lost; -1: verify cannot go on
		run    bool   // run must refuse (false: the damage is inside a file run does not read at start)
	}
	var manifest string
	for m := range manifests {
		manifest = m
		break
	}
	scenarios := []scenario{
		{name: "data file deleted", path: victim, lost: files[victim], run: true,
			damage: func(t *testing.T) { mustRemove(t, victim) }},
		{name: "data file bytes flipped", path: victim, lost: files[victim],
			damage: func(t *testing.T) { flipBytes(t, victim) }},
		{name: "manifest cut short", path: manifest, lost: manifests[manifest], run: true,
			damage: func(t *testing.T) { truncateHalf(t, manifest) }},
		{name: "metadata.json cut short", path: metadata, lost: -1, run: true,
			damage: func(t *testing.T) { truncateHalf(t, metadata) }},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			restoreTree(t, pristine, st.dataDir)
			sc.damage(t)

			// verify --json: one JSON document, whatever happened; stderr names the file.
			code, out, errOut := runSplit(t, st.args("verify", "--json")...)
			if code == 0 || !strings.Contains(errOut, sc.path) {
				t.Errorf("verify --json: exit %d, want non-zero and stderr naming %s:\n%s", code, sc.path, tail(errOut, 3000))
			}
			var doc struct {
				Damaged []struct {
					Path string `json:"path"`
					Rows int64  `json:"rows"`
					Read int64  `json:"rows_read"`
					Hint string `json:"hint"`
				} `json:"damaged_files"`
				Reconciliation *struct {
					Missing int64 `json:"missing"`
				} `json:"reconciliation"`
				Checks []struct {
					Name   string `json:"name"`
					Passed bool   `json:"passed"`
					Figure int64  `json:"figure"`
				} `json:"checks"`
				Error *struct {
					What string `json:"what"`
					Path string `json:"path"`
					Hint string `json:"hint"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("verify --json printed no JSON document: %v\nstdout:\n%s\nstderr:\n%s", err, tail(out, 2000), tail(errOut, 2000))
			}
			if sc.lost < 0 {
				if doc.Error == nil || doc.Error.Path != sc.path || !strings.Contains(doc.Error.Hint, "previous metadata file") {
					t.Errorf("verify --json: want an error naming %s and the previous metadata file, got %s", sc.path, out)
				}
			} else {
				if len(doc.Damaged) != 1 || doc.Damaged[0].Path != sc.path || doc.Damaged[0].Rows != sc.lost ||
					!strings.Contains(doc.Damaged[0].Hint, "restore it from a backup") {
					t.Fatalf("verify --json: want %s damaged, holding %d rows, got %s", sc.path, sc.lost, tail(out, 3000))
				}
				// Rows read before the damage was met (none, in files this small) were counted.
				lost := doc.Damaged[0].Rows - doc.Damaged[0].Read
				if doc.Reconciliation == nil || doc.Reconciliation.Missing != lost {
					t.Errorf("verify --json: the reconciliation should miss the %d unread rows of %s: %s", lost, sc.path, tail(out, 3000))
				}
				found := false
				for _, c := range doc.Checks {
					if c.Name == "readable_files" {
						found = true
						if c.Passed || c.Figure != lost {
							t.Errorf("verify --json: readable_files passed %v with figure %d, want failed with %d", c.Passed, c.Figure, lost)
						}
					}
				}
				if !found {
					t.Errorf("verify --json: no readable_files check: %s", tail(out, 3000))
				}
			}

			// report --json: JSON, the file named, non-zero exit (its figures lack rows).
			code, out, errOut = runSplit(t, st.args("report", "--json")...)
			if code == 0 || !json.Valid([]byte(out)) || !strings.Contains(out, sc.path) || !strings.Contains(errOut, sc.path) {
				t.Errorf("report --json: exit %d, want non-zero, a JSON document and stderr naming %s:\n%s\n%s", code, sc.path, tail(out, 2000), tail(errOut, 2000))
			}
			// history --json reads the metadata: JSON too when that is what is damaged.
			if sc.lost < 0 {
				code, out, _ = runSplit(t, st.args("history", "--json")...)
				if code == 0 || !json.Valid([]byte(out)) || !strings.Contains(out, sc.path) {
					t.Errorf("history --json: exit %d, want non-zero and a JSON error naming %s:\n%s", code, sc.path, tail(out, 2000))
				}
			}

			if !sc.run {
				return
			}
			// run refuses, naming the file, with the index it has (warm) and with none.
			for _, index := range []string{"warm", "fresh"} {
				if index == "fresh" {
					if err := os.RemoveAll(filepath.Join(st.dataDir, "index")); err != nil {
						t.Fatal(err)
					}
				}
				p := st.start(t, "run", "--available-now", "--trigger", "1s")
				err := p.wait(2 * time.Minute) // an outage would be waited out for 15 minutes
				if err == nil || !strings.Contains(p.stderr.String(), sc.path) || !strings.Contains(p.stderr.String(), "is damaged") {
					t.Errorf("run with a %s index: %v, want a refusal naming %s as damage:\n%s", index, err, sc.path, tail(p.stderr.String(), 3000))
				}
			}
		})
	}
}

// ledgerFiles returns the data files of the ledger's head with their record counts, its
// manifests with the rows they list, and its metadata file.
func ledgerFiles(t *testing.T, st stack) (files, manifests map[string]int64, metadata string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ident, err := iceberg.ParseIdent(st.table)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := iceberg.Open(ctx, iceberg.Config{DataDir: st.dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	files, manifests = map[string]int64{}, map[string]int64{}
	for _, m := range list {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				t.Fatal(err)
			}
			if e.DataFile().ContentType() == ice.EntryContentData {
				files[e.DataFile().FilePath()] = e.DataFile().Count()
				manifests[m.FilePath()] += e.DataFile().Count()
			}
		}
	}
	return files, manifests, tbl.MetadataLocation()
}

// runSplit runs `ledgerstream args...` to its end (two minutes at most) and returns its
// exit code, stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, args[0], args...)
	p.quiet = true
	err := p.wait(2 * time.Minute)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ledgerstream %s: %v", strings.Join(args, " "), err)
	}
	return code, p.stdout.String(), p.stderr.String()
}

// copyTree copies the directory tree src into dst (which exists).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// restoreTree makes dir a copy of pristine again: the catalog names its files by absolute
// path, so a damaged table is repaired in place rather than copied elsewhere.
func restoreTree(t *testing.T, pristine, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	copyTree(t, pristine, dir)
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// flipBytes inverts 8 bytes in the middle of the file: its size stays, its pages do not
// decode.
func flipBytes(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+8; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// truncateHalf cuts the file to half its size.
func truncateHalf(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}
