package qrtest_test

import (
	"testing"

	"github.com/qrapi/qrapi/qrtest"
)

// BenchmarkNewServer is what a test pays to start (and, at its end, stop) a reference
// server: the README's "starts in milliseconds".
func BenchmarkNewServer(b *testing.B) {
	for b.Loop() {
		t := &exampleT{}
		qrtest.NewServer(t)
		t.done()
	}
}
