package optional

import "testing"

func TestNonZeroAndValue(t *testing.T) {
	if NonZero("") != nil || NonZero(0) != nil || NonZero(false) != nil {
		t.Fatal("NonZero of a zero value is not nil")
	}
	if p := NonZero("op"); p == nil || *p != "op" {
		t.Fatalf("NonZero(\"op\") = %v", p)
	}
	if p := NonZero(true); p == nil || !*p {
		t.Fatalf("NonZero(true) = %v", p)
	}
	if Value[int](nil) != 0 || Value[string](nil) != "" {
		t.Fatal("Value(nil) is not the zero value")
	}
	if v := Value(NonZero(503)); v != 503 {
		t.Fatalf("Value(NonZero(503)) = %d", v)
	}
}
