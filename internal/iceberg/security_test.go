package iceberg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each catalog setting applies to the catalog kind it is for, and a REST catalog takes one
// way to authenticate.
func TestCatalogSecurityApply(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCatalogCredential, "")
	for _, c := range []struct {
		uri  string
		s    CatalogSecurity
		want string
	}{
		{"sqlite:/x/catalog.db", CatalogSecurity{TokenFile: tok}, "--catalog-token-file applies to a REST catalog (--catalog http(s)://…) only"},
		{"postgres://u@h/db", CatalogSecurity{Scope: "s"}, "--catalog-scope applies to a REST catalog"},
		{"https://cat", CatalogSecurity{PasswordFile: tok}, "--catalog-password-file applies to a PostgreSQL catalog (--catalog postgres://…) only"},
		{"https://cat", CatalogSecurity{TokenFile: tok, CredentialFile: tok}, "both a bearer token and an OAuth2 client credential are set: choose one"},
		{"https://cat", CatalogSecurity{TokenFile: tok, Prefix: "p"}, ""},
		{"postgres://u@h/db", CatalogSecurity{PasswordFile: tok}, ""},
	} {
		cfg := Config{CatalogURI: c.uri}
		err := c.s.Apply(&cfg)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s %+v: %v", c.uri, c.s, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: err = %v, want %q", c.uri, c.s, err, c.want)
		}
	}
	cfg := Config{CatalogURI: "https://cat"}
	if err := (CatalogSecurity{TokenFile: tok, Prefix: "p"}).Apply(&cfg); err != nil || cfg.REST.Token != "t0ken" || cfg.REST.Prefix != "p" || cfg.Password != "" {
		t.Errorf("REST: %v, %+v", err, cfg.REST)
	}
	cfg = Config{CatalogURI: "postgres://u@h/db"}
	if err := (CatalogSecurity{PasswordFile: tok}).Apply(&cfg); err != nil || cfg.Password != "t0ken" || cfg.REST.Token != "" {
		t.Errorf("PostgreSQL: %v, password set = %v", err, cfg.Password != "")
	}
}
