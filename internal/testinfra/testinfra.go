// Package testinfra starts and finds the real servers that ledgerstream's integration
// tests run against: versitygw (an S3-compatible gateway, started on a free loopback port
// over a temporary directory), the local PostgreSQL, and a throwaway TLS PKI. Tests skip,
// with a message that says how to get the server, where one is missing.
//
// Only tests import this package.
package testinfra

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to probe the server

	"github.com/ledgerstream/ledgerstream/internal/subprocess"
)

// VersityGWInstall is the command that installs the S3 gateway the tests use (.ci/run runs it).
const VersityGWInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// FindVersityGW returns the versitygw binary on PATH or in $(go env GOPATH)/bin.
func FindVersityGW() (string, bool) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, true
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.SplitList(gp)...)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

// S3 is a running versitygw.
type S3 struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// Dir is the posix backend's root: each folder in it is a bucket, each object a file.
	Dir string
	// AccessKey and SecretKey are the root account's, the keys clients sign with.
	AccessKey, SecretKey string
	// Log is versitygw's own output.
	Log string

	bin, addr string
	health    string // this server's own health path: another server on a reused port does not answer it
	mu        sync.Mutex
	stop      func() // kills the running server; nil when none runs
}

// StartS3 starts versitygw with the given root keys and buckets, stops it when the test
// ends, and skips the test when the binary is not installed.
func StartS3(t testing.TB, accessKey, secretKey string, buckets ...string) *S3 {
	t.Helper()
	bin, ok := FindVersityGW()
	if !ok {
		t.Skipf("versitygw (an S3-compatible server) not installed; install it with `%s` (.ci/run does)", VersityGWInstall)
	}
	dir := t.TempDir()
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(dir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &S3{Dir: dir, AccessKey: accessKey, SecretKey: secretKey, Log: filepath.Join(t.TempDir(), "versitygw.log"), bin: bin,
		health: "/health-" + rand.Text()}
	t.Cleanup(s.Kill)
	if err := s.startOnFreePort(t); err != nil {
		t.Fatal(err)
	}
	return s
}

// startOnFreePort runs versitygw on a free port, trying up to three (a port found free may
// be taken before the server listens on it).
func (s *S3) startOnFreePort(t testing.TB) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			t.Logf("%v (retrying on another port)", err)
		}
		s.addr = freeAddr(t)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return nil
		}
	}
	return err
}

// start runs versitygw on s.addr and waits for it to answer.
func (s *S3) start() error {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "--health", s.health, "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start versitygw: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	stop := func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}
	if !waitHTTP(s.Endpoint+s.health, done, 20*time.Second) {
		stop()
		out, _ := os.ReadFile(s.Log)
		return fmt.Errorf("versitygw did not come up on %s:\n%s", s.addr, out)
	}
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
	return nil
}

// Kill kills the server (SIGKILL), as a crash would; its objects stay in Dir.
func (s *S3) Kill() {
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Restart starts the server again over the same directory after Kill: on the same
// address when it is free again, else (another process took the port while the server was
// down) on a new one. Endpoint then changes: point the clients at it (FaultProxy.SetTarget).
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 8; attempt++ { // the port may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("versitygw could not listen on %s again (%v); restarting it on another port", s.addr, err)
	if err := s.startOnFreePort(t); err != nil {
		t.Fatalf("restart versitygw: %v", err)
	}
}

// waitHTTP waits for url to answer 200 OK. Only 200 counts: on a port reused by another
// server, a path that server does not know answers 404.
func waitHTTP(url string, exited <-chan struct{}, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if rsp, err := cl.Get(url); err == nil {
			rsp.Body.Close()
			if rsp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

var awsEnvOnce sync.Once

// SetAWSEnv points the AWS SDK's default credential chain, in this process and in every
// child it starts, at keys only: no shared config files, no instance metadata. It sets
// the process environment (not t.Setenv) so that parallel tests can use it; call it with
// the same keys everywhere in a test binary (the first call wins).
func SetAWSEnv(accessKey, secretKey string) {
	awsEnvOnce.Do(func() {
		for k, v := range map[string]string{
			"AWS_ACCESS_KEY_ID":           accessKey,
			"AWS_SECRET_ACCESS_KEY":       secretKey,
			"AWS_REGION":                  "us-east-1",
			"AWS_EC2_METADATA_DISABLED":   "true",
			"AWS_CONFIG_FILE":             filepath.Join(os.TempDir(), "ledgerstream-no-aws-config"),
			"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(os.TempDir(), "ledgerstream-no-aws-credentials"),
		} {
			os.Setenv(k, v)
		}
		for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT"} {
			os.Unsetenv(k)
		}
	})
}

// PostgresURI is the test database: LEDGERSTREAM_TEST_POSTGRES, or the local server with
// trust authentication that this project's machines run.
func PostgresURI() string {
	if u := os.Getenv("LEDGERSTREAM_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PostgresReachable returns PostgresURI and whether that server answers.
func PostgresReachable() (string, error) {
	uri := PostgresURI()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", uri)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	return uri, err
}

// RequirePostgres returns PostgresURI, or skips the test when that server is not reachable.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	uri, err := PostgresReachable()
	if err != nil {
		t.Skipf("PostgreSQL not reachable (set LEDGERSTREAM_TEST_POSTGRES to a server; .ci/run starts the local one): %v", err)
	}
	return uri
}

// PKI is a throwaway certificate authority with a server certificate for 127.0.0.1 and
// localhost and a client certificate, as PEM files in a temporary directory.
type PKI struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string
	ClientCertFile, ClientKeyFile string
	// OtherCAFile is a second, unrelated CA: verifying against it must fail.
	OtherCAFile string
}

// NewPKI writes a fresh PKI into a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := newCA(t, "ledgerstream test CA")
	_, _, otherDER := newCA(t, "unrelated CA")
	p := &PKI{
		CAFile:         filepath.Join(dir, "ca.pem"),
		OtherCAFile:    filepath.Join(dir, "other-ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)
	writePEM(t, p.OtherCAFile, "CERTIFICATE", otherDER)
	leaf := func(cn string, server bool, certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", kder)
	}
	leaf("127.0.0.1", true, p.ServerCertFile, p.ServerKeyFile)
	leaf("ledgerstream-client", false, p.ClientCertFile, p.ClientKeyFile)
	return p
}

func newCA(t testing.TB, cn string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteSecret writes a secret to a 0600 file in a temporary directory and returns its path.
func WriteSecret(t testing.TB, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := subprocess.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
