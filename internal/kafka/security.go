package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ledgerstream/ledgerstream/internal/secrets"
)

// Environment variables that carry Kafka passwords (there are no flags for them).
const (
	// EnvPassword is the client's SASL password, when --kafka-password-file is not given.
	EnvPassword = "LEDGERSTREAM_KAFKA_PASSWORD"
	// EnvBrokerPassword is the embedded broker's --sasl-user password.
	EnvBrokerPassword = "LEDGERSTREAM_SASL_PASSWORD"
)

// Security is a client's TLS and SASL as the operator states them (the --kafka-* flags):
// files and names, never a secret's value. Errors name the flags.
type Security struct {
	TLS                bool   // --kafka-tls; implied by every other TLS setting
	CAFile             string // PEM CA certificates (default: the system's)
	CertFile, KeyFile  string // client certificate for mutual TLS
	ServerName         string // name to verify the brokers' certificates against
	InsecureSkipVerify bool
	SASLMechanism      string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "" for no SASL
	Username           string
	PasswordFile       string // else EnvPassword
}

// Apply reads the files and variables s names and sets c's TLS and SASL from them.
func (s Security) Apply(c *ClientConfig) error {
	tlsOn := s.TLS || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.InsecureSkipVerify || s.ServerName != ""
	c.TLS, c.SASL = nil, nil
	if tlsOn {
		cfg, err := secrets.ClientTLS("kafka", s.CAFile, s.CertFile, s.KeyFile, s.InsecureSkipVerify)
		if err != nil {
			return err
		}
		cfg.ServerName = s.ServerName
		c.TLS = cfg
	}
	if s.SASLMechanism == "" {
		if s.Username != "" || s.PasswordFile != "" {
			return errors.New("--kafka-username/--kafka-password-file need --kafka-sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	}
	pass, err := secrets.RequirePassword("--kafka-sasl-mechanism "+s.SASLMechanism, "--kafka-password-file", s.PasswordFile, EnvPassword)
	if err != nil {
		return err
	}
	if s.Username == "" {
		return fmt.Errorf("--kafka-sasl-mechanism %s: --kafka-username is required", s.SASLMechanism)
	}
	if !tlsOn {
		slog.Warn("Kafka SASL without TLS: credentials (PLAIN) or the session travel unencrypted; add --kafka-tls outside a trusted network",
			"mechanism", s.SASLMechanism)
	}
	c.SASL, err = NewSASL(s.SASLMechanism, s.Username, pass)
	return err
}

// BrokerSecurity is the embedded broker's TLS and SASL as the operator states them (broker
// --tls-cert-file …). Errors name the flags.
type BrokerSecurity struct {
	CertFile, KeyFile string // serve TLS with this certificate
	ClientCAFile      string // require client certificates signed by these CAs
	SASLUser          string // require SASL as this user
	SASLMechanisms    string // comma-separated
	SASLPasswordFile  string // else EnvBrokerPassword
}

// Apply sets cfg's TLS and Users from b.
func (b BrokerSecurity) Apply(cfg *BrokerConfig) error {
	if (b.CertFile == "") != (b.KeyFile == "") {
		return errors.New("broker: --tls-cert-file and --tls-key-file go together")
	}
	if b.ClientCAFile != "" && b.CertFile == "" {
		return errors.New("broker: --tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if b.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.CertFile, b.KeyFile)
		if err != nil {
			return fmt.Errorf("broker: TLS certificate %s: %w", b.CertFile, err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if b.ClientCAFile != "" {
			pool, err := secrets.CertPool("broker client", b.ClientCAFile)
			if err != nil {
				return err
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		cfg.TLS = tc
	}
	if b.SASLUser == "" {
		if b.SASLPasswordFile != "" {
			return errors.New("broker: --sasl-password-file needs --sasl-user")
		}
		return nil
	}
	pass, err := secrets.RequirePassword("broker: --sasl-user "+b.SASLUser, "--sasl-password-file", b.SASLPasswordFile, EnvBrokerPassword)
	if err != nil {
		return err
	}
	for _, m := range strings.Split(b.SASLMechanisms, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		cfg.Users = append(cfg.Users, BrokerUser{Mechanism: m, Name: b.SASLUser, Password: pass})
	}
	if len(cfg.Users) == 0 {
		return errors.New("broker: --sasl-mechanism is empty")
	}
	return nil
}
