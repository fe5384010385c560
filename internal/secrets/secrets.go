// Package secrets reads what the security settings name: secrets (passwords, tokens,
// OAuth2 client credentials) from files or environment variables, never from flags, so
// that they show up in no `ps`, shell history or logged command line; and TLS material
// from PEM files. Errors name the flag, the file or the variable, never a value.
package secrets

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Read returns the content of file (trailing newlines trimmed) when file is set, else the
// first non-empty environment variable of envs, else "". what names the secret and flag
// the flag that named file, in errors and warnings. A file readable by group or others is
// warned about.
func Read(what, flag, file string, envs ...string) (string, error) {
	if file != "" {
		st, err := os.Stat(file)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", flag, what, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			slog.Warn("secret file is readable by group or others; chmod 600 it", "flag", flag, "file", file, "mode", st.Mode().Perm().String())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", flag, what, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s %s: file %s is empty", flag, what, file)
		}
		return v, nil
	}
	for _, env := range envs {
		if v := os.Getenv(env); v != "" {
			return v, nil
		}
	}
	return "", nil
}

// RequirePassword is Read of a password that must be there: what's password, from file
// (named by flag) or env.
func RequirePassword(what, flag, file, env string) (string, error) {
	v, err := Read(what+" password", flag, file, env)
	if err == nil && v == "" {
		err = fmt.Errorf("%s: no password: set %s or %s", what, env, flag)
	}
	return v, err
}

// CertPool reads a PEM bundle of CA certificates; what names it in errors.
func CertPool(what, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s CA file: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s CA file %s: no PEM certificate in it", what, file)
	}
	return pool, nil
}

// ClientTLS builds a client TLS configuration for the connection what (kafka, catalog: its
// flags are --WHAT-cert-file and so on): a CA bundle (else the system roots), an optional
// client certificate, and, loudly warned, no verification at all.
func ClientTLS(what, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := CertPool(what, caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%s client certificate: --%s-cert-file and --%s-key-file go together", what, what, what)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			// The error may quote neither file's content; tls's messages do not.
			return nil, fmt.Errorf("%s client certificate %s: %w", what, certFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if insecure {
		cfg.InsecureSkipVerify = true
		slog.Warn("!!! TLS CERTIFICATE VERIFICATION IS OFF: anyone on the network path can impersonate the server and read the credentials; use a CA file instead !!!",
			"connection", what, "flag", "--"+what+"-insecure-skip-verify")
	}
	return cfg, nil
}
