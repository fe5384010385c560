package iceberg

import (
	"os"
	"testing"

	ice "github.com/apache/iceberg-go"

	"github.com/ledgerstream/ledgerstream/internal/ledger"
)

func exampleContract(t testing.TB) *ledger.Contract {
	t.Helper()
	data, err := os.ReadFile("../../examples/payments-contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ledger.ParseContract(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContractSchema(t *testing.T) {
	// The default contract, even as a file, is the notebook's table.
	def, err := ledger.ParseContract([]byte(ledger.DefaultContractYAML()))
	if err != nil {
		t.Fatal(err)
	}
	if s := ContractSchema(def); !s.Equals(LedgerSchema()) {
		t.Fatalf("default contract schema:\n%s\nwant\n%s", s, LedgerSchema())
	}
	spec, err := ContractPartitionSpec(def, LedgerSchema())
	if err != nil || !spec.IsUnpartitioned() {
		t.Fatalf("default contract partition spec %v %v", spec, err)
	}

	c := exampleContract(t)
	s := ContractSchema(c)
	want := []struct {
		name     string
		typ      ice.Type
		required bool
	}{
		{"payment_id", ice.PrimitiveTypes.String, true},
		{"payer", ice.PrimitiveTypes.String, true},
		{"payee", ice.PrimitiveTypes.String, true},
		{"amount", ice.DecimalTypeOf(18, 2), true},
		{"currency", ice.PrimitiveTypes.String, true},
		{"merchant_id", ice.PrimitiveTypes.Int64, false},
		{"captured", ice.PrimitiveTypes.Bool, false},
		{"event_timestamp", ice.PrimitiveTypes.TimestampTz, true},
		{ColTransactionHash, ice.PrimitiveTypes.String, true},
		{ColExtras, ice.PrimitiveTypes.String, false},
		{ColProcessingTime, ice.PrimitiveTypes.TimestampTz, false},
		{ColSourceTopic, ice.PrimitiveTypes.String, true},
		{ColSourcePartition, ice.PrimitiveTypes.Int32, true},
		{ColSourceOffset, ice.PrimitiveTypes.Int64, true},
	}
	if len(s.Fields()) != len(want) {
		t.Fatalf("schema:\n%s", s)
	}
	for i, f := range s.Fields() {
		w := want[i]
		if f.ID != i+1 || f.Name != w.name || !f.Type.Equals(w.typ) || f.Required != w.required {
			t.Errorf("field %d: %d %s %s required=%v, want %s %s required=%v", i, f.ID, f.Name, f.Type, f.Required, w.name, w.typ, w.required)
		}
	}
	spec, err = ContractPartitionSpec(c, s)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range spec.Fields() {
		src, _ := s.FindColumnName(f.SourceID())
		got = append(got, f.Name+"="+f.Transform.String()+"("+src+")")
		if f.FieldID < 1000 {
			t.Errorf("partition field %s has id %d", f.Name, f.FieldID)
		}
	}
	if len(got) != 2 || got[0] != "event_timestamp_day=day(event_timestamp)" || got[1] != "currency=identity(currency)" {
		t.Fatalf("partition spec %v", got)
	}
}
