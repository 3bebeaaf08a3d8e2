package server

import (
	"strings"
	"testing"
)

// The admin token is compared as fixed-size digests: whatever the length of the presented
// token, the constant-time comparison is handed two 32-byte values, so it never returns
// early on a length difference (which would tell a caller the token's length by timing).
func TestSameSecretComparesFixedSizeDigests(t *testing.T) {
	var lengths [][2]int
	orig := constantTimeCompare
	constantTimeCompare = func(a, b []byte) int {
		lengths = append(lengths, [2]int{len(a), len(b)})
		return orig(a, b)
	}
	t.Cleanup(func() { constantTimeCompare = orig })
	const secret = "test-admin-token-0123456789"
	for presented, want := range map[string]bool{
		secret: true, "": false, "x": false, secret + "x": false, strings.Repeat("t", 4096): false,
	} {
		if got := sameSecret(presented, secret); got != want {
			t.Errorf("sameSecret(%d bytes) = %v, want %v", len(presented), got, want)
		}
	}
	for _, l := range lengths {
		if l != [2]int{32, 32} {
			t.Fatalf("the comparison was handed %d and %d bytes, want two 32-byte digests", l[0], l[1])
		}
	}
	if len(lengths) != 5 {
		t.Fatalf("%d comparisons, want 5", len(lengths))
	}
}
