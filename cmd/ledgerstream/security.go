package main

// Flags for production infrastructure: Kafka TLS and SASL, the catalog's secrets and REST
// settings, and the S3 warehouse. Secrets (passwords, tokens, OAuth2 client credentials)
// are never flags: each comes from a file named by a flag or from an environment variable,
// so that it does not show up in `ps`, shell history, or a logged command line. S3 keys
// are not read here at all: the AWS SDK takes them from its own environment and credential
// chain.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
	"github.com/ledgerstream/ledgerstream/internal/secrets"
)

// Environment variables that carry secrets (there are no flags for them).
const (
	envKafkaPassword     = "LEDGERSTREAM_KAFKA_PASSWORD"
	envCatalogPassword   = "LEDGERSTREAM_CATALOG_PASSWORD"
	envCatalogToken      = "LEDGERSTREAM_CATALOG_TOKEN"
	envCatalogCredential = "LEDGERSTREAM_CATALOG_CREDENTIAL"
	envBrokerSASLPass    = "LEDGERSTREAM_SASL_PASSWORD"
)

// securityFlags are the shared flags of issue 5, and what resolve makes of them.
type securityFlags struct {
	kafkaTLS           bool
	kafkaCAFile        string
	kafkaCertFile      string
	kafkaKeyFile       string
	kafkaServerName    string
	kafkaInsecure      bool
	kafkaSASLMechanism string
	kafkaUsername      string
	kafkaPasswordFile  string

	catalogPasswordFile   string
	catalogTokenFile      string
	catalogCredentialFile string
	catalogOAuth2URI      string
	catalogScope          string
	catalogWarehouse      string
	catalogPrefix         string
	catalogCAFile         string
	catalogInsecure       bool

	s3Endpoint string
	s3Region   string

	// Set by resolve.
	kafkaTLSConfig *tls.Config
	kafkaSASL      sasl.Mechanism
	catalogPass    string
	rest           iceberg.RESTConfig
}

func addSecurityFlags(f *pflag.FlagSet, s *securityFlags) {
	f.BoolVar(&s.kafkaTLS, "kafka-tls", false, "connect to Kafka with TLS (implied by the other --kafka-*-file and TLS flags)")
	f.StringVar(&s.kafkaCAFile, "kafka-ca-file", "", "PEM file of CA certificates to verify the Kafka brokers with (default: the system's)")
	f.StringVar(&s.kafkaCertFile, "kafka-cert-file", "", "PEM client certificate for Kafka mutual TLS (with --kafka-key-file)")
	f.StringVar(&s.kafkaKeyFile, "kafka-key-file", "", "PEM private key of --kafka-cert-file")
	f.StringVar(&s.kafkaServerName, "kafka-tls-server-name", "", "name to verify the brokers' certificates against (default: the host dialled)")
	f.BoolVar(&s.kafkaInsecure, "kafka-insecure-skip-verify", false, "DANGEROUS: do not verify the brokers' TLS certificates")
	f.StringVar(&s.kafkaSASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	f.StringVar(&s.kafkaUsername, "kafka-username", "", "SASL username")
	f.StringVar(&s.kafkaPasswordFile, "kafka-password-file", "", "file holding the SASL password (else env "+envKafkaPassword+")")

	f.StringVar(&s.catalogPasswordFile, "catalog-password-file", "", "file holding the PostgreSQL catalog password (else env "+envCatalogPassword+", PGPASSWORD, ~/.pgpass)")
	f.StringVar(&s.catalogTokenFile, "catalog-token-file", "", "REST catalog: file holding a bearer token (else env "+envCatalogToken+")")
	f.StringVar(&s.catalogCredentialFile, "catalog-credential-file", "", "REST catalog: file holding an OAuth2 client credential client_id:client_secret (else env "+envCatalogCredential+")")
	f.StringVar(&s.catalogOAuth2URI, "catalog-oauth2-uri", "", "REST catalog: OAuth2 token endpoint (default <catalog>/v1/oauth/tokens)")
	f.StringVar(&s.catalogScope, "catalog-scope", "", "REST catalog: OAuth2 scope (default catalog)")
	f.StringVar(&s.catalogWarehouse, "catalog-warehouse", "", "REST catalog: warehouse name or location sent to /v1/config (default --warehouse)")
	f.StringVar(&s.catalogPrefix, "catalog-prefix", "", "REST catalog: path prefix after /v1/, if the server does not return one from /v1/config")
	f.StringVar(&s.catalogCAFile, "catalog-ca-file", "", "REST catalog: PEM file of CA certificates to verify the server with")
	f.BoolVar(&s.catalogInsecure, "catalog-insecure-skip-verify", false, "DANGEROUS: REST catalog: do not verify the server's TLS certificate")

	f.StringVar(&s.s3Endpoint, "s3-endpoint", "", "S3 endpoint of an s3:// warehouse, e.g. http://127.0.0.1:7070 (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS); path-style when set")
	f.StringVar(&s.s3Region, "s3-region", "", "S3 region (default AWS_REGION, the AWS profile, or us-east-1 with a custom endpoint)")
}

// resolve reads the secret files and variables and builds the TLS and SASL settings. It
// runs after logging is set up, so that its warnings go where the user asked.
func (s *securityFlags) resolve(catalogURI string) error {
	if err := s.resolveKafka(); err != nil {
		return err
	}
	return s.resolveCatalog(catalogURI)
}

func (s *securityFlags) resolveKafka() error {
	if s.kafkaCAFile != "" || s.kafkaCertFile != "" || s.kafkaKeyFile != "" || s.kafkaInsecure || s.kafkaServerName != "" {
		s.kafkaTLS = true
	}
	s.kafkaTLSConfig, s.kafkaSASL = nil, nil
	if s.kafkaTLS {
		cfg, err := secrets.ClientTLS("kafka", s.kafkaCAFile, s.kafkaCertFile, s.kafkaKeyFile, s.kafkaInsecure)
		if err != nil {
			return err
		}
		cfg.ServerName = s.kafkaServerName
		s.kafkaTLSConfig = cfg
	}
	if s.kafkaSASLMechanism == "" {
		if s.kafkaUsername != "" || s.kafkaPasswordFile != "" {
			return errors.New("--kafka-username/--kafka-password-file need --kafka-sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	}
	pass, err := secrets.RequirePassword("--kafka-sasl-mechanism "+s.kafkaSASLMechanism, "--kafka-password-file", s.kafkaPasswordFile, envKafkaPassword)
	if err != nil {
		return err
	}
	if s.kafkaUsername == "" {
		return fmt.Errorf("--kafka-sasl-mechanism %s: --kafka-username is required", s.kafkaSASLMechanism)
	}
	if !s.kafkaTLS {
		slog.Warn("Kafka SASL without TLS: credentials (PLAIN) or the session travel unencrypted; add --kafka-tls outside a trusted network",
			"mechanism", s.kafkaSASLMechanism)
	}
	s.kafkaSASL, err = kafka.NewSASL(s.kafkaSASLMechanism, s.kafkaUsername, pass)
	activeKafkaSASL = s.kafkaSASL
	return err
}

// activeKafkaSASL is the SASL mechanism the command runs with, for explainKafkaError.
var activeKafkaSASL sasl.Mechanism

// explainKafkaError adds an authentication hint to the command's final error when SASL
// is on and the error looks like a dropped authentication (see kafka.ExplainError).
func explainKafkaError(err error) error {
	return kafka.ExplainError(err, kafka.ClientConfig{SASL: activeKafkaSASL})
}

func (s *securityFlags) resolveCatalog(uri string) error {
	isREST := strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://")
	isPG := strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://")
	restOnly := map[string]bool{
		"--catalog-token-file": s.catalogTokenFile != "", "--catalog-credential-file": s.catalogCredentialFile != "",
		"--catalog-oauth2-uri": s.catalogOAuth2URI != "", "--catalog-scope": s.catalogScope != "",
		"--catalog-warehouse": s.catalogWarehouse != "", "--catalog-prefix": s.catalogPrefix != "",
		"--catalog-ca-file": s.catalogCAFile != "", "--catalog-insecure-skip-verify": s.catalogInsecure,
	}
	if !isREST {
		for name, set := range restOnly {
			if set {
				return fmt.Errorf("%s applies to a REST catalog (--catalog http(s)://…) only", name)
			}
		}
	}
	if s.catalogPasswordFile != "" && !isPG {
		return errors.New("--catalog-password-file applies to a PostgreSQL catalog (--catalog postgres://…) only")
	}
	s.catalogPass, s.rest = "", iceberg.RESTConfig{}
	var err error
	if isPG {
		if s.catalogPass, err = secrets.Read("catalog password", "--catalog-password-file", s.catalogPasswordFile, envCatalogPassword); err != nil {
			return err
		}
	}
	if !isREST {
		return nil
	}
	rc := iceberg.RESTConfig{OAuth2URI: s.catalogOAuth2URI, Scope: s.catalogScope, Warehouse: s.catalogWarehouse, Prefix: s.catalogPrefix}
	if rc.Token, err = secrets.Read("catalog token", "--catalog-token-file", s.catalogTokenFile, envCatalogToken); err != nil {
		return err
	}
	if rc.Credential, err = secrets.Read("catalog credential", "--catalog-credential-file", s.catalogCredentialFile, envCatalogCredential); err != nil {
		return err
	}
	if rc.Token != "" && rc.Credential != "" {
		return errors.New("REST catalog: both a bearer token and an OAuth2 client credential are set: choose one")
	}
	if s.catalogCAFile != "" || s.catalogInsecure {
		if rc.TLS, err = secrets.ClientTLS("catalog", s.catalogCAFile, "", "", s.catalogInsecure); err != nil {
			return err
		}
	}
	if strings.HasPrefix(uri, "http://") && (rc.Token != "" || rc.Credential != "") {
		slog.Warn("REST catalog over plain http: the token or client credential travels unencrypted", "catalog", iceberg.Redact(uri))
	}
	s.rest = rc
	return nil
}

// brokerSecurity is the embedded broker's TLS and SASL (broker --tls-cert-file …).
type brokerSecurity struct {
	certFile, keyFile, clientCAFile string
	saslUser, saslMechanisms        string
	saslPasswordFile                string
}

func addBrokerSecurityFlags(f *pflag.FlagSet, b *brokerSecurity) {
	f.StringVar(&b.certFile, "tls-cert-file", "", "serve TLS with this PEM certificate (with --tls-key-file)")
	f.StringVar(&b.keyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	f.StringVar(&b.clientCAFile, "tls-client-ca-file", "", "require client certificates signed by a CA in this PEM file (mutual TLS)")
	f.StringVar(&b.saslUser, "sasl-user", "", "require SASL authentication as this user (password from env "+envBrokerSASLPass+" or --sasl-password-file)")
	f.StringVar(&b.saslMechanisms, "sasl-mechanism", kafka.SASLScramSHA512, "SASL mechanisms the user may use, comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
	f.StringVar(&b.saslPasswordFile, "sasl-password-file", "", "file holding the --sasl-user's password")
}

// apply sets cfg's TLS and Users from the flags.
func (b *brokerSecurity) apply(cfg *kafka.BrokerConfig) error {
	if (b.certFile == "") != (b.keyFile == "") {
		return errors.New("broker: --tls-cert-file and --tls-key-file go together")
	}
	if b.clientCAFile != "" && b.certFile == "" {
		return errors.New("broker: --tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if b.certFile != "" {
		cert, err := tls.LoadX509KeyPair(b.certFile, b.keyFile)
		if err != nil {
			return fmt.Errorf("broker: TLS certificate %s: %w", b.certFile, err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if b.clientCAFile != "" {
			pool, err := secrets.CertPool("broker client", b.clientCAFile)
			if err != nil {
				return err
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		cfg.TLS = tc
	}
	if b.saslUser == "" {
		if b.saslPasswordFile != "" {
			return errors.New("broker: --sasl-password-file needs --sasl-user")
		}
		return nil
	}
	pass, err := secrets.RequirePassword("broker: --sasl-user "+b.saslUser, "--sasl-password-file", b.saslPasswordFile, envBrokerSASLPass)
	if err != nil {
		return err
	}
	for _, m := range strings.Split(b.saslMechanisms, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		cfg.Users = append(cfg.Users, kafka.BrokerUser{Mechanism: m, Name: b.saslUser, Password: pass})
	}
	if len(cfg.Users) == 0 {
		return errors.New("broker: --sasl-mechanism is empty")
	}
	return nil
}
