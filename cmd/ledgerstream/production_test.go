package main

// End-to-end tests of the production setup (issue 5), through the real binary: a broker
// with TLS and SASL SCRAM-SHA-512, an S3 warehouse on versitygw, the PostgreSQL catalog,
// secrets from files and the environment, and several workers on one table. Each skips
// with a message when versitygw or PostgreSQL is missing (.ci/run provides both).

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

// Distinctive secret values: the leak test searches every output and file for them.
const (
	e2eS3AccessKey   = "LSE2EACCESSKEY"
	e2eS3SecretKey   = "S3-SECRET-q7Vd93kLx0"
	e2eKafkaPassword = "KAFKA-SECRET-m4Zp81wQ"
	e2eKafkaUser     = "ledger-svc"
)

// secureKafka is a broker process with TLS and SASL SCRAM-SHA-512, and the client flags
// that reach it.
type secureKafka struct {
	addr       string
	dataDir    string
	clientArgs []string
	broker     *proc
}

func startSecureBroker(t *testing.T, partitions int) secureKafka {
	t.Helper()
	pki := testinfra.NewPKI(t)
	dataDir := t.TempDir()
	pw := testinfra.WriteSecret(t, "broker-password", e2eKafkaPassword)
	p := startProc(t, "secure broker", "broker", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--partitions", fmt.Sprint(partitions), "--tls-cert-file", pki.ServerCertFile, "--tls-key-file", pki.ServerKeyFile,
		"--sasl-user", e2eKafkaUser, "--sasl-password-file", pw, "--sasl-mechanism", "SCRAM-SHA-512")
	line := p.waitForLine(&p.stdout, "broker listening on ", 30*time.Second)
	clientPW := testinfra.WriteSecret(t, "client-password", e2eKafkaPassword)
	return secureKafka{
		addr:    strings.TrimSpace(strings.TrimPrefix(line, "broker listening on ")),
		dataDir: dataDir,
		broker:  p,
		clientArgs: []string{"--kafka-ca-file", pki.CAFile, "--kafka-sasl-mechanism", "SCRAM-SHA-512",
			"--kafka-username", e2eKafkaUser, "--kafka-password-file", clientPW},
	}
}

// TestSecuredKafkaEndToEnd: produce, run --available-now and verify through TLS + SASL
// SCRAM-SHA-512; a wrong password fails clearly and without showing any password.
func TestSecuredKafkaEndToEnd(t *testing.T) {
	t.Parallel()
	k := startSecureBroker(t, 3)
	st := newStack(t, k.addr)
	const n = 2000
	st.run(t, "produce", append([]string{"--count", fmt.Sprint(n), "--seed", "11"}, k.clientArgs...)...)
	out := st.run(t, "run", append([]string{"--available-now", "--trigger", "1s"}, k.clientArgs...)...)
	if got := streamed(t, out); got != n {
		t.Errorf("run streamed %d, want %d", got, n)
	}
	p := st.start(t, "verify", append([]string{"--json"}, k.clientArgs...)...)
	if err := p.wait(2 * time.Minute); err != nil {
		t.Fatalf("verify over TLS+SASL: %v\n%s", err, tail(p.stderr.String(), 3000))
	}

	bad := append([]string{}, k.clientArgs...)
	bad[len(bad)-1] = testinfra.WriteSecret(t, "wrong", "not-the-password")
	wp := st.start(t, "produce", append([]string{"--count", "5"}, bad...)...)
	if err := wp.wait(time.Minute); err == nil {
		t.Fatal("produce with a wrong password succeeded")
	}
	msg := wp.stderr.String()
	t.Logf("wrong password: %s", tail(msg, 600))
	if !strings.Contains(msg, "SASL") {
		t.Errorf("wrong password: the error does not point at SASL:\n%s", tail(msg, 2000))
	}
	if strings.Contains(msg, e2eKafkaPassword) || strings.Contains(msg, "not-the-password") {
		t.Error("wrong password: a password is printed")
	}
}

// s3Warehouse starts versitygw (or skips) and returns its endpoint and a fresh warehouse.
func s3Warehouse(t *testing.T) (*testinfra.S3, string) {
	t.Helper()
	s3 := testinfra.StartS3(t, e2eS3AccessKey, e2eS3SecretKey, "lake")
	testinfra.SetAWSEnv(e2eS3AccessKey, e2eS3SecretKey) // children inherit it: the AWS chain
	return s3, fmt.Sprintf("s3://lake/%s", strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
}

// pgTable is a table name unique to this test run: the PostgreSQL catalog's name is shared.
func pgTable(t *testing.T) string {
	return fmt.Sprintf("e2e_%d_%d.ledger", os.Getpid(), time.Now().UnixNano())
}

// TestSecretsNeverLeak runs produce, run, verify and report against TLS+SASL Kafka, an S3
// warehouse and (when reachable) the PostgreSQL catalog with a password from a file, then
// searches every byte the processes printed and every file they (and the servers) wrote,
// and the catalog's rows, for the secrets, raw and base64.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	s3, wh := s3Warehouse(t)
	k := startSecureBroker(t, 3)
	st := newStack(t, k.addr)
	catalogPW := "PG-SECRET-h2Jw55rT"
	args := append([]string{"--warehouse", wh, "--s3-endpoint", s3.Endpoint}, k.clientArgs...)
	pgURI := ""
	if uri, err := testinfra.PostgresReachable(); err == nil {
		pgURI = uri
		st.table = pgTable(t)
		args = append(args, "--catalog", uri, "--catalog-password-file", testinfra.WriteSecret(t, "pg-password", catalogPW))
		t.Cleanup(func() { dropPGTable(t, uri, st.table) })
	} else {
		t.Logf("PostgreSQL not reachable (%v): the SQLite catalog is used", err)
	}

	var procs []*proc
	runP := func(sub string, extra ...string) *proc {
		p := st.start(t, sub, append(extra, args...)...)
		procs = append(procs, p)
		if err := p.wait(2 * time.Minute); err != nil {
			t.Fatalf("%s: %v\n%s", sub, err, tail(p.stderr.String(), 3000))
		}
		return p
	}
	const n = 3000
	runP("produce", "--count", fmt.Sprint(n), "--seed", "5", "--log-level", "debug")
	runP("run", "--available-now", "--trigger", "1s", "--log-level", "debug")
	runP("verify", "--json", "--log-level", "debug")
	runP("report", "--log-level", "debug")
	// A failing command prints its error too: a wrong S3 endpoint.
	bad := st.start(t, "report", append([]string{"--log-level", "debug"}, append(args, "--s3-endpoint", "http://127.0.0.1:1")...)...)
	_ = bad.wait(2 * time.Minute)
	procs = append(procs, bad)

	secrets := []string{e2eS3SecretKey, e2eKafkaPassword, catalogPW}
	forms := func(s string) []string {
		return []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s))}
	}
	check := func(where, text string) {
		for _, s := range secrets {
			for _, f := range forms(s) {
				if strings.Contains(text, f) {
					t.Errorf("secret %.6s… found in %s", s, where)
				}
			}
		}
	}
	for _, p := range procs {
		check(p.name+" stdout", p.stdout.String())
		check(p.name+" stderr", p.stderr.String())
		if p.stderr.String() == "" && p.name != "report" {
			t.Logf("%s printed nothing on stderr", p.name)
		}
	}
	files := 0
	for _, dir := range []string{st.dataDir, k.dataDir, s3.Dir} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			files++
			check(path, string(b))
			return nil
		})
	}
	var metadataFiles int
	_ = filepath.WalkDir(s3.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".metadata.json") {
			metadataFiles++
		}
		return nil
	})
	if metadataFiles == 0 {
		t.Errorf("no table metadata in versitygw's storage %s: the warehouse was not on S3", s3.Dir)
	}
	t.Logf("scanned %d processes' output and %d files (%d table metadata files on S3)", len(procs), files, metadataFiles)
	if pgURI != "" {
		db, err := sql.Open("pgx", pgURI)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{
			"SELECT concat_ws('|', catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location) FROM iceberg_tables",
			"SELECT concat_ws('|', catalog_name, namespace, property_key, property_value) FROM iceberg_namespace_properties",
		} {
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			var nrows int
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				nrows++
				check("catalog row "+s, s)
			}
			rows.Close()
			if nrows == 0 {
				t.Errorf("%s: no rows", q)
			}
		}
	}
}

func dropPGTable(t *testing.T, uri, tbl string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ident, err := iceberg.ParseIdent(tbl)
	if err != nil {
		return
	}
	c, err := iceberg.Open(ctx, iceberg.Config{CatalogURI: uri, DataDir: t.TempDir()})
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.DropTable(ctx, ident, false)
	_ = c.Unwrap().DropNamespace(ctx, ident[:1])
}

// TestWorkersSharePostgresS3: three `run` workers of one pipeline, with distinct worker ids,
// share a PostgreSQL catalog and an S3 warehouse; one is killed midway, the group
// rebalances its partitions to the others after the 2 s session timeout, more records
// arrive, and verify finds every record exactly once.
func TestWorkersSharePostgresS3(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	uri := testinfra.RequirePostgres(t)
	s3, wh := s3Warehouse(t)
	st := newStack(t, startBroker(t, 6))
	st.table = pgTable(t)
	st.pipeline = "shared-pipeline"
	t.Cleanup(func() { dropPGTable(t, uri, st.table) })
	args := []string{"--catalog", uri, "--warehouse", wh, "--s3-endpoint", s3.Endpoint}

	// One producer, running while the workers do (the seed's generator numbers
	// transaction ids from 0, so a second produce run would repeat them).
	const total = 20000
	var workers []*proc
	for i := 1; i <= 3; i++ {
		workers = append(workers, st.start(t, "run", append([]string{"--worker-id", fmt.Sprintf("w%d", i),
			"--session-timeout", "2s", "--trigger", "500ms", "--max-batch-records", "1000"}, args...)...))
	}
	prod := st.start(t, "produce", append([]string{"--count", fmt.Sprint(total), "--rate", "2500", "--seed", "21"}, args...)...)
	// Midway, once the third worker has committed, kill it like a crash: its partitions
	// go to the others once its 2 s session times out.
	workers[2].waitForLine(&workers[2].stderr, "batch committed", 30*time.Second)
	if prod.exited() {
		t.Logf("the producer finished before worker 3 was killed")
	}
	workers[2].signal(syscall.SIGKILL)
	_ = workers[2].wait(10 * time.Second)
	prod.mustSucceed(time.Minute)

	// Wait until verify passes with every record in the ledger: nothing lost, nothing twice.
	deadline := time.Now().Add(2 * time.Minute)
	var v verifyOutput
	for {
		p := st.start(t, "verify", append([]string{"--json"}, args...)...)
		err := p.wait(time.Minute)
		v = verifyOutput{}
		_ = json.Unmarshal([]byte(p.stdout.String()), &v)
		rows := int64(-1)
		for _, c := range v.Checks {
			if c.Name == "rows_present" {
				rows = c.Figure
			}
		}
		if err == nil && rows == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify did not pass with %d rows within 2 minutes (exit %v, %d rows):\n%s\n%s", total, err, rows,
				tail(p.stdout.String(), 3000), tail(p.stderr.String(), 2000))
		}
		time.Sleep(2 * time.Second)
	}
	for _, w := range workers[:2] {
		w.signal(syscall.SIGTERM)
		w.mustSucceed(time.Minute)
	}
	committed := 0
	for _, w := range workers {
		if strings.Contains(w.stderr.String(), "batch committed") {
			committed++
		}
	}
	t.Logf("%d of 3 workers committed batches", committed)
	if committed < 2 {
		t.Errorf("only %d workers committed: the work was not shared", committed)
	}
	exactlyOnce := false
	for _, c := range v.Checks {
		if !c.Passed {
			t.Errorf("check %s failed: %s", c.Name, c.Detail)
		}
		if c.Name == "exactly_once" {
			exactlyOnce = true
		}
		if c.Name == "rows_present" && c.Figure != total {
			t.Errorf("rows_present %d, want %d", c.Figure, total)
		}
	}
	if !exactlyOnce {
		t.Errorf("no exactly_once check in %+v", v.Checks)
	}
	// Once all are stopped, verify again: nothing changed after the stop.
	st.run(t, "verify", args...)
}
