package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/ledgerstream/ledgerstream/internal/engine"
	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

func serverTLS(t *testing.T, pki *testinfra.PKI, mutual bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}}
	if mutual {
		c.ClientCAs, c.ClientAuth = certPool(t, pki.CAFile), tls.RequireAndVerifyClientCert
	}
	return c
}

func certPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in", file)
	}
	return p
}

func clientTLS(t *testing.T, pki *testinfra.PKI, caFile string, withCert bool) *tls.Config {
	t.Helper()
	c := &tls.Config{RootCAs: certPool(t, caFile)}
	if withCert {
		cert, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// TestBrokerTLSAndSASL: the embedded broker with mutual TLS and SASL users under every
// mechanism; clients with the right settings produce and read back, and each wrong
// setting fails with an error that says what is wrong.
func TestBrokerTLSAndSASL(t *testing.T) {
	pki := testinfra.NewPKI(t)
	const user, pass = "ledger", "kafka-pw-Xy7#q"
	var users []BrokerUser
	for _, m := range SASLMechanisms {
		users = append(users, BrokerUser{Mechanism: m, Name: user, Password: pass})
	}
	dataDir := t.TempDir()
	b := startTestBroker(t, BrokerConfig{Topics: []string{"tx"}, DataDir: dataDir, TLS: serverTLS(t, pki, true), Users: users})

	good := func(mech string) ClientConfig {
		m, err := NewSASL(mech, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		cc := clientCfg(t, b)
		cc.TLS, cc.SASL = clientTLS(t, pki, pki.CAFile, true), m
		return cc
	}
	for i, mech := range SASLMechanisms {
		produce(t, good(mech), "tx", fmt.Sprintf("m%d-", i), 50)
	}
	var n int
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ReadTopic(ctx, good(SASLScramSHA512), "tx", func(r engine.Record) error {
		if !r.Control {
			n++
		}
		return nil
	}); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if n != 150 {
		t.Fatalf("read %d records, want 150", n)
	}

	fails := func(name string, cc ClientConfig, want func(error) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := ReadTopic(ctx, cc, "tx", func(engine.Record) error { return nil })
		if err == nil {
			t.Errorf("%s: succeeded", name)
			return
		}
		t.Logf("%s: %v", name, err)
		if !want(err) {
			t.Errorf("%s: unclear error: %v", name, err)
		}
		if strings.Contains(err.Error(), pass) {
			t.Errorf("%s: the error shows the password", name)
		}
	}
	wrong := good(SASLScramSHA512)
	wrong.SASL, _ = NewSASL(SASLScramSHA512, user, "not-the-password")
	// kfake drops the connection on a failed SCRAM exchange (a real broker answers
	// SASL_AUTHENTICATION_FAILED): ExplainError turns that into a clear message.
	fails("wrong password", wrong, func(err error) bool {
		err = ExplainError(err, wrong)
		t.Logf("explained: %v", err)
		return errors.Is(err, kerr.SaslAuthenticationFailed) || strings.Contains(err.Error(), "SASL authentication")
	})
	noSASL := good(SASLPlain)
	noSASL.SASL = nil
	fails("no SASL", noSASL, func(error) bool { return true })
	otherCA := good(SASLPlain)
	otherCA.TLS = clientTLS(t, pki, pki.OtherCAFile, true)
	fails("unknown CA", otherCA, func(err error) bool { return strings.Contains(err.Error(), "certificate") })
	noCert := good(SASLPlain)
	noCert.TLS = clientTLS(t, pki, pki.CAFile, false)
	fails("no client certificate", noCert, func(error) bool { return true })

	// kfake saves users (PLAIN passwords in clear) at a clean stop; the broker removes them.
	b.Close()
	if _, err := os.Stat(filepath.Join(dataDir, saslStateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left in the data dir after Close (%v)", saslStateFile, err)
	}
}

// TestKcatTLS: librdkafka (kcat) produces through mutual TLS and our client reads it back.
// kcat is not tested with SASL: kfake advertises SaslHandshake v1 only (as Kafka 4.x
// does), and this machine's librdkafka 2.0.2 then refuses to start SASL ("SASL Handshake
// not supported by broker"); franz-go's SASL is tested above.
func TestKcatTLS(t *testing.T) {
	kcat := kcatPath(t)
	pki := testinfra.NewPKI(t)
	b := startTestBroker(t, BrokerConfig{Topics: []string{"kc"}, TLS: serverTLS(t, pki, true)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsArgs := []string{"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + pki.CAFile,
		"-X", "ssl.certificate.location=" + pki.ClientCertFile, "-X", "ssl.key.location=" + pki.ClientKeyFile}
	cmd := exec.CommandContext(ctx, kcat, append([]string{"-P", "-b", b.Addr(), "-t", "kc", "-K", ":"}, tlsArgs...)...)
	cmd.Stdin = strings.NewReader("a:1\nb:2\nc:3\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P over TLS: %v\n%s", err, out)
	}
	cc := clientCfg(t, b)
	cc.TLS = clientTLS(t, pki, pki.CAFile, true)
	var n int
	if _, err := ReadTopic(ctx, cc, "kc", func(r engine.Record) error {
		if !r.Control {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("read %d records from kcat, want 3", n)
	}
	// kcat without a client certificate is refused.
	cmd = exec.CommandContext(ctx, kcat, "-L", "-b", b.Addr(), "-m", "5", "-X", "security.protocol=SSL", "-X", "ssl.ca.location="+pki.CAFile)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("kcat -L without a client certificate succeeded:\n%s", out)
	}
}

func TestNewSASL(t *testing.T) {
	for _, m := range []string{"plain", "scram-sha-256", "SCRAM_SHA_512"} {
		if _, err := NewSASL(m, "u", "p"); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	if _, err := NewSASL("GSSAPI", "u", "p"); err == nil {
		t.Error("GSSAPI accepted")
	}
	if _, err := NewSASL("PLAIN", "u", ""); err == nil {
		t.Error("empty password accepted")
	}
}
