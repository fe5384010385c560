package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// A Contract declares the shape of a team's transaction messages and what the ledger makes of
// them: the columns (each read from a path of the JSON message, with its type and checks), the
// idempotency key, the columns of the row hash, the table's partitioning, what to do with keys
// the contract does not name, and what `report` summarises. DefaultContract is the notebook's
// seven fields; ParseContract reads a team's own from YAML.
//
// A Contract is read-only once parsed: one value serves any number of goroutines.
type Contract struct {
	// Key is the name of the idempotency key column: a second message with the same key is a
	// duplicate (same hash) or a conflicting duplicate (different hash).
	Key string
	// Hash names the columns of the row hash, in order: the hash is the lower-case hex
	// SHA-256 of their canonical strings (Field.Canonical) joined with '|', as the notebook's
	// sha2(concat_ws("|", ...), 256).
	Hash []string
	// Fields are the contract's columns, in table order.
	Fields []Field
	// Partition is the table's partition spec, one transform per entry.
	Partition []PartitionField
	// UnknownFields says what becomes of message keys the contract does not name.
	UnknownFields UnknownMode
	// Report says what `report` summarises.
	Report ReportSpec

	// hashAt is where the transaction_hash column sits among the fields in the table
	// schema: after all of them for a parsed contract, after transaction_type (the sixth) in
	// the notebook's schema.
	hashAt int
	// isDefault marks the contract the hand-written decoder serves (Rules.Decode).
	isDefault bool

	// The compiled form (compile): the path tree and the indexes of the key, hash and
	// report-time fields; strict marks the key and hash fields.
	root      *pathNode
	nodes     int     // how many nodes root's tree has
	pathNodes [][]int // by field: the ids of the nodes of its path, the root's first
	// keep and rejectUnknown are UnknownFields, compared once.
	keep, rejectUnknown bool
	keyIndex            int
	hashIndex           []int
	stringFields        []int // the indexes of the string fields
	timeIndex           int
	strict              []bool
	scratch             sync.Pool // of *cdecoder
}

// Field is one column of a contract.
type Field struct {
	Name string // column name
	Path []string
	Type Type
	// Required fields must be present and not null; an optional one absent or null is a null.
	Required bool
	// Checks. A nil bound is absent; bounds are exact decimal texts, never floats.
	Pattern                    *regexp.Regexp
	Enum                       []string
	Min, Max                   *Decimal
	MinExclusive, MaxExclusive *Decimal
	MinLength, MaxLength       int // bytes, after unescaping; 0 = no bound
	// HashAsSent hashes the value as the message spelled it (the notebook's amount_str)
	// rather than its canonical string. Only for decimals.
	HashAsSent bool

	// minB etc. are the bounds rescaled to the field's scale, for comparisons without
	// allocating (compile sets them).
	bounds [4]*dec128
	// hasBounds: some bound is set (the common field has none: no call to check them).
	hasBounds bool
	// compile's: the index of the path's last key, the JSON type the value is sent as
	// (jsonKindFor), and whether a string has checks (checkString) at all.
	leaf    int
	want    jsonKind
	checked bool
	// matcher is Pattern's fast form when it has one (compilePattern), else nil.
	matcher *asciiPattern
}

// PathString is the field's path as written in the contract, dot-separated.
func (f *Field) PathString() string { return strings.Join(f.Path, ".") }

// TypeKind is a column's logical type.
type TypeKind uint8

// The column types a contract may declare.
const (
	TypeString TypeKind = iota + 1
	TypeLong
	TypeInt
	TypeBoolean
	TypeDecimal
	TypeDate
	TypeTimestampTz
	TypeTimestamp
)

// Type is a column type: a kind, and for decimals a precision and a scale.
type Type struct {
	Kind             TypeKind
	Precision, Scale int
}

func (t Type) String() string {
	switch t.Kind {
	case TypeString:
		return "string"
	case TypeLong:
		return "long"
	case TypeInt:
		return "int"
	case TypeBoolean:
		return "boolean"
	case TypeDecimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case TypeDate:
		return "date"
	case TypeTimestampTz:
		return "timestamptz"
	case TypeTimestamp:
		return "timestamp"
	}
	return fmt.Sprintf("TypeKind(%d)", t.Kind)
}

func (t Type) numeric() bool {
	return t.Kind == TypeLong || t.Kind == TypeInt || t.Kind == TypeDecimal
}

func (t Type) temporal() bool {
	return t.Kind == TypeDate || t.Kind == TypeTimestampTz || t.Kind == TypeTimestamp
}

// MaxDecimalPrecision is Iceberg's largest decimal precision.
const MaxDecimalPrecision = 38

var decimalType = regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// ParseType parses a contract type name.
func ParseType(s string) (Type, error) {
	switch s {
	case "string":
		return Type{Kind: TypeString}, nil
	case "long":
		return Type{Kind: TypeLong}, nil
	case "int":
		return Type{Kind: TypeInt}, nil
	case "boolean":
		return Type{Kind: TypeBoolean}, nil
	case "date":
		return Type{Kind: TypeDate}, nil
	case "timestamptz":
		return Type{Kind: TypeTimestampTz}, nil
	case "timestamp":
		return Type{Kind: TypeTimestamp}, nil
	}
	if m := decimalType.FindStringSubmatch(s); m != nil {
		p, err1 := strconv.Atoi(m[1])
		sc, err2 := strconv.Atoi(m[2])
		switch {
		case err1 != nil || err2 != nil || p < 1 || p > MaxDecimalPrecision:
			return Type{}, fmt.Errorf("type %q: precision must be 1 to %d", s, MaxDecimalPrecision)
		case sc > p:
			return Type{}, fmt.Errorf("type %q: scale must be at most the precision", s)
		}
		return Type{Kind: TypeDecimal, Precision: p, Scale: sc}, nil
	}
	return Type{}, fmt.Errorf("unknown type %q (want string, long, int, boolean, decimal(p,s), date, timestamptz or timestamp)", s)
}

// UnknownMode says what becomes of message keys that no field's path names.
type UnknownMode string

// The unknown_fields modes.
const (
	// UnknownIgnore drops them (the notebook's behaviour).
	UnknownIgnore UnknownMode = "ignore"
	// UnknownKeep keeps them, as a JSON object of the unnamed keys (nested as in the
	// message), in the `extras` string column.
	UnknownKeep UnknownMode = "keep"
	// UnknownReject makes a message with one a reject (unknown_field).
	UnknownReject UnknownMode = "reject"
)

// ReportSpec says what `report` summarises: counts, sums and averages of Amount by the
// GroupBy columns, and the latest rows by Time.
type ReportSpec struct {
	GroupBy []string
	Amount  string
	Time    string
}

// PartitionField is one entry of a partition spec: Transform(Column), with Param for bucket[N]
// and truncate[W].
type PartitionField struct {
	Transform string // identity, year, month, day, hour, bucket, truncate
	Param     int
	Column    string
}

func (p PartitionField) String() string {
	if p.Transform == "bucket" || p.Transform == "truncate" {
		return fmt.Sprintf("%s(%d, %s)", p.Transform, p.Param, p.Column)
	}
	return fmt.Sprintf("%s(%s)", p.Transform, p.Column)
}

// Reserved column names: the columns every ledger table has besides the contract's.
const (
	ColumnHash            = "transaction_hash"
	ColumnExtras          = "extras"
	ColumnProcessingTime  = "processing_time"
	ColumnSourceTopic     = "source_topic"
	ColumnSourcePartition = "source_partition"
	ColumnSourceOffset    = "source_offset"
)

var reservedColumns = []string{ColumnHash, ColumnExtras, ColumnProcessingTime, ColumnSourceTopic, ColumnSourcePartition, ColumnSourceOffset}

// Field returns the field named name, or nil.
func (c *Contract) Field(name string) *Field {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i]
		}
	}
	return nil
}

// FieldIndex returns the index of the field named name, or -1.
func (c *Contract) FieldIndex(name string) int {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return i
		}
	}
	return -1
}

// IsDefault reports whether c is the notebook's contract (DefaultContract), which the
// hand-written decoder serves.
func (c *Contract) IsDefault() bool { return c.isDefault }

// HashAt is the position of the transaction_hash column among the fields in the table schema:
// the columns are Fields[:HashAt], transaction_hash, Fields[HashAt:], then extras (with
// unknown_fields keep) and the lineage columns.
func (c *Contract) HashAt() int { return c.hashAt }

// defaultContractYAML is the notebook's message, as a contract. DefaultContract parses it, so
// `contract check` of this text prints the notebook's table schema.
const defaultContractYAML = `# The notebook's transactions (docs/design.md §1, §3).
key: transaction_id
hash: [transaction_id, account_from, account_to, amount, currency]
fields:
  - {name: transaction_id, path: transaction_id, type: string, required: true, min_length: 1, max_length: 256}
  - {name: account_from, path: account_from, type: string, required: true, min_length: 1, max_length: 256}
  - {name: account_to, path: account_to, type: string, required: true, min_length: 1, max_length: 256}
  - {name: amount, path: amount, type: 'decimal(18,2)', required: true, min_exclusive: 0, hash_as: sent}
  - {name: currency, path: currency, type: string, required: true, pattern: '^[A-Z]{3}$'}
  - {name: transaction_type, path: transaction_type, type: string, required: true, enum: [transfer, payment, withdrawal, deposit]}
  - {name: event_timestamp, path: timestamp, type: timestamptz, required: true}
unknown_fields: ignore
report: {group_by: [transaction_type, currency], amount: amount, time: event_timestamp}
`

// DefaultContractYAML returns the notebook's contract as YAML.
func DefaultContractYAML() string { return defaultContractYAML }

var defaultContract, defaultCanonical = func() (*Contract, string) {
	c, err := parseContract([]byte(defaultContractYAML))
	if err != nil {
		panic("ledger: the default contract does not parse: " + err.Error())
	}
	canonical := string(c.YAML())
	c.hashAt = 6 // the notebook's schema has transaction_hash (id 7) before event_timestamp
	c.isDefault = true
	return c, canonical
}()

// DefaultContract returns the notebook's contract: the seven fields of docs/design.md §1, the rules of
// docs/design.md §3, the notebook's hash. Tables written before contracts existed have its schema.
func DefaultContract() *Contract { return defaultContract }

// contractFile is the YAML form of a contract.
type contractFile struct {
	Key           string      `yaml:"key"`
	Hash          []string    `yaml:"hash,flow"`
	Fields        []fieldFile `yaml:"fields"`
	Partition     []string    `yaml:"partition,flow,omitempty"`
	UnknownFields string      `yaml:"unknown_fields,omitempty"`
	Report        *reportFile `yaml:"report,omitempty"`
}

type fieldFile struct {
	Name         string    `yaml:"name"`
	Path         string    `yaml:"path,omitempty"`
	Type         string    `yaml:"type"`
	Required     bool      `yaml:"required,omitempty"`
	Pattern      string    `yaml:"pattern,omitempty"`
	Enum         []string  `yaml:"enum,flow,omitempty"`
	Min          yaml.Node `yaml:"min,omitempty"`
	Max          yaml.Node `yaml:"max,omitempty"`
	MinExclusive yaml.Node `yaml:"min_exclusive,omitempty"`
	MaxExclusive yaml.Node `yaml:"max_exclusive,omitempty"`
	MinLength    int       `yaml:"min_length,omitempty"`
	MaxLength    int       `yaml:"max_length,omitempty"`
	HashAs       string    `yaml:"hash_as,omitempty"`
}

type reportFile struct {
	GroupBy []string `yaml:"group_by,flow"`
	Amount  string   `yaml:"amount"`
	Time    string   `yaml:"time"`
}

// ContractError lists everything wrong with a contract, one problem a line.
type ContractError struct {
	Problems []string
}

func (e *ContractError) Error() string {
	if len(e.Problems) == 1 {
		return "contract: " + e.Problems[0]
	}
	return "contract: " + strconv.Itoa(len(e.Problems)) + " problems:\n  " + strings.Join(e.Problems, "\n  ")
}

var columnName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

var partitionSyntax = regexp.MustCompile(`^\s*([a-z]+)\s*\(\s*(?:(\d+)\s*,\s*)?([a-z_][a-z0-9_]*)\s*\)\s*$`)

// ParseContract reads a contract from YAML and checks it whole: it returns a *ContractError
// listing every problem found, not only the first. Unknown keys are errors (a misspelt
// `requried` must not silently make a field optional). A contract that says what the default
// contract says is the default contract (same table schema, same decoder).
func ParseContract(data []byte) (*Contract, error) {
	c, err := parseContract(data)
	if err != nil {
		return nil, err
	}
	if string(c.YAML()) == defaultCanonical {
		return defaultContract, nil
	}
	return c, nil
}

func parseContract(data []byte) (*Contract, error) {
	var f contractFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, &ContractError{Problems: []string{"not a valid contract document: " + err.Error()}}
	}
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	c := &Contract{Key: f.Key, Hash: f.Hash, UnknownFields: UnknownMode(f.UnknownFields)}
	if len(f.Fields) == 0 {
		bad("fields: at least one field is needed")
	}
	names := map[string]bool{}
	paths := map[string]string{}
	for i, ff := range f.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		if ff.Name != "" {
			where += " (" + ff.Name + ")"
		}
		fd := Field{Name: ff.Name, Required: ff.Required, Enum: ff.Enum, MinLength: ff.MinLength, MaxLength: ff.MaxLength}
		switch {
		case ff.Name == "":
			bad("%s: name is missing", where)
		case !columnName.MatchString(ff.Name):
			bad("%s: name %q must be lower-case letters, digits and '_', not starting with a digit", where, ff.Name)
		case slices.Contains(reservedColumns, ff.Name):
			bad("%s: name %q is a column every ledger table has; choose another", where, ff.Name)
		case names[ff.Name]:
			bad("%s: name %q is used twice", where, ff.Name)
		}
		names[ff.Name] = true
		path := ff.Path
		if path == "" {
			path = ff.Name
		}
		fd.Path = strings.Split(path, ".")
		if slices.Contains(fd.Path, "") {
			bad("%s: path %q has an empty segment", where, path)
		}
		if len(fd.Path) > maxPathDepth {
			bad("%s: path %q is deeper than %d levels", where, path, maxPathDepth)
		}
		for other, otherName := range paths {
			switch {
			case other == path:
				bad("%s: path %q is also the path of %q", where, path, otherName)
			case strings.HasPrefix(other, path+"."), strings.HasPrefix(path, other+"."):
				bad("%s: path %q and the path %q of %q overlap (one would be an object and a value)", where, path, other, otherName)
			}
		}
		paths[path] = ff.Name
		typ, err := ParseType(ff.Type)
		if err != nil {
			bad("%s: %v", where, err)
		}
		fd.Type = typ
		if ff.Pattern != "" {
			if typ.Kind != TypeString {
				bad("%s: pattern applies to strings only, not %s", where, typ)
			}
			re, err := regexp.Compile(ff.Pattern)
			if err != nil {
				bad("%s: pattern %q: %v", where, ff.Pattern, err)
			}
			fd.Pattern = re
		}
		if len(ff.Enum) > 0 && typ.Kind != TypeString {
			bad("%s: enum applies to strings only, not %s", where, typ)
		}
		if ff.Enum != nil && len(ff.Enum) == 0 {
			bad("%s: enum is empty (no value could pass)", where)
		}
		for j, v := range ff.Enum {
			if slices.Contains(ff.Enum[:j], v) {
				bad("%s: enum lists %q twice", where, v)
			}
		}
		if (ff.MinLength != 0 || ff.MaxLength != 0) && typ.Kind != TypeString {
			bad("%s: min_length and max_length apply to strings only, not %s", where, typ)
		}
		if ff.MinLength < 0 || ff.MaxLength < 0 || ff.MaxLength != 0 && ff.MinLength > ff.MaxLength {
			bad("%s: min_length %d and max_length %d: want 0 <= min_length <= max_length", where, ff.MinLength, ff.MaxLength)
		}
		switch ff.HashAs {
		case "", "canonical":
		case "sent":
			if typ.Kind != TypeDecimal {
				bad("%s: hash_as: sent applies to decimals only", where)
			}
			fd.HashAsSent = true
		default:
			bad("%s: hash_as must be canonical or sent, not %q", where, ff.HashAs)
		}
		for k, n := range []*yaml.Node{&ff.Min, &ff.Max, &ff.MinExclusive, &ff.MaxExclusive} {
			if n.Kind == 0 {
				continue
			}
			rule := boundNames[k]
			if !typ.numeric() {
				bad("%s: %s applies to long, int and decimal fields, not %s", where, rule, typ)
				continue
			}
			d, err := boundOf(n, typ)
			if err != nil {
				bad("%s: %s: %v", where, rule, err)
				continue
			}
			switch k {
			case 0:
				fd.Min = d
			case 1:
				fd.Max = d
			case 2:
				fd.MinExclusive = d
			case 3:
				fd.MaxExclusive = d
			}
			fd.bounds[k] = &d.v
			fd.hasBounds = true
		}
		if fd.Min != nil && fd.MinExclusive != nil || fd.Max != nil && fd.MaxExclusive != nil {
			bad("%s: give min or min_exclusive, max or max_exclusive, not both", where)
		}
		c.Fields = append(c.Fields, fd)
	}
	c.hashAt = len(c.Fields)

	keyed := func(what, name string, check func(*Field) string) {
		fd := c.Field(name)
		switch {
		case name == "":
			bad("%s is missing", what)
		case fd == nil:
			bad("%s %q is not a field", what, name)
		default:
			if msg := check(fd); msg != "" {
				bad("%s %q %s", what, name, msg)
			}
		}
	}
	keyed("key", c.Key, func(fd *Field) string {
		switch {
		case !fd.Required:
			return "must be required (a row without a key cannot be deduplicated)"
		case fd.Type.Kind != TypeString && fd.Type.Kind != TypeLong && fd.Type.Kind != TypeInt:
			return "must be a string, long or int, not " + fd.Type.String()
		case fd.Type.Kind == TypeString && fd.MaxLength > MaxIdentifierBytes:
			// The dedup index keeps every key: an unbounded one is a memory hazard.
			return fmt.Sprintf("may have a max_length of at most %d bytes (the index of accepted keys keeps every key)", MaxIdentifierBytes)
		}
		if fd.Type.Kind == TypeString {
			// An empty key is no key, and the index keeps every key: bound them, as the
			// notebook's transaction_id is bounded.
			fd.MinLength = max(fd.MinLength, 1)
			if fd.MaxLength == 0 {
				fd.MaxLength = MaxIdentifierBytes
			}
		}
		return ""
	})
	if len(c.Hash) == 0 {
		bad("hash: at least one column is needed")
	}
	for i, h := range c.Hash {
		keyed("hash column", h, func(fd *Field) string {
			if !fd.Required {
				// concat_ws skips nulls, so an optional column would make two rows that
				// differ only in which column is null hash alike.
				return "must be required (a null would vanish from the hash input)"
			}
			return ""
		})
		if slices.Contains(c.Hash[:i], h) {
			bad("hash column %q is listed twice", h)
		}
	}
	if c.Key != "" && len(c.Hash) > 0 && !slices.Contains(c.Hash, c.Key) {
		bad("hash must include the key %q (two rows with one key must differ in hash when they differ)", c.Key)
	}

	switch c.UnknownFields {
	case "":
		c.UnknownFields = UnknownIgnore
	case UnknownIgnore, UnknownKeep, UnknownReject:
	default:
		bad("unknown_fields must be ignore, keep or reject, not %q", f.UnknownFields)
	}

	for _, s := range f.Partition {
		m := partitionSyntax.FindStringSubmatch(s)
		if m == nil {
			bad("partition %q: want transform(column) or bucket(N, column) / truncate(W, column)", s)
			continue
		}
		pf := PartitionField{Transform: m[1], Column: m[3]}
		if m[2] != "" {
			pf.Param, _ = strconv.Atoi(m[2])
		}
		fd := c.Field(pf.Column)
		if fd == nil {
			bad("partition %q: %q is not a field", s, pf.Column)
			continue
		}
		if msg := checkTransform(pf, fd, m[2] != ""); msg != "" {
			bad("partition %q: %s", s, msg)
			continue
		}
		for _, q := range c.Partition {
			if q.Column == pf.Column && q.Transform == pf.Transform {
				bad("partition %q is listed twice", s)
			}
		}
		c.Partition = append(c.Partition, pf)
	}

	if f.Report == nil {
		bad("report is missing (group_by, amount and time)")
	} else {
		c.Report = ReportSpec{GroupBy: f.Report.GroupBy, Amount: f.Report.Amount, Time: f.Report.Time}
		for _, g := range c.Report.GroupBy {
			if c.Field(g) == nil {
				bad("report group_by %q is not a field", g)
			}
		}
		keyed("report amount", c.Report.Amount, func(fd *Field) string {
			if !fd.Type.numeric() {
				return "must be a long, int or decimal, not " + fd.Type.String()
			}
			return ""
		})
		keyed("report time", c.Report.Time, func(fd *Field) string {
			if !fd.Type.temporal() {
				return "must be a date or timestamp, not " + fd.Type.String()
			}
			return ""
		})
	}
	if len(p) > 0 {
		return nil, &ContractError{Problems: p}
	}
	c.compile()
	if n := c.root.widest(); n > 64 {
		return nil, &ContractError{Problems: []string{fmt.Sprintf("an object level of the paths names %d keys; at most 64 are supported", n)}}
	}
	return c, nil
}

var boundNames = [4]string{"min", "max", "min_exclusive", "max_exclusive"}

// boundOf reads a bound from its YAML scalar text, never through a float.
func boundOf(n *yaml.Node, t Type) (*Decimal, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, errors.New("want a number")
	}
	scale := t.Scale
	if t.Kind != TypeDecimal {
		scale = 0
	}
	d, err := ParseDecimal(n.Value, scale)
	if err != nil {
		return nil, err
	}
	if t.Kind == TypeDecimal && d.digits() > t.Precision {
		return nil, fmt.Errorf("%s does not fit in %s", n.Value, t)
	}
	if t.Kind == TypeInt && (d.v.hi != 0 && d.v.hi != -1 || !d.fitsInt32()) {
		return nil, fmt.Errorf("%s does not fit in an int", n.Value)
	}
	if t.Kind == TypeLong && !d.fitsInt64() {
		return nil, fmt.Errorf("%s does not fit in a long", n.Value)
	}
	return d, nil
}

func checkTransform(pf PartitionField, fd *Field, hasParam bool) string {
	k := fd.Type.Kind
	switch pf.Transform {
	case "identity":
	case "year", "month", "day":
		if !fd.Type.temporal() {
			return pf.Transform + " applies to dates and timestamps, not " + fd.Type.String()
		}
	case "hour":
		if k != TypeTimestampTz && k != TypeTimestamp {
			return "hour applies to timestamps, not " + fd.Type.String()
		}
	case "bucket":
		if k == TypeBoolean {
			return "bucket does not apply to booleans"
		}
	case "truncate":
		if k != TypeString && k != TypeLong && k != TypeInt && k != TypeDecimal {
			return "truncate applies to strings, longs, ints and decimals, not " + fd.Type.String()
		}
	default:
		return "unknown transform " + strconv.Quote(pf.Transform) + " (want identity, year, month, day, hour, bucket or truncate)"
	}
	needParam := pf.Transform == "bucket" || pf.Transform == "truncate"
	switch {
	case needParam && (!hasParam || pf.Param < 1):
		return pf.Transform + " needs a positive width: " + pf.Transform + "(N, " + pf.Column + ")"
	case !needParam && hasParam:
		return pf.Transform + " takes no number"
	}
	return ""
}

// YAML returns the contract as a YAML document that ParseContract reads back to an equal
// contract. Tables keep it in their properties; `contract show` prints it.
func (c *Contract) YAML() []byte {
	if c.isDefault {
		return []byte(defaultContractYAML)
	}
	f := contractFile{Key: c.Key, Hash: c.Hash, UnknownFields: string(c.UnknownFields),
		Report: &reportFile{GroupBy: c.Report.GroupBy, Amount: c.Report.Amount, Time: c.Report.Time}}
	for _, p := range c.Partition {
		f.Partition = append(f.Partition, p.String())
	}
	for _, fd := range c.Fields {
		ff := fieldFile{Name: fd.Name, Path: fd.PathString(), Type: fd.Type.String(), Required: fd.Required,
			Enum: fd.Enum, MinLength: fd.MinLength, MaxLength: fd.MaxLength}
		if ff.Path == fd.Name {
			ff.Path = ""
		}
		if fd.Pattern != nil {
			ff.Pattern = fd.Pattern.String()
		}
		if fd.HashAsSent {
			ff.HashAs = "sent"
		}
		node := func(d *Decimal) yaml.Node {
			if d == nil {
				return yaml.Node{}
			}
			return yaml.Node{Kind: yaml.ScalarNode, Value: d.text}
		}
		ff.Min, ff.Max, ff.MinExclusive, ff.MaxExclusive = node(fd.Min), node(fd.Max), node(fd.MinExclusive), node(fd.MaxExclusive)
		f.Fields = append(f.Fields, ff)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&f); err != nil {
		panic("ledger: contract to YAML: " + err.Error()) // plain strings and slices cannot fail
	}
	_ = enc.Close()
	return buf.Bytes()
}
