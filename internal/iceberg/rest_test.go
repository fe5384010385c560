package iceberg

// A stand-in Iceberg REST catalog server, written from the REST OpenAPI spec
// (open-api/rest-catalog-open-api.yaml in apache/iceberg) for the endpoints ledgerstream
// uses: GET /v1/config, POST /v1/oauth/tokens (client credentials), namespaces (load,
// exists, create), tables (create, load, exists, commit with requirements, drop), with the
// spec's error model ({"error": {"message", "type", "code"}}) and its status codes (401
// without a valid bearer token, 404 NoSuchNamespace/NoSuchTable, 409 CommitFailedException
// when a requirement such as assert-ref-snapshot-id fails). State is in memory; metadata
// files are written into a local warehouse directory, as a real server writes them to its
// storage. No real REST catalog (Nessie, Polaris, Lakekeeper) installs on this machine, so
// this is what the REST path is tested against.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/ledgerstream/ledgerstream/internal/testinfra"
)

type restTable struct {
	meta    table.Metadata
	loc     string // metadata file location
	version int
}

type restServer struct {
	t         testing.TB
	dir       string // the warehouse: <dir>/<ns>/<table>/{metadata,data}
	prefix    string // returned by /v1/config as an override, as Polaris and Lakekeeper do
	token     string // a static bearer token the server accepts ("" = none)
	clientID  string // OAuth2 client credentials the token endpoint accepts ("" = none)
	secret    string
	requireWH string // the ?warehouse= /v1/config must receive ("" = any)

	mu         sync.Mutex
	issued     map[string]bool
	namespaces map[string]ice.Properties
	tables     map[string]*restTable
	authHeads  []string // Authorization headers of catalog (non-token) requests
	tokenForms []string // form bodies posted to the token endpoint, secrets masked
	warehouse  string   // the warehouse parameter /v1/config got
	paths      []string
}

func newRESTServer(t testing.TB) *restServer {
	return &restServer{t: t, dir: t.TempDir(), issued: map[string]bool{},
		namespaces: map[string]ice.Properties{}, tables: map[string]*restTable{}}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// restError writes the spec's ErrorModel.
func restError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *restServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if path == r.URL.Path {
		restError(w, 404, "NotFoundException", "no route "+r.URL.Path)
		return
	}
	if path == "oauth/tokens" && r.Method == http.MethodPost {
		s.oauthToken(w, r)
		return
	}
	// Every other endpoint needs a valid bearer token when the server has any auth.
	auth := r.Header.Get("Authorization")
	s.authHeads = append(s.authHeads, auth)
	if s.token != "" || s.clientID != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || !(tok == s.token && s.token != "" || s.issued[tok]) {
			restError(w, 401, "NotAuthorizedException", "missing or invalid bearer token")
			return
		}
	}
	if path == "config" && r.Method == http.MethodGet {
		s.warehouse = r.URL.Query().Get("warehouse")
		if s.requireWH != "" && s.warehouse != s.requireWH {
			restError(w, 400, "BadRequestException", fmt.Sprintf("unknown warehouse %q", s.warehouse))
			return
		}
		over := map[string]string{}
		if s.prefix != "" {
			over["prefix"] = s.prefix
		}
		writeJSON(w, map[string]any{"defaults": map[string]string{}, "overrides": over})
		return
	}
	if s.prefix != "" {
		rest, ok := strings.CutPrefix(path, s.prefix+"/")
		if !ok {
			restError(w, 404, "NotFoundException", "wrong prefix in "+r.URL.Path)
			return
		}
		path = rest
	}
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 1 && parts[0] == "namespaces" && r.Method == http.MethodPost:
		var req struct {
			Namespace  []string       `json:"namespace"`
			Properties ice.Properties `json:"properties"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			restError(w, 400, "BadRequestException", err.Error())
			return
		}
		key := strings.Join(req.Namespace, "\x1f")
		if _, ok := s.namespaces[key]; ok {
			restError(w, 409, "AlreadyExistsException", "namespace exists")
			return
		}
		if req.Properties == nil {
			req.Properties = ice.Properties{}
		}
		s.namespaces[key] = req.Properties
		writeJSON(w, map[string]any{"namespace": req.Namespace, "properties": req.Properties})
	case len(parts) == 2 && parts[0] == "namespaces":
		props, ok := s.namespaces[parts[1]]
		if !ok {
			restError(w, 404, "NoSuchNamespaceException", "no namespace "+parts[1])
			return
		}
		switch r.Method {
		case http.MethodHead:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			writeJSON(w, map[string]any{"namespace": strings.Split(parts[1], "\x1f"), "properties": props})
		default:
			restError(w, 405, "BadRequestException", "method")
		}
	case len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "tables" && r.Method == http.MethodPost:
		s.createTable(w, r, parts[1])
	case len(parts) == 4 && parts[0] == "namespaces" && parts[2] == "tables":
		key := parts[1] + "/" + parts[3]
		tb, ok := s.tables[key]
		if !ok && r.Method != http.MethodPost {
			restError(w, 404, "NoSuchTableException", "no table "+key)
			return
		}
		switch r.Method {
		case http.MethodHead:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			writeJSON(w, map[string]any{"metadata-location": tb.loc, "metadata": tb.meta, "config": map[string]string{}})
		case http.MethodDelete:
			delete(s.tables, key)
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPost:
			if !ok {
				restError(w, 404, "NoSuchTableException", "no table "+key)
				return
			}
			s.commitTable(w, r, tb)
		}
	default:
		restError(w, 404, "NotFoundException", "no route "+r.Method+" "+r.URL.Path)
	}
}

func (s *restServer) oauthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		restError(w, 400, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	masked := f.Get("grant_type") + " client_id=" + f.Get("client_id") + " scope=" + f.Get("scope")
	s.tokenForms = append(s.tokenForms, masked)
	if f.Get("grant_type") != "client_credentials" || s.clientID == "" ||
		f.Get("client_id") != s.clientID || f.Get("client_secret") != s.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "bad client credentials"})
		return
	}
	tok := "issued-" + randHex(12)
	s.issued[tok] = true
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 3600,
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
}

func (s *restServer) writeMetadata(ns, name string, version int, meta table.Metadata) (string, error) {
	dir := filepath.Join(s.dir, ns, name, "metadata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	loc := filepath.Join(dir, fmt.Sprintf("%05d-%s.metadata.json", version, uuid.NewString()))
	return loc, os.WriteFile(loc, b, 0o644)
}

func (s *restServer) createTable(w http.ResponseWriter, r *http.Request, ns string) {
	if _, ok := s.namespaces[ns]; !ok {
		restError(w, 404, "NoSuchNamespaceException", "no namespace "+ns)
		return
	}
	var req struct {
		Name       string             `json:"name"`
		Schema     *ice.Schema        `json:"schema"`
		Location   string             `json:"location"`
		Spec       *ice.PartitionSpec `json:"partition-spec"`
		WriteOrder *table.SortOrder   `json:"write-order"`
		Props      ice.Properties     `json:"properties"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		restError(w, 400, "BadRequestException", err.Error())
		return
	}
	key := ns + "/" + req.Name
	if _, ok := s.tables[key]; ok {
		restError(w, 409, "AlreadyExistsException", "table exists")
		return
	}
	loc := req.Location
	if loc == "" {
		loc = filepath.Join(s.dir, ns, req.Name)
	}
	order := table.UnsortedSortOrder
	if req.WriteOrder != nil {
		order = *req.WriteOrder
	}
	spec := req.Spec
	if spec == nil {
		spec = ice.UnpartitionedSpec
	}
	meta, err := table.NewMetadata(req.Schema, spec, order, loc, req.Props)
	if err != nil {
		restError(w, 400, "BadRequestException", err.Error())
		return
	}
	mloc, err := s.writeMetadata(ns, req.Name, 0, meta)
	if err != nil {
		restError(w, 500, "ServerErrorException", err.Error())
		return
	}
	s.tables[key] = &restTable{meta: meta, loc: mloc}
	writeJSON(w, map[string]any{"metadata-location": mloc, "metadata": meta, "config": map[string]string{}})
}

func (s *restServer) commitTable(w http.ResponseWriter, r *http.Request, tb *restTable) {
	var req struct {
		Identifier struct {
			Namespace []string `json:"namespace"`
			Name      string   `json:"name"`
		} `json:"identifier"`
		Requirements table.Requirements `json:"requirements"`
		Updates      table.Updates      `json:"updates"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		restError(w, 400, "BadRequestException", err.Error())
		return
	}
	for _, rq := range req.Requirements {
		if err := rq.Validate(tb.meta); err != nil {
			restError(w, 409, "CommitFailedException", "Requirement failed: "+err.Error())
			return
		}
	}
	meta, err := table.UpdateTableMetadata(tb.meta, req.Updates, tb.loc)
	if err != nil {
		restError(w, 400, "BadRequestException", err.Error())
		return
	}
	mloc, err := s.writeMetadata(strings.Join(req.Identifier.Namespace, "\x1f"), req.Identifier.Name, tb.version+1, meta)
	if err != nil {
		restError(w, 500, "ServerErrorException", err.Error())
		return
	}
	tb.meta, tb.loc, tb.version = meta, mloc, tb.version+1
	writeJSON(w, map[string]any{"metadata-location": mloc, "metadata": meta})
}

// start serves s over plain HTTP, or over TLS with the PKI's server certificate.
func (s *restServer) start(pki *testinfra.PKI) string {
	srv := httptest.NewUnstartedServer(s)
	if pki != nil {
		cert, err := tls.LoadX509KeyPair(pki.ServerCertFile, pki.ServerKeyFile)
		if err != nil {
			s.t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.t.Cleanup(srv.Close)
	return srv.URL
}

func (s *restServer) snapshot() (auth, forms, paths []string, wh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.authHeads...), append([]string(nil), s.tokenForms...), append([]string(nil), s.paths...), s.warehouse
}

// requireNoSecret fails if any file under dir holds secret, raw or base64-encoded.
func requireNoSecret(t testing.TB, dir string, secrets ...string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		for _, sec := range secrets {
			for _, form := range []string{sec, base64.StdEncoding.EncodeToString([]byte(sec)), base64.URLEncoding.EncodeToString([]byte(sec))} {
				if strings.Contains(string(b), form) {
					t.Errorf("secret found in %s", p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no file under %s to scan", dir)
	}
}

func TestRESTBearerTokenRoundTrip(t *testing.T) {
	srv := newRESTServer(t)
	srv.token = "tok-" + randHex(16)
	srv.prefix = "ledger-wh"
	srv.requireWH = "ledger_warehouse"
	uri := srv.start(nil)
	c, err := Open(context.Background(), Config{CatalogURI: uri, REST: RESTConfig{Token: srv.token, Warehouse: "ledger_warehouse"}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if c.Kind() != "rest" {
		t.Fatalf("kind %q", c.Kind())
	}
	testRoundTrip(t, c)

	auth, _, paths, wh := srv.snapshot()
	if wh != "ledger_warehouse" {
		t.Errorf("/v1/config got warehouse %q", wh)
	}
	for i, a := range auth {
		if a != "Bearer "+srv.token {
			t.Fatalf("request %d carried Authorization %q, want the bearer token", i, a)
		}
	}
	var commits int
	for _, p := range paths {
		if strings.HasPrefix(p, "POST /v1/ledger-wh/namespaces/demo/tables/transactions_ledger") {
			commits++
		}
	}
	if commits != 1 {
		t.Errorf("%d commits under the prefix, want 1; requests: %v", commits, paths)
	}
	requireNoSecret(t, srv.dir, srv.token)
}

func TestRESTOAuth2ClientCredentialsConflict(t *testing.T) {
	srv := newRESTServer(t)
	srv.clientID, srv.secret = "ledgerstream", "cs-"+randHex(16)
	uri := srv.start(nil)
	c, err := Open(context.Background(), Config{CatalogURI: uri, REST: RESTConfig{Credential: srv.clientID + ":" + srv.secret, Scope: "PRINCIPAL_ROLE:ALL"}})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	testConflict(t, c) // two sinks race; the loser's 409 is engine.ErrConflict

	auth, forms, _, _ := srv.snapshot()
	if len(forms) == 0 || !strings.Contains(forms[0], "client_credentials client_id=ledgerstream scope=PRINCIPAL_ROLE:ALL") {
		t.Errorf("token requests: %v", forms)
	}
	for i, a := range auth {
		tok, ok := strings.CutPrefix(a, "Bearer issued-")
		if !ok || tok == "" {
			t.Fatalf("request %d carried Authorization %q, want the issued token", i, a)
		}
	}
	requireNoSecret(t, srv.dir, srv.secret)
}

func TestRESTAuthFailures(t *testing.T) {
	srv := newRESTServer(t)
	srv.token = "tok-" + randHex(16)
	srv.clientID, srv.secret = "ledgerstream", "cs-"+randHex(16)
	uri := srv.start(nil)
	ctx := context.Background()
	for name, rc := range map[string]RESTConfig{
		"wrong token":      {Token: "tok-wrong-" + randHex(8)},
		"wrong credential": {Credential: "ledgerstream:cs-wrong-" + randHex(8)},
		"no auth":          {},
	} {
		c, err := Open(ctx, Config{CatalogURI: uri, REST: rc})
		if err == nil {
			c.Close()
			t.Errorf("%s: open succeeded", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		for _, sec := range []string{rc.Token, rc.Credential, srv.token, srv.secret} {
			if sec != "" && strings.Contains(err.Error(), sec) {
				t.Errorf("%s: the error shows a secret: %v", name, err)
			}
		}
	}
	if _, err := Open(ctx, Config{CatalogURI: uri, REST: RESTConfig{Token: "a", Credential: "b:c"}}); err == nil {
		t.Error("token and credential together: no error")
	}
}

func TestRESTOverTLS(t *testing.T) {
	pki := testinfra.NewPKI(t)
	srv := newRESTServer(t)
	srv.token = "tok-" + randHex(16)
	uri := srv.start(pki)
	ctx := context.Background()
	pem, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	// Without the CA, the server's certificate is refused.
	if c, err := Open(ctx, Config{CatalogURI: uri, REST: RESTConfig{Token: srv.token}}); err == nil {
		c.Close()
		t.Fatal("TLS to a server with an unknown CA succeeded")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA: error does not mention the certificate: %v", err)
	}
	c, err := Open(ctx, Config{CatalogURI: uri, REST: RESTConfig{Token: srv.token, TLS: &tls.Config{RootCAs: pool}}})
	if err != nil {
		t.Fatalf("open over TLS with the CA: %v", err)
	}
	defer c.Close()
	s := newSink(t, c)
	if _, err := stageCommit(t, s, mustLoad(t, s), testRows("tx", 0, 0, 10), 1, nil); err != nil {
		t.Fatalf("commit over TLS: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:hunter2@db:5432/x?sslmode=disable":   "postgres://u:xxxxx@db:5432/x?sslmode=disable",
		"postgres://db/x?password=hunter2&sslmode=require": "postgres://db/x?password=xxxxx&sslmode=require",
		"https://cat.example/api?token=hunter2":            "https://cat.example/api?token=xxxxx",
		"postgres://u@db/x":                                "postgres://u@db/x",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	err := redactErr(errors.New(`cannot parse "postgres://u:hunter2@db/x"`), "postgres://u:hunter2@db/x")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redactErr left the password: %v", err)
	}
}

func TestOpenRefusesS3KeysInProperties(t *testing.T) {
	_, err := Open(context.Background(), Config{DataDir: t.TempDir(), Properties: map[string]string{"s3.secret-access-key": "x"}})
	if err == nil || !strings.Contains(err.Error(), "AWS environment") {
		t.Fatalf("err = %v", err)
	}
}
