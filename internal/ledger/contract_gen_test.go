package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// genContracts are contracts the generator must serve: the README's example, and one with
// every type, deep paths, bounds on each side, patterns and a numeric key.
var genContracts = map[string]string{
	"example": exampleContract,
	"every type": `
key: n
hash: [n, code, price, qty, day, at, local]
fields:
  - {name: n, path: meta.id, type: long, required: true, min: 100}
  - {name: code, path: a.b.c.code, type: string, required: true, pattern: '^(EU|US)-[A-F0-9]{3}[a-z]?$'}
  - {name: label, path: a.b.label, type: string, min_length: 20, max_length: 24}
  - {name: kind, path: a.kind, type: string, enum: ['x"y', plain, 'tab	in']}
  - {name: price, path: price, type: 'decimal(9,4)', required: true, min: '-5.5', max_exclusive: 3}
  - {name: big, path: big, type: 'decimal(38,20)', min_exclusive: 1000000}
  - {name: whole, path: whole, type: 'decimal(5,0)', max: 99}
  - {name: qty, path: q.qty, type: int, required: true, min_exclusive: -10, max: 10}
  - {name: ok, path: q.ok, type: boolean}
  - {name: day, path: day, type: date, required: true}
  - {name: at, path: t.at, type: timestamptz, required: true}
  - {name: local, path: t.local, type: timestamp, required: true}
  - {name: free, type: string, required: true}
unknown_fields: reject
report: {group_by: [kind], amount: price, time: at}
`,
	"string key with pattern": `
key: ref
hash: [ref, amount]
fields:
  - {name: ref, type: string, required: true, pattern: '^[0-9]{8}$'}
  - {name: amount, type: 'decimal(18,2)', required: true, min_exclusive: 0}
  - {name: at, type: timestamptz}
unknown_fields: keep
report: {group_by: [], amount: amount, time: at}
`,
}

// Every generated message is what the decoder makes of it: a valid one decodes, a broken
// one is refused with the reason the generator says, a duplicate has its original's key
// and hash, a conflicting duplicate its key and another hash.
func TestContractGeneratorAgreesWithDecoder(t *testing.T) {
	for name, y := range genContracts {
		t.Run(name, func(t *testing.T) {
			c := mustContract(t, y)
			g, err := NewContractGenerator(c, 7, GeneratorOptions{Duplicates: 0.1, Malformed: 0.3, FirstID: 5})
			if err != nil {
				t.Fatal(err)
			}
			rules := Rules{Contract: c}
			now := time.Date(2026, 11, 27, 20, 0, 0, 123456789, time.UTC)
			var rows []Row
			seen := map[Reason]int{}
			for i := range 20000 {
				m := g.Next(now.Add(time.Duration(i) * time.Millisecond))
				row, rej := rules.Decode(m.Value)
				rows = append(rows, row)
				got := Reason("")
				if rej != nil {
					got = rej.Reason
				}
				want := m.Want
				if want == ReasonDuplicate || want == ReasonConflictingDuplicate {
					want = "" // the decoder accepts them; the index refuses them
				}
				seen[m.Want]++
				if got != want {
					t.Fatalf("message %d (%s): decoder says %q (%v), generator wants %q:\n%s", i, m.Key, got, rej, m.Want, m.Value)
				}
				switch m.Want {
				case "":
					if string(m.Key) != row.TransactionID {
						t.Fatalf("message %d: Kafka key %q, row key %q", i, m.Key, row.TransactionID)
					}
				case ReasonDuplicate, ReasonConflictingDuplicate:
					orig := rows[m.Original]
					if row.TransactionID != orig.TransactionID {
						t.Fatalf("duplicate %d of %d: key %q, original's %q", i, m.Original, row.TransactionID, orig.TransactionID)
					}
					if same := row.TransactionHash == orig.TransactionHash; same != (m.Want == ReasonDuplicate) {
						t.Fatalf("%s %d of %d: same hash %v:\n%s", m.Want, i, m.Original, same, m.Value)
					}
				}
			}
			// Every way of breaking a message was drawn (each is one in len(variants)).
			for _, v := range g.malformed {
				if seen[v.want] == 0 {
					t.Errorf("no message with reason %s", v.want)
				}
			}
			if seen[""] < 10000 || seen[ReasonConflictingDuplicate] == 0 || seen[ReasonDuplicate] == 0 {
				t.Errorf("reasons drawn: %v", seen)
			}
		})
	}
}

// Keys are distinct and counted from FirstID, so a second run continues a first.
func TestContractGeneratorKeys(t *testing.T) {
	c := mustContract(t, exampleContract)
	g, err := NewContractGenerator(c, 1, GeneratorOptions{FirstID: 41})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 1000 {
		m := g.Next(time.Now())
		if i == 0 && string(m.Key) != "TXN00000041" {
			t.Errorf("first key %q, want TXN00000041", m.Key)
		}
		if n, ok := TransactionNumber(m.Key); !ok || n != 41+i || seen[string(m.Key)] {
			t.Fatalf("key %d: %q", i, m.Key)
		}
		seen[string(m.Key)] = true
		if !bytes.Contains(m.Value, []byte(`"id": "`+string(m.Key)+`"`)) {
			t.Fatalf("message %d does not carry its key: %s", i, m.Value)
		}
	}
	every := mustContract(t, genContracts["every type"])
	g2, err := NewContractGenerator(every, 1, GeneratorOptions{FirstID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if m := g2.Next(time.Now()); string(m.Key) != "103" {
		t.Errorf("numeric key counted from min 100 + FirstID 3: %q", m.Key)
	}
}

func TestContractGeneratorDeterministic(t *testing.T) {
	c := mustContract(t, genContracts["every type"])
	a, _ := NewContractGenerator(c, 9, GeneratorOptions{Duplicates: 0.2, Malformed: 0.2})
	b, _ := NewContractGenerator(c, 9, GeneratorOptions{Duplicates: 0.2, Malformed: 0.2})
	now := time.Now()
	for i := range 2000 {
		ma, mb := a.Next(now), b.Next(now)
		if !bytes.Equal(ma.Value, mb.Value) || !bytes.Equal(ma.Key, mb.Key) || ma.Want != mb.Want {
			t.Fatalf("message %d differs for one seed:\n%s\n%s", i, ma.Value, mb.Value)
		}
	}
}

// Contracts whose values the generator cannot make are refused with the field named.
func TestContractGeneratorRefuses(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`
key: id
hash: [id]
fields:
  - {name: id, type: string, required: true, enum: [a, b]}
  - {name: amt, type: 'decimal(10,2)'}
  - {name: at, type: timestamptz}
report: {group_by: [], amount: amt, time: at}
`, `field "id": a key with an enum`},
		{`
key: id
hash: [id]
fields:
  - {name: id, type: string, required: true, pattern: '^[a-z]+$'}
  - {name: amt, type: 'decimal(10,2)'}
  - {name: at, type: timestamptz}
report: {group_by: [], amount: amt, time: at}
`, `field "id": no numbering of keys`},
		{`
key: id
hash: [id]
fields:
  - {name: id, type: string, required: true}
  - {name: w, type: string, pattern: '\bword\b'}
  - {name: amt, type: 'decimal(10,2)'}
  - {name: at, type: timestamptz}
report: {group_by: [], amount: amt, time: at}
`, `field "w": pattern`},
		{`
key: id
hash: [id]
fields:
  - {name: id, type: int, required: true, max: 1000}
  - {name: amt, type: 'decimal(10,2)'}
  - {name: at, type: timestamptz}
report: {group_by: [], amount: amt, time: at}
`, `field "id": its bounds leave too few values`},
	} {
		c, err := ParseContract([]byte(tc.yaml))
		if err != nil {
			t.Fatalf("contract for %q: %v", tc.want, err)
		}
		_, err = NewContractGenerator(c, 1, GeneratorOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one saying %q", err, tc.want)
		}
	}
}

// The default contract's messages come from the notebook's generator (its decoder gives
// the notebook's reasons).
func TestGeneratorForDefault(t *testing.T) {
	g, err := NewGeneratorFor(DefaultContract(), 1, GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.(*Generator); !ok {
		t.Fatalf("default contract: %T, want *Generator", g)
	}
	g, err = NewGeneratorFor(mustContract(t, exampleContract), 1, GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.(*ContractGenerator); !ok {
		t.Fatalf("example contract: %T, want *ContractGenerator", g)
	}
}

// KeyNumber reads back the numbering of the keys (produce continues after the highest).
func TestContractGeneratorKeyNumber(t *testing.T) {
	for name, y := range genContracts {
		g, err := NewContractGenerator(mustContract(t, y), 1, GeneratorOptions{FirstID: 77})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			m := g.Next(time.Now())
			if g.KeyText(77+i) != string(m.Key) {
				t.Fatalf("%s: KeyText(%d) %q, key %q", name, 77+i, g.KeyText(77+i), m.Key)
			}
			if n, ok := g.KeyNumber(m.Key); !ok || n != 77+i {
				t.Fatalf("%s: key %q: number %d %v, want %d", name, m.Key, n, ok, 77+i)
			}
		}
		for _, k := range []string{"", "x", "TXN1", "-5", "1.5", "99999999999999999999999"} {
			if n, ok := g.KeyNumber([]byte(k)); ok {
				t.Errorf("%s: key %q read as number %d", name, k, n)
			}
		}
	}
}
