package ledger

import "testing"

// seedMessage is what the seed's producer (Python json.dumps) sends.
var seedMessage = []byte(`{"transaction_id": "TXN00000042", "account_from": "ACC4242", "account_to": "ACC2424", "amount": "9999.99", "currency": "GBP", "transaction_type": "payment", "timestamp": "2025-01-16T10:00:00.123456"}`)

func BenchmarkDecode(b *testing.B) {
	rules := DefaultRules()
	b.ReportAllocs()
	b.SetBytes(int64(len(seedMessage)))
	for b.Loop() {
		if _, rej := rules.Decode(seedMessage); rej != nil {
			b.Fatal(rej)
		}
	}
}
