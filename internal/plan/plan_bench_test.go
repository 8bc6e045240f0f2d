package plan_test

import (
	"testing"

	"github.com/renewer/renewer/internal/plan"
)

// Benchmarks, not tests: `go test -bench . -benchmem ./internal/plan`.

func BenchmarkDecide(b *testing.B) {
	f, c := cert(now.Add(-10*day), 90*day), conf()
	b.ReportAllocs()
	for b.Loop() {
		if plan.Decide(now, c, f).Due {
			b.Fatal("due")
		}
	}
}

func BenchmarkDecideARI(b *testing.B) {
	f, c := cert(now.Add(-10*day), 90*day), conf()
	ari := &plan.ARI{Start: now.Add(50 * day), End: now.Add(52 * day), Chosen: now.Add(51 * day)}
	b.ReportAllocs()
	for b.Loop() {
		if plan.DecideARI(now, c, f, ari).Due {
			b.Fatal("due")
		}
	}
}
