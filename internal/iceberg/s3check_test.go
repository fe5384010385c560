package iceberg

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolateAWS clears every AWS setting the SDK reads, so that the test sees no region and no
// credentials whatever the machine has, and instance metadata answers nowhere (a closed
// loopback port) instead of being waited for.
func isolateAWS(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	empty := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
}

// captureStderr returns what fn wrote to the process's stderr.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	fn()
	os.Stderr = saved
	w.Close()
	return <-done
}

// An S3 warehouse without a region, or without credentials, and a warehouse scheme with
// no FileIO are refused at Open with what to set, and nothing raw on stderr.
func TestWarehouseMisconfigurationSaysWhatToSet(t *testing.T) {
	isolateAWS(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no region", Config{DataDir: dir, Warehouse: "s3://lake/ledger"},
			"no AWS region: set --s3-region (or AWS_REGION"},
		{"no credentials", Config{DataDir: dir, Warehouse: "s3://lake/ledger", S3: S3Config{Endpoint: "http://127.0.0.1:1"}},
			"no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"},
		{"gs", Config{DataDir: dir, Warehouse: "gs://lake/ledger"},
			"gs:// is not supported; use a local path, file://…, or s3://bucket/prefix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			stderr := captureStderr(t, func() {
				var cat *Catalog
				cat, err = Open(context.Background(), c.cfg)
				if err == nil {
					cat.Close()
				}
			})
			if !errors.Is(err, ErrWarehouseConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hint: import") || strings.Contains(err.Error(), "DNS name") {
				t.Errorf("a library's message reaches the user: %v", err)
			}
			if stderr != "" {
				t.Errorf("raw lines on stderr: %q", stderr)
			}
		})
	}
}
