package iceberg

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ledgerstream/ledgerstream/internal/secrets"
)

// Environment variables that carry the catalog's secrets (there are no flags for them).
const (
	EnvCatalogPassword   = "LEDGERSTREAM_CATALOG_PASSWORD"   // PostgreSQL catalog password
	EnvCatalogToken      = "LEDGERSTREAM_CATALOG_TOKEN"      // REST catalog bearer token
	EnvCatalogCredential = "LEDGERSTREAM_CATALOG_CREDENTIAL" // REST catalog OAuth2 client credential
)

// CatalogSecurity is the catalog's secrets and REST settings as the operator states them
// (the --catalog-* flags): files and names, never a secret's value. Errors name the flags.
type CatalogSecurity struct {
	PasswordFile       string // PostgreSQL; else EnvCatalogPassword, PGPASSWORD, ~/.pgpass
	TokenFile          string // REST; else EnvCatalogToken
	CredentialFile     string // REST; else EnvCatalogCredential
	OAuth2URI, Scope   string // REST
	Warehouse, Prefix  string // REST
	CAFile             string // REST
	InsecureSkipVerify bool   // REST
}

// Apply checks that the settings fit the catalog cfg.CatalogURI names, reads the files and
// variables they name, and sets cfg's Password and REST from them.
func (s CatalogSecurity) Apply(cfg *Config) error {
	uri := cfg.CatalogURI
	isREST := strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://")
	isPG := strings.HasPrefix(uri, "postgres://") || strings.HasPrefix(uri, "postgresql://")
	restOnly := map[string]bool{
		"--catalog-token-file": s.TokenFile != "", "--catalog-credential-file": s.CredentialFile != "",
		"--catalog-oauth2-uri": s.OAuth2URI != "", "--catalog-scope": s.Scope != "",
		"--catalog-warehouse": s.Warehouse != "", "--catalog-prefix": s.Prefix != "",
		"--catalog-ca-file": s.CAFile != "", "--catalog-insecure-skip-verify": s.InsecureSkipVerify,
	}
	if !isREST {
		for name, set := range restOnly {
			if set {
				return fmt.Errorf("%s applies to a REST catalog (--catalog http(s)://…) only", name)
			}
		}
	}
	if s.PasswordFile != "" && !isPG {
		return errors.New("--catalog-password-file applies to a PostgreSQL catalog (--catalog postgres://…) only")
	}
	cfg.Password, cfg.REST = "", RESTConfig{}
	var err error
	if isPG {
		if cfg.Password, err = secrets.Read("catalog password", "--catalog-password-file", s.PasswordFile, EnvCatalogPassword); err != nil {
			return err
		}
	}
	if !isREST {
		return nil
	}
	rc := RESTConfig{OAuth2URI: s.OAuth2URI, Scope: s.Scope, Warehouse: s.Warehouse, Prefix: s.Prefix}
	if rc.Token, err = secrets.Read("catalog token", "--catalog-token-file", s.TokenFile, EnvCatalogToken); err != nil {
		return err
	}
	if rc.Credential, err = secrets.Read("catalog credential", "--catalog-credential-file", s.CredentialFile, EnvCatalogCredential); err != nil {
		return err
	}
	if rc.Token != "" && rc.Credential != "" {
		return errors.New("REST catalog: both a bearer token and an OAuth2 client credential are set: choose one")
	}
	if s.CAFile != "" || s.InsecureSkipVerify {
		if rc.TLS, err = secrets.ClientTLS("catalog", s.CAFile, "", "", s.InsecureSkipVerify); err != nil {
			return err
		}
	}
	if strings.HasPrefix(uri, "http://") && (rc.Token != "" || rc.Credential != "") {
		slog.Warn("REST catalog over plain http: the token or client credential travels unencrypted", "catalog", Redact(uri))
	}
	cfg.REST = rc
	return nil
}
