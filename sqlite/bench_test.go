package sqlite_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/qrapi/qrapi/domain"
	"github.com/qrapi/qrapi/seed"
	"github.com/qrapi/qrapi/sqlite"
)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), b.TempDir()+"/bench.db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Load(context.Background(), seed.Demo()); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStoreInstance reads an instance: from the write-through cache, and the
// account's instances (which always go to SQLite).
func BenchmarkStoreInstance(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Instance(ctx, crnA1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("account-instances", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.AccountInstances(ctx, "8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("identity", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Identity(ctx, "IBMid-demo-admin"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoreSetInstanceLimit is one durable write (WAL, synchronous=FULL).
func BenchmarkStoreSetInstanceLimit(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		limit := 1000 + i%1000
		if _, err := s.UpdateInstance(ctx, crnA1, domain.SetLimit(&limit)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreAppendAudit keeps a batch of 500 audit events; ns/op is per batch.
func BenchmarkStoreAppendAudit(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	ev := []byte(`{"action":"quantum-computing.instance.read","outcome":"success","reason":{"reasonCode":200,"reasonType":"OK"},"severity":"normal","initiator":{"id":"IBMid-demo-admin","typeURI":"service/security/account/user","name":"Ada Admin","host":{"address":"127.0.0.1","agent":"Go-http-client/1.1"},"credential":{"type":"token"}},"target":{"id":"crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::","typeURI":"quantum-computing/instance"},"observer":{"name":"ActivityTracker"},"eventTime":"2026-11-24T12:18:04.363+0000","correlationId":"2ac2dbab-7132-485d-9b29-c5f6989f24ec","message":"Qiskit Runtime: Get current instance details crn:v1:bluemix:public:quantum-computing:us-east:a/8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::","dataEvent":true}`)
	batch := make([][]byte, 500)
	for i := range batch {
		batch[i] = ev
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		if err := s.AppendAudit(ctx, strconv.Itoa(n), batch); err != nil {
			b.Fatal(err)
		}
	}
}
