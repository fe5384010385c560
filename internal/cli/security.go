package cli

// Flags for production infrastructure: Kafka TLS and SASL, the catalog's secrets and REST
// settings, and the S3 warehouse. Secrets (passwords, tokens, OAuth2 client credentials)
// are never flags: each comes from a file named by a flag or from an environment variable,
// so that it does not show up in `ps`, shell history, or a logged command line. S3 keys
// are not read here at all: the AWS SDK takes them from its own environment and credential
// chain. What the settings mean is kafka.Security and iceberg.CatalogSecurity.

import (
	"github.com/spf13/pflag"

	"github.com/ledgerstream/ledgerstream/internal/iceberg"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

// Security are the security flags every command shares.
type Security struct {
	Kafka                kafka.Security
	Catalog              iceberg.CatalogSecurity
	S3Endpoint, S3Region string
}

// AddFlags registers s's flags on f.
func (s *Security) AddFlags(f *pflag.FlagSet) {
	k, c := &s.Kafka, &s.Catalog
	f.BoolVar(&k.TLS, "kafka-tls", false, "connect to Kafka with TLS (implied by the other --kafka-*-file and TLS flags)")
	f.StringVar(&k.CAFile, "kafka-ca-file", "", "PEM file of CA certificates to verify the Kafka brokers with (default: the system's)")
	f.StringVar(&k.CertFile, "kafka-cert-file", "", "PEM client certificate for Kafka mutual TLS (with --kafka-key-file)")
	f.StringVar(&k.KeyFile, "kafka-key-file", "", "PEM private key of --kafka-cert-file")
	f.StringVar(&k.ServerName, "kafka-tls-server-name", "", "name to verify the brokers' certificates against (default: the host dialled)")
	f.BoolVar(&k.InsecureSkipVerify, "kafka-insecure-skip-verify", false, "DANGEROUS: do not verify the brokers' TLS certificates")
	f.StringVar(&k.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	f.StringVar(&k.Username, "kafka-username", "", "SASL username")
	f.StringVar(&k.PasswordFile, "kafka-password-file", "", "file holding the SASL password (else env "+kafka.EnvPassword+")")

	f.StringVar(&c.PasswordFile, "catalog-password-file", "", "file holding the PostgreSQL catalog password (else env "+iceberg.EnvCatalogPassword+", PGPASSWORD, ~/.pgpass)")
	f.StringVar(&c.TokenFile, "catalog-token-file", "", "REST catalog: file holding a bearer token (else env "+iceberg.EnvCatalogToken+")")
	f.StringVar(&c.CredentialFile, "catalog-credential-file", "", "REST catalog: file holding an OAuth2 client credential client_id:client_secret (else env "+iceberg.EnvCatalogCredential+")")
	f.StringVar(&c.OAuth2URI, "catalog-oauth2-uri", "", "REST catalog: OAuth2 token endpoint (default <catalog>/v1/oauth/tokens)")
	f.StringVar(&c.Scope, "catalog-scope", "", "REST catalog: OAuth2 scope (default catalog)")
	f.StringVar(&c.Warehouse, "catalog-warehouse", "", "REST catalog: warehouse name or location sent to /v1/config (default --warehouse)")
	f.StringVar(&c.Prefix, "catalog-prefix", "", "REST catalog: path prefix after /v1/, if the server does not return one from /v1/config")
	f.StringVar(&c.CAFile, "catalog-ca-file", "", "REST catalog: PEM file of CA certificates to verify the server with")
	f.BoolVar(&c.InsecureSkipVerify, "catalog-insecure-skip-verify", false, "DANGEROUS: REST catalog: do not verify the server's TLS certificate")

	f.StringVar(&s.S3Endpoint, "s3-endpoint", "", "S3 endpoint of an s3:// warehouse, e.g. http://127.0.0.1:7070 (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS); path-style when set")
	f.StringVar(&s.S3Region, "s3-region", "", "S3 region (default AWS_REGION, the AWS profile, or us-east-1 with a custom endpoint)")
}

// AddBrokerSecurityFlags registers the embedded broker's TLS and SASL flags on f.
func AddBrokerSecurityFlags(f *pflag.FlagSet, b *kafka.BrokerSecurity) {
	f.StringVar(&b.CertFile, "tls-cert-file", "", "serve TLS with this PEM certificate (with --tls-key-file)")
	f.StringVar(&b.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	f.StringVar(&b.ClientCAFile, "tls-client-ca-file", "", "require client certificates signed by a CA in this PEM file (mutual TLS)")
	f.StringVar(&b.SASLUser, "sasl-user", "", "require SASL authentication as this user (password from env "+kafka.EnvBrokerPassword+" or --sasl-password-file)")
	f.StringVar(&b.SASLMechanisms, "sasl-mechanism", kafka.SASLScramSHA512, "SASL mechanisms the user may use, comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
	f.StringVar(&b.SASLPasswordFile, "sasl-password-file", "", "file holding the --sasl-user's password")
}
